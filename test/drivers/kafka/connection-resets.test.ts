/**
 * Fault test: ESTABLISHED client connections are reset (TCP RST) at random moments while a
 * producer pushes and a consumer reads, against a real broker.
 *
 * The test starts a broker of its own that advertises the port of a node:net proxy (scripts/kafka.sh
 * KAFKA_ADVERTISED_PORT), so every connection of every client (bootstrap, metadata, produce, fetch)
 * goes through the proxy. Every 150–400 ms the proxy resets one live connection, both sides
 * (`resetSocket()`: the client sees ECONNRESET, the broker a reset), in turn one that carried
 * Produce requests, one that carried Fetch requests (it reads the API key of each request frame),
 * and any. A Produce or Fetch connection is reset in the middle of its next request of that kind,
 * 0–10 ms after forwarding it: the broker may or may not have appended a produce batch whose
 * answer is lost, so the producer's retries (same producer id and sequences) must be
 * de-duplicated by the broker.
 *
 * It proves: no crash (no uncaught exception, no unhandled rejection — cf. the permanent 'error'
 * listener of adapter.ts, "Stray connection errors"); every push future resolves; reading the topic
 * back gives 0 lost, 0 duplicated, 0 out of order, each event at the offset its push future
 * returned; a consumer (a group member) reading concurrently through the resets sees every event
 * exactly once, in order per partition. It also checks that the faults really happened: enough
 * resets while producing, in the middle of Produce requests, of fetch connections, and at least
 * one produce retry logged by the driver.
 *
 * A plaintext connection emits at most one 'error' (its socket's), which the library handles; a
 * SASL connection reset while it authenticates emits two (the socket's, then the failed handshake
 * request's): the second had no listener in the library (adapter.ts, "Stray connection errors").
 * The second test resets connections to the shared broker's SASL_PLAINTEXT listener just after
 * their SaslHandshake / SaslAuthenticate request: the driver must not crash, and connects once the
 * resets stop.
 *
 * A step that makes no progress for 30 s is reported with what is pending (StallWatch), and the
 * whole file fits well within the runner's per-file limit.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Driver, setLogSink, type Consumer, type Event, type EventID, type Future } from '../../../src/index.js';
import { kafkaSuite, OwnBroker, secureTest, uniqueName } from '../../helpers/kafka.js';
import { resetSocket } from '../../helpers/reset.js';

const N = 6000;
const PARTITIONS = 2;
/** Pushes between pauses, and the pause: producing lasts ~10 s, long enough for the resets. */
const CHUNK = 100;
const PAUSE_MS = 150;
/** Resets in all (bounded), one every 150–400 ms from the first push. */
const MAX_RESETS = 30;
/** Such a connection is reset this long at most after forwarding its next request of that kind. */
const MID_REQUEST_MS = 10;
/** …or after this long without one. */
const ARM_TIMEOUT_MS = 500;

const API_PRODUCE = 0;
const API_FETCH = 1;
const API_JOIN_GROUP = 11;
const API_HEARTBEAT = 12;
const API_SASL_HANDSHAKE = 17;
const API_SASL_AUTHENTICATE = 36;

/**
 * What the resets pick, in turn: a connection that carried Produce requests, one that carried Fetch
 * requests, any live one (at random within each kind; any live one when none is of that kind). A
 * fixed rotation rather than a random bias, so that every run resets each kind often enough.
 */
const ROTATION: readonly (number | undefined)[] = [API_PRODUCE, API_FETCH, undefined];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A step that lasts longer than this is reported (what is pending, the driver's last log lines), every STALL_MS. */
const STALL_MS = 30_000;

/**
 * Reports a step that makes no progress: the test is bounded well inside the runner's per-file
 * limit, and when a step stalls the output says which one and in what state, instead of the file
 * being cancelled without a word.
 */
class StallWatch {
  private step = 'start';
  private since = Date.now();
  private readonly lines: string[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly state: () => string) {
    this.timer = setInterval(() => {
      const ms = Date.now() - this.since;
      if (ms < STALL_MS) return;
      console.log(`# STALL: step "${this.step}" has lasted ${Math.round(ms / 1000)} s; ${this.state()}`);
      console.log(`# the driver's last log lines:\n${this.lines.map((l) => `#   ${l}`).join('\n')}`);
    }, STALL_MS);
    this.timer.unref(); // a test that timed out never reaches stop()
  }

  enter(step: string): void {
    this.step = step;
    this.since = Date.now();
  }

  /** Keeps the driver's last log lines (every level, debug included). */
  logged(level: string, message: string): void {
    this.lines.push(`${new Date().toISOString().slice(11, 23)} [${level}] ${message}`);
    if (this.lines.length > 60) this.lines.shift();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Reads the API key of each Kafka request frame (int32 size, int16 api_key, …) of a client → broker stream. */
class RequestSniffer {
  private readonly header = Buffer.alloc(6);
  private have = 0;
  private skip = 0;
  constructor(private readonly onRequest: (apiKey: number) => void) {}

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const n = Math.min(6 - this.have, chunk.length - i);
      chunk.copy(this.header, this.have, i, i + n);
      this.have += n;
      i += n;
      if (this.have === 6) {
        this.onRequest(this.header.readInt16BE(4));
        this.skip = this.header.readInt32BE(0) - 2; // the size counts the api key
        this.have = 0;
      }
    }
  }
}

interface Pair {
  id: number;
  client: net.Socket;
  broker: net.Socket;
  /** API keys of the requests the client sent on this connection. */
  apis: Set<number>;
  /** Reset in the middle of the next request with this API key. */
  armed: { api: number; fire: (midRequest: boolean) => void } | undefined;
}

interface ResetRecord {
  connection: number;
  apis: number[];
  /** Reset 0–10 ms after a Produce / Fetch request went through (its answer possibly lost), not at an idle moment. */
  midRequest: number | undefined;
  producing: boolean;
  consuming: boolean;
}

/** A TCP proxy in front of the broker that can reset a random live connection. */
class ResetProxy {
  private readonly server = net.createServer((socket) => this.accept(socket));
  private target = 0;
  private nextId = 0;
  readonly live = new Set<Pair>();
  accepted = 0;
  /** Reset the next `left` connections just after forwarding a request with one of these API keys. */
  private resetOn: { apis: ReadonlySet<number>; left: number } | undefined;
  /** Connections reset that way. */
  resetsOnRequest = 0;

  resetAfterRequest(apis: readonly number[], count: number): void {
    this.resetOn = { apis: new Set(apis), left: count };
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve((this.server.address() as net.AddressInfo).port));
    });
  }

  /** The broker's real address (known once it started). */
  forwardTo(port: number): void {
    this.target = port;
  }

  private accept(client: net.Socket): void {
    client.on('error', () => undefined);
    if (this.target === 0) {
      resetSocket(client);
      return;
    }
    this.accepted++;
    const broker = net.connect({ host: '127.0.0.1', port: this.target });
    broker.on('error', () => undefined);
    const pair: Pair = { id: this.nextId++, client, broker, apis: new Set(), armed: undefined };
    this.live.add(pair);
    client.setNoDelay(true);
    broker.setNoDelay(true);
    const sniffer = new RequestSniffer((k) => {
      pair.apis.add(k);
      const on = this.resetOn;
      if (on !== undefined && on.left > 0 && on.apis.has(k)) {
        on.left--;
        setTimeout(() => {
          if (!this.live.delete(pair)) return;
          this.resetsOnRequest++;
          resetSocket(pair.client);
          resetSocket(pair.broker);
        }, 0);
        return;
      }
      const armed = pair.armed;
      if (armed !== undefined && armed.api === k) {
        pair.armed = undefined;
        // a timer, so that this chunk (the request) is forwarded first
        setTimeout(() => armed.fire(true), Math.random() * MID_REQUEST_MS);
      }
    });
    client.on('data', (d: Buffer) => sniffer.feed(d)); // before pipe(): sees each chunk before it is forwarded
    client.pipe(broker);
    broker.pipe(client);
    // an abrupt end on one side is passed on abruptly; a close, as a close
    const link = (from: net.Socket, to: net.Socket): void => {
      from.on('error', () => {
        this.live.delete(pair);
        resetSocket(to);
      });
      from.on('close', () => {
        this.live.delete(pair);
        if (!to.destroyed) to.destroy();
      });
    };
    link(client, broker);
    link(broker, client);
  }

  /**
   * Picks a random established connection, one that carried requests with API key `kind` when there
   * is one, and resets it, both sides (RST): one that carries Produce (or Fetch) requests in the
   * middle of its next one, any other at once. Resolves with the connection and whether it was
   * reset mid-request (undefined when none was live, or it closed first).
   */
  async resetOne(kind: number | undefined): Promise<{ pair: Pair; midRequest: number | undefined } | undefined> {
    const established = [...this.live].filter((p) => !p.broker.connecting && !p.client.destroyed && !p.broker.destroyed);
    const ofKind = kind === undefined ? [] : established.filter((p) => p.apis.has(kind));
    const from = ofKind.length > 0 ? ofKind : established;
    const pair = from[Math.floor(Math.random() * from.length)];
    if (pair === undefined) return undefined;
    const api = kind !== undefined && pair.apis.has(kind) ? kind : pair.apis.has(API_PRODUCE) ? API_PRODUCE : pair.apis.has(API_FETCH) ? API_FETCH : undefined;
    let midRequest = false;
    if (api !== undefined) {
      midRequest = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => fire(false), ARM_TIMEOUT_MS);
        const fire = (mid: boolean): void => {
          clearTimeout(timer);
          pair.armed = undefined;
          resolve(mid);
        };
        pair.armed = { api, fire };
      });
    }
    if (!this.live.has(pair)) return undefined; // closed meanwhile
    this.live.delete(pair);
    resetSocket(pair.client);
    resetSocket(pair.broker);
    return { pair, midRequest: midRequest ? api : undefined };
  }

  close(): Promise<void> {
    for (const p of this.live) {
      p.client.destroy();
      p.broker.destroy();
    }
    this.live.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Seen {
  seq: number;
  partition: number;
  id: EventID;
}

/** Pulls into `events` until it holds `n` or the deadline, then looks for extras; a rejected pull is counted and the reading goes on. */
async function readEvents(c: Consumer, n: number, deadline: () => number, extraWaitMs: number, events: Seen[] = []): Promise<{ events: Seen[]; pullErrors: string[] }> {
  const pullErrors: string[] = [];
  const pull = async (ms: number): Promise<Event | undefined> => {
    try {
      return (await c.pull().wait(ms)) as Event | undefined;
    } catch (err) {
      pullErrors.push(err instanceof Error ? err.message : String(err));
      await sleep(100);
      return undefined;
    }
  };
  const add = (e: Event): void => {
    events.push({ seq: (e.metadata.json as { seq: number }).seq, partition: e.partitionIndex, id: e.id });
  };
  while (events.length < n && Date.now() < deadline()) {
    const e = await pull(1000);
    if (e !== undefined) add(e);
  }
  // nothing more than n (duplicates would show here)
  const until = Date.now() + extraWaitMs;
  while (Date.now() < until) {
    const e = await pull(Math.max(1, until - Date.now()));
    if (e !== undefined) add(e);
  }
  return { events, pullErrors };
}

/** Lost, duplicated, out of order (per partition), misplaced (not the partition and offset its push returned). */
function tally(events: readonly Seen[], expected: readonly { seq: number; partition: number }[], ids: readonly EventID[]) {
  const bySeq = new Map<number, Seen[]>();
  const lastSeq = new Map<number, number>();
  let outOfOrder = 0;
  for (const e of events) {
    const list = bySeq.get(e.seq) ?? [];
    list.push(e);
    bySeq.set(e.seq, list);
    if ((lastSeq.get(e.partition) ?? -1) >= e.seq) outOfOrder++;
    lastSeq.set(e.partition, e.seq);
  }
  let lost = 0;
  let duplicated = 0;
  let misplaced = 0;
  for (const f of expected) {
    const got = bySeq.get(f.seq) ?? [];
    if (got.length === 0) lost++;
    duplicated += Math.max(0, got.length - 1);
    const at = got[0];
    if (at !== undefined && (at.partition !== f.partition || at.id !== ids[f.seq])) misplaced++;
  }
  return { lost, duplicated, outOfOrder, misplaced, total: events.length };
}

kafkaSuite('kafka clients across connection resets (TCP RST)', (env) => {
  const proxy = new ResetProxy();
  let own: OwnBroker | undefined;
  let started = false;
  let setupError = '';

  before(async () => {
    // the proxy's port first: the broker advertises it
    const port = await proxy.listen();
    own = new OwnBroker({ advertisedPort: port });
    started = own.start();
    if (started) proxy.forwardTo(Number(own.listening.split(':')[1]));
    else setupError = own.error;
  });

  after(async () => {
    await proxy.close();
    own?.stop();
  });

  it(`pushes and reads ${N} events while connections are reset: no crash, 0 lost, 0 duplicated, 0 out of order`, { timeout: 150_000 }, async () => {
    assert.ok(started, setupError);
    const broker = own as OwnBroker;
    assert.notEqual(broker.bootstrap, broker.listening, 'the broker must advertise the proxy, not its own port');

    const crashes: unknown[] = [];
    const onCrash = (err: unknown): void => {
      crashes.push(err);
    };
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    // what the driver logs about the faults: the producer's retries, connection errors, failed fetches
    const logged = { produceRetries: 0, connectionErrors: 0, fetchFailures: 0 };
    // filled below; the watch reads them when a step stalls
    const pending = new Set<number>();
    const concurrentEvents: Seen[] = [];
    const resets: ResetRecord[] = [];
    const watch = new StallWatch(() => {
      const live = [...proxy.live].map((p) => `#${p.id}[${[...p.apis].join(',')}]`).join(' ');
      return `pending push futures ${pending.size} (first seq ${[...pending].slice(0, 5).join(', ')}), read by the concurrent consumer ${concurrentEvents.length}, resets ${resets.length}, live proxied connections (id[api keys]) ${live}`;
    });
    setLogSink((level, message) => {
      watch.logged(level, message);
      if (message.startsWith('Kafka produce: retrying')) logged.produceRetries++;
      else if (message.startsWith('Kafka connection error')) logged.connectionErrors++;
      else if (/^Kafka consumer of .*: fetch from broker/.test(message)) logged.fetchFailures++;
      else if (level === 'warning' || level === 'error' || level === 'critical') process.stderr.write(`[diaspora-stream] [${level}] ${message}\n`);
    });

    let producing = false;
    let consuming = false;
    let resetting = true;
    const resetLoop = (async () => {
      while (resetting && !producing) await sleep(10);
      while (resetting && resets.length < MAX_RESETS) {
        await sleep(150 + Math.random() * 250);
        if (!resetting) break;
        const r = await proxy.resetOne(ROTATION[resets.length % ROTATION.length]);
        if (r !== undefined) resets.push({ connection: r.pair.id, apis: [...r.pair.apis], midRequest: r.midRequest, producing, consuming });
      }
    })();

    const name = uniqueName('resets');
    let d: Driver | undefined;
    let summary = '';
    let liveDeadline = Date.now() + 100_000;
    try {
      watch.enter('create the driver, the topic and a group member');
      d = await Driver.create('kafka', { kafka: { 'bootstrap.servers': broker.bootstrap } });
      await d.createTopic(name, { options: { num_partitions: PARTITIONS } });
      const t = await d.openTopic(name);

      // a consumer group member reads through the resets (its coordinator connections are reset
      // too), from before the first push
      const live = await t.consumer(`${name}-group`, { startFrom: 'earliest' });
      consuming = true;
      const reading = readEvents(live, N, () => liveDeadline, 1500, concurrentEvents).finally(() => {
        consuming = false;
      });

      const p = await t.producer({ batchSize: 50 });
      const futures: { partition: number; seq: number; id: Future<EventID> }[] = [];
      producing = true;
      watch.enter('push');
      const t0 = Date.now();
      for (let seq = 0; seq < N; seq++) {
        const partition = seq % PARTITIONS;
        const id = p.push({ seq }, undefined, { partition });
        pending.add(seq);
        void Promise.resolve(id).finally(() => pending.delete(seq)).catch(() => undefined);
        futures.push({ partition, seq, id });
        if (seq % CHUNK === CHUNK - 1) await sleep(PAUSE_MS);
      }
      watch.enter('flush');
      await p.flush();
      watch.enter('settle the push futures');
      const settled = await Promise.allSettled(futures.map((f) => Promise.resolve(f.id)));
      producing = false;
      const produceMs = Date.now() - t0;
      const failed = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
      assert.equal(failed.length, 0, `${failed.length} push futures rejected, first: ${String(failed[0]?.reason)}`);
      const ids = settled.map((s) => (s as PromiseFulfilledResult<EventID>).value);
      watch.enter('close the producer');
      await p.close();

      // the concurrent consumer: it has 40 s at most from here to catch up
      watch.enter('the concurrent consumer catches up');
      liveDeadline = Math.min(liveDeadline, Date.now() + 40_000);
      const concurrent = await reading;
      watch.enter('close the group member');
      await live.close();
      resetting = false;
      await resetLoop;

      // read everything back (a fresh consumer, after the resets)
      watch.enter('read back');
      const back = await t.consumer('', { startFrom: 'earliest' });
      let readBack: Awaited<ReturnType<typeof readEvents>>;
      const backDeadline = Date.now() + 40_000;
      try {
        readBack = await readEvents(back, N, () => backDeadline, 1500);
      } finally {
        await back.close();
      }

      const whileProducing = resets.filter((r) => r.producing).length;
      const whileConsuming = resets.filter((r) => r.consuming).length;
      const ofProduce = resets.filter((r) => r.apis.includes(API_PRODUCE)).length;
      const ofFetch = resets.filter((r) => r.apis.includes(API_FETCH) && r.consuming).length;
      const midProduce = resets.filter((r) => r.midRequest === API_PRODUCE).length;
      const midFetch = resets.filter((r) => r.midRequest === API_FETCH).length;
      const ofGroup = resets.filter((r) => r.apis.includes(API_JOIN_GROUP) || r.apis.includes(API_HEARTBEAT)).length;
      const concurrentTally = tally(concurrent.events, futures, ids);
      const backTally = tally(readBack.events, futures, ids);
      summary =
        `connections accepted ${proxy.accepted}, resets ${resets.length} (while producing ${whileProducing}, while consuming ${whileConsuming}; ` +
        `of produce connections ${ofProduce}, of fetch connections ${ofFetch}; mid-Produce ${midProduce}, mid-Fetch ${midFetch}; of group coordinator connections ${ofGroup}); producing took ${produceMs} ms; logged ${JSON.stringify(logged)}; ` +
        `concurrent consumer ${JSON.stringify(concurrentTally)} (${concurrent.pullErrors.length} rejected pulls); ` +
        `read back ${JSON.stringify(backTally)} (${readBack.pullErrors.length} rejected pulls)`;
      console.log(`# ${summary}`);
      if (concurrent.pullErrors.length > 0) console.log(`# first rejected pull: ${concurrent.pullErrors[0]}`);

      assert.deepEqual(crashes, [], 'uncaught exceptions / unhandled rejections');
      const zero = { lost: 0, duplicated: 0, outOfOrder: 0, misplaced: 0, total: N };
      assert.deepEqual(backTally, zero, `read back: ${summary}`);
      assert.deepEqual(concurrentTally, zero, `concurrent consumer: ${summary}`);
      // the faults really happened
      assert.ok(whileProducing >= 10, `only ${whileProducing} resets while producing: ${summary}`);
      assert.ok(midProduce >= 3, `only ${midProduce} resets in the middle of a Produce request: ${summary}`);
      assert.ok(ofFetch >= 3, `only ${ofFetch} resets of fetch connections while consuming: ${summary}`);
      assert.ok(logged.produceRetries >= 1, `the producer never retried: ${summary}`);
    } finally {
      liveDeadline = 0; // a failed assertion above: the concurrent reading stops too
      resetting = false;
      await resetLoop;
      watch.enter('close the driver');
      await d?.close();
      watch.stop();
      // late errors of the closing clients count too
      await sleep(200);
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      setLogSink(undefined);
    }
    assert.deepEqual(crashes, [], `uncaught exceptions / unhandled rejections (after close): ${summary}`);
  });

  secureTest(env, 'connections reset while they authenticate (SASL): no crash, the driver connects once the resets stop', { timeout: 60_000 }, ['SASL_PLAINTEXT', 'scram'], async (ep) => {
    const sasl = new ResetProxy();
    const port = await sasl.listen();
    sasl.forwardTo(Number(ep.SASL_PLAINTEXT.split(':')[1]));
    // the bootstrap connection goes through the proxy (the broker advertises its own port, so
    // later connections do not): its first two attempts are reset in the middle of SASL
    sasl.resetAfterRequest([API_SASL_HANDSHAKE, API_SASL_AUTHENTICATE], 2);
    const crashes: unknown[] = [];
    const onCrash = (err: unknown): void => {
      crashes.push(err);
    };
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    try {
      const props = {
        'bootstrap.servers': `127.0.0.1:${port}`,
        'security.protocol': 'sasl_plaintext',
        'sasl.mechanisms': 'SCRAM-SHA-256',
        'sasl.username': ep.scram.username,
        'sasl.password': ep.scram.password,
      };
      let created: unknown;
      try {
        const d = await Driver.create('kafka', { kafka: props });
        created = 'ok';
        await d.close();
      } catch (err) {
        created = err;
      }
      await sleep(500); // a stray 'error' event would come after the failed attempts
      assert.deepEqual(crashes.map(String), [], 'uncaught exceptions / unhandled rejections');
      assert.equal(sasl.resetsOnRequest, 2, 'the proxy did not reset two connections in the middle of SASL');
      assert.equal(created, 'ok', `the driver did not connect after the resets: ${String(created)}`);
    } finally {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      await sasl.close();
    }
  });
});
