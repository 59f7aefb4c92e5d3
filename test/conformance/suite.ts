/**
 * Driver conformance suite (api.md §11): one parameterised suite, run against every driver
 * (modelled on BullMQ's adapter conformance suite). A runner file per driver supplies a
 * {@link DriverHarness} and calls {@link driverConformanceSuite}.
 *
 * Every test creates its own driver (isolated storage) and closes everything it opened in
 * `afterEach`, even when it fails.
 */
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DataDescriptor,
  DataSegments,
  DiasporaError,
  ErrorCodes,
  Driver,
  InvalidMetadata,
  Metadata,
  NoDataSelector,
  StopEventProcessor,
  type Consumer,
  type ConsumerOptions,
  type CreateTopicOptions,
  type DataAllocator,
  type DataLike,
  type DataSelector,
  type Event,
  type Future,
  type Json,
  type Producer,
  type ProducerOptions,
  type ThreadPool,
  type TopicHandle,
} from '../../src/index.js';
import { within } from '../helpers/within.js';

export interface DriverHarness {
  /** 'files', 'memory', later 'kafka'. */
  name: string;
  /** A driver whose topics are isolated from other tests (fresh temp root / store). */
  createDriver(): Promise<Driver>;
  /** Topic options for a topic with n partitions (kafka will add replication_factor). */
  topicOptions(n: number): Json;
  /** Unique topic name. */
  topicName(prefix: string): string;
  cleanup(): Promise<void>;
  /** Optional: capabilities differing per driver */
  supportsHeaders?: boolean;
  /**
   * Optional: a second, independent driver instance over the same storage as `d` (files: same
   * root_path; memory: same store). Enables the cross-instance variants.
   */
  createPeerDriver?(d: Driver): Promise<Driver>;
  /** Optional: the exact message of a duplicate createTopic (files: `Topic already exists: <name>`). */
  duplicateTopicMessage?(name: string): string;
  /**
   * Optional (default true): an idle producer refuses at once a topic deleted and created again under its name.
   * Kafka producers write by name: ours notices the new topic id at its next metadata refresh (after an error, or
   * metadata.max.age.ms, 10 s by default; tested in test/drivers/kafka/acceptance.test.ts).
   */
  producerRefusesRecreatedTopic?: boolean;
}

type BatchSize = number | 'adaptive';
type OrderingMode = 'strict' | 'loose';

/** Events per round-trip combination (the matrix has 12 combinations). */
const ROUND_TRIP_EVENTS = 240;
const CONCURRENT_EVENTS = 2000;
const BIG = 18446744073709551615n;

// ---------------------------------------------------------------------------------------------
// Generic helpers (driver independent)

function describeEvent(e: Event): string {
  return `p${e.partitionIndex}#${e.id} ${e.metadata.dump().slice(0, 80)}`;
}

/** Deterministic bytes: byte j = (seed * 31 + j * 7) mod 256. */
function bytes(seed: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let j = 0; j < len; j++) b[j] = (seed * 31 + j * 7) & 0xff;
  return b;
}

async function pullOne(c: Consumer, ms = 5000): Promise<Event> {
  const e = await c.pull().wait(ms);
  assert.ok(e !== undefined, `no event within ${ms} ms`);
  return e;
}

/** Pulls exactly n events (fails if they do not all arrive within `ms`). */
async function pullN(c: Consumer, n: number, ms = 15000): Promise<Event[]> {
  const out: Event[] = [];
  const deadline = performance.now() + ms;
  while (out.length < n) {
    const left = Math.ceil(deadline - performance.now());
    if (left <= 0) assert.fail(`received only ${out.length} of ${n} events within ${ms} ms`);
    const e = await c.pull().wait(left);
    if (e !== undefined) out.push(e);
  }
  return out;
}

async function assertNoMore(c: Consumer, ms = 150): Promise<void> {
  const e = await c.pull().wait(ms);
  assert.equal(e === undefined ? undefined : describeEvent(e), undefined, 'unexpected extra event');
}

function seqOf(e: Event): number {
  const j = e.metadata.json;
  assert.ok(typeof j === 'object' && j !== null && !Array.isArray(j), `metadata is not an object: ${e.metadata.dump()}`);
  const s = (j as Record<string, Json>)['seq'];
  assert.equal(typeof s, 'number', `metadata has no numeric seq: ${e.metadata.dump()}`);
  return s as number;
}

/**
 * Checks per-partition delivery: ids dense 0..k-1 in delivery order, and (when `seqs` is given)
 * the seq numbers increasing with the ids.
 */
function checkDensePerPartition(events: readonly Event[], seqs?: (e: Event) => number): Map<number, Event[]> {
  const by = new Map<number, Event[]>();
  for (const e of events) {
    let l = by.get(e.partitionIndex);
    if (l === undefined) by.set(e.partitionIndex, (l = []));
    l.push(e);
  }
  for (const [p, list] of by) {
    list.forEach((e, i) => assert.equal(e.id, BigInt(i), `partition ${p}: event #${i} delivered has id ${e.id} (ids must be dense and in order)`));
    if (seqs !== undefined) {
      for (let i = 1; i < list.length; i++) {
        assert.ok(
          seqs(list[i] as Event) > seqs(list[i - 1] as Event),
          `partition ${p}: push order not preserved: id ${i - 1} has seq ${seqs(list[i - 1] as Event)}, id ${i} has seq ${seqs(list[i] as Event)}`,
        );
      }
    }
  }
  return by;
}

// ---------------------------------------------------------------------------------------------
// Round-trip event mix

interface PushSpec {
  seq: number;
  md: Metadata | Json;
  expected: Json;
  data: DataLike | undefined;
  expectedData: Buffer;
  partition: number | undefined;
}

/** A mix of metadata shapes (objects, strings, arrays, numbers, JSON text) and data shapes. */
function makeEvents(n: number): PushSpec[] {
  const out: PushSpec[] = [];
  for (let seq = 0; seq < n; seq++) {
    let md: Metadata | Json;
    let expected: Json;
    let data: DataLike | undefined;
    let expectedData: Buffer = Buffer.alloc(0);
    let partition: number | undefined;
    switch (seq % 10) {
      case 0:
        md = expected = { seq, kind: 'plain' };
        break;
      case 1: {
        md = expected = { seq, nested: { a: { b: [1, 2, { c: 'd', e: [[], {}] }] }, t: true, f: false, z: null }, empty: {}, arr: [] };
        data = expectedData = bytes(seq, 1 + ((seq * 7) % 300));
        break;
      }
      case 2: {
        md = expected = { seq, text: 'héllo wörld ✓ 日本語 🚀 \u00e9\u0301', big: BIG, neg: -9223372036854775808n, small: -42 };
        const a = bytes(seq, 17);
        const b = bytes(seq + 1000, 250);
        data = [a, b];
        expectedData = Buffer.concat([a, b]);
        break;
      }
      case 3: {
        md = Metadata.fromString(`event ${seq} ✓ "quoted"`);
        expected = `event ${seq} ✓ "quoted"`;
        const u = new Uint8Array(33);
        for (let j = 0; j < u.length; j++) u[j] = (seq + j) & 0xff;
        data = u;
        expectedData = Buffer.from(u);
        break;
      }
      case 4:
        md = expected = [seq, null, true, false, 3.5, -0.25, 'x', { k: [BIG] }];
        partition = seq % 7; // also ≥ N: must wrap to seq % 7 % N
        break;
      case 5:
        // a JS string is parsed as JSON text (api.md §2 Metadata.from)
        md = `{"seq": ${seq}, "from_text": true, "big": 12345678901234567890, "f": 0.5}`;
        expected = { seq, from_text: true, big: 12345678901234567890n, f: 0.5 };
        data = Buffer.alloc(0);
        break;
      case 6: {
        md = new Metadata({ seq, float: 1e-7, f2: 12345678.9, exp: 1.5e300 });
        expected = { seq, float: 1e-7, f2: 12345678.9, exp: 1.5e300 };
        const a = bytes(seq, 5);
        const b = bytes(seq + 1, 9);
        data = new DataSegments([a, new Uint8Array(0), b]);
        expectedData = Buffer.concat([a, b]);
        break;
      }
      case 7:
        md = expected = { seq, 'key "q" \\ b': '\n\t\u0001\u001f', order: { b: 1, a: 2, é: 3, z: 4, A: 5, '10': 6, '9': 7 } };
        partition = seq;
        data = expectedData = bytes(seq, 64);
        break;
      case 8:
        md = expected = { seq, large: true };
        data = expectedData = bytes(seq, seq % 50 === 8 ? 20000 : 1000);
        break;
      default:
        md = expected = seq; // a bare number is valid metadata
        break;
    }
    out.push({ seq, md, expected, data, expectedData, partition });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

export function driverConformanceSuite(h: DriverHarness): void {
  /** Things to close after the current test, closed in reverse order of registration. */
  let closers: (() => Promise<unknown>)[] = [];

  function track(close: () => Promise<unknown>): void {
    closers.push(close);
  }

  async function newDriver(): Promise<Driver> {
    const d = await h.createDriver();
    track(() => d.close());
    return d;
  }

  async function peerDriver(d: Driver): Promise<Driver> {
    assert.ok(h.createPeerDriver !== undefined);
    const p = await h.createPeerDriver(d);
    track(() => p.close());
    return p;
  }

  async function newTopic(d: Driver, n: number, extra: Omit<CreateTopicOptions, 'options'> = {}): Promise<TopicHandle> {
    const name = h.topicName('t');
    await d.createTopic(name, { ...extra, options: h.topicOptions(n) });
    return openTopic(d, name);
  }

  async function openTopic(d: Driver, name: string): Promise<TopicHandle> {
    const t = await d.openTopic(name);
    track(() => t.close());
    return t;
  }

  async function newProducer(t: TopicHandle, o: ProducerOptions = {}): Promise<Producer> {
    const p = await t.producer(o);
    track(() => p.close());
    return p;
  }

  async function newConsumer(t: TopicHandle, name: string, o: ConsumerOptions = {}): Promise<Consumer> {
    const c = await t.consumer(name, o);
    track(() => c.close());
    return c;
  }

  function newPool(d: Driver, n: number): ThreadPool {
    const p = d.makeThreadPool(n);
    track(() => p.close());
    return p;
  }

  /** Pushes `{seq}` events 0..n-1 (data of `dataLen` bytes when > 0) and flushes. */
  async function fill(t: TopicHandle, n: number, o: { dataLen?: number; partitioned?: boolean } = {}): Promise<bigint[]> {
    const p = await newProducer(t);
    const fs: Future<bigint>[] = [];
    for (let seq = 0; seq < n; seq++) {
      const data = o.dataLen ? bytes(seq, o.dataLen) : undefined;
      fs.push(p.push({ seq }, data, o.partitioned ? { partition: seq } : undefined));
    }
    await within(p.flush(), 10000, 'flush');
    return Promise.all(fs.map((f) => f.wait() as Promise<bigint>));
  }

  describe(`driver conformance: ${h.name}`, () => {
    afterEach(async () => {
      const cs = closers.reverse();
      closers = [];
      for (const c of cs) {
        try {
          await within(c(), 10000, 'closing a test resource');
        } catch {
          // a failing close must not hide the test's own failure
        }
      }
    });

    after(async () => {
      await h.cleanup();
    });

    // -------------------------------------------------------------------------------------------
    describe('1. topic lifecycle', () => {
      it('topicExists, createTopic, duplicate create, listTopics, openTopic, deleteTopic', { timeout: 20000 }, async () => {
        const d = await newDriver();
        const name = h.topicName('life');
        assert.equal(await d.topicExists(name), false, 'topic exists before creation');
        await d.createTopic(name, { options: h.topicOptions(3) });
        assert.equal(await d.topicExists(name), true, 'topic does not exist after creation');

        await assert.rejects(d.createTopic(name, { options: h.topicOptions(3) }), (err: unknown) => {
          assert.ok(err instanceof DiasporaError, `duplicate create rejected with a non-DiasporaError: ${String(err)}`);
          if (h.duplicateTopicMessage !== undefined) assert.equal(err.message, h.duplicateTopicMessage(name));
          return true;
        });

        const t = await openTopic(d, name);
        assert.equal(t.name, name);
        assert.equal(t.partitions.length, 3);
        assert.equal(t.driver, d);

        const list = await d.listTopics();
        const keys = [...list.keys()];
        assert.ok(list.has(name), `listTopics lacks ${name}: ${keys.join(', ')}`);
        const entry = list.get(name) as Record<string, Json>;
        assert.equal(typeof entry, 'object');
        assert.equal(Number(entry['num_partitions']), 3, `num_partitions in ${JSON.stringify(entry, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);

        await d.deleteTopic(name);
        assert.equal(await d.topicExists(name), false, 'topic exists after deleteTopic');
        assert.ok(!(await d.listTopics()).has(name), 'deleted topic still listed');
        await assert.rejects(d.openTopic(name), DiasporaError);
      });

      /** Deletes topic `name` through `other` and, with `recreate`, creates it again with 4 events of its own. */
      async function deleteTopic(other: Driver, name: string, recreate: boolean): Promise<TopicHandle | undefined> {
        await other.deleteTopic(name);
        if (!recreate) return undefined;
        // a deletion may complete in the background (Kafka): the name is taken for a moment
        for (const deadline = Date.now() + 15000; ; ) {
          try {
            await other.createTopic(name, { options: h.topicOptions(1) });
            break;
          } catch (err) {
            if (!(err instanceof DiasporaError) || Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        const t = await openTopic(other, name);
        const fresh = await newProducer(t);
        for (let i = 0; i < 4; i++) fresh.push({ fresh: i });
        await within(fresh.flush(), 10000, 'flush of the new topic');
        return t;
      }

      for (const [by, recreate] of [['this driver', false], ['this driver', true], ['another driver instance', false], ['another driver instance', true]] as const) {
        if (by === 'another driver instance' && h.createPeerDriver === undefined) continue;
        const then = recreate ? ' and created again under its name' : '';
        it(`a topic deleted by ${by}${then}: consumers of it (anonymous, named) deliver what they read, then reject with TOPIC_NOT_FOUND${recreate ? ', never an event of the new one' : ''}`, { timeout: 60000 }, async () => {
          const d = await newDriver();
          const t = await newTopic(d, 1);
          await fill(t, 2);
          const consumers = [await newConsumer(t, '', { startFrom: 'earliest' }), await newConsumer(t, h.topicName('named'), { startFrom: 'earliest' })];
          for (const c of consumers) assert.deepEqual((await pullOne(c)).metadata.json, { seq: 0 });
          await deleteTopic(by === 'this driver' ? d : await peerDriver(d), t.name, recreate);
          // { seq: 1 } may come first (read ahead before the deletion); then only TOPIC_NOT_FOUND (not a silent wait)
          for (const [k, c] of consumers.entries()) {
            const outcomes: string[] = [];
            for (let i = 0; i < 3; i++) {
              try {
                outcomes.push(JSON.stringify((await c.pull().wait(15000))?.metadata.json));
              } catch (err) {
                outcomes.push(err instanceof DiasporaError ? err.code : String(err));
              }
            }
            if (outcomes[0] === '{"seq":1}') outcomes.shift();
            assert.deepEqual(outcomes.slice(0, 2), [ErrorCodes.TOPIC_NOT_FOUND, ErrorCodes.TOPIC_NOT_FOUND], `consumer ${k === 0 ? 'anonymous' : 'named'}`);
          }
        });

        if (recreate && h.producerRefusesRecreatedTopic === false) continue;
        it(`a topic deleted by ${by}${then}: its producer's pushes reject with TOPIC_NOT_FOUND${recreate ? ', none lands in the new one' : ''}`, { timeout: 60000 }, async () => {
          const d = await newDriver();
          const t = await newTopic(d, 1);
          const p = await newProducer(t);
          assert.equal(await within(p.push({ seq: 0 }).wait(), 15000, 'push before the deletion'), 0n);
          const fresh = await deleteTopic(by === 'this driver' ? d : await peerDriver(d), t.name, recreate);
          for (let seq = 1; seq < 3; seq++) {
            await assert.rejects(within(p.push({ seq }).wait(), 20000, `push ${seq} after the deletion`), (err: unknown) => {
              assert.equal((err as DiasporaError).code, ErrorCodes.TOPIC_NOT_FOUND, String(err));
              return true;
            });
          }
          if (fresh !== undefined) {
            const c = await newConsumer(fresh, '', { startFrom: 'earliest' });
            const seen: Json[] = [];
            for (let e = await c.pull().wait(2000); e !== undefined; e = await c.pull().wait(1000)) seen.push(e.metadata.json);
            assert.deepEqual(seen, [0, 1, 2, 3].map((i) => ({ fresh: i })), 'the new topic holds only its own events');
          }
        });
      }

      it('listTopics is sorted by name and reports num_partitions', { timeout: 20000 }, async () => {
        const d = await newDriver();
        const names = [h.topicName('zeta'), h.topicName('alpha'), h.topicName('mid')];
        const parts = [2, 1, 4];
        for (let i = 0; i < names.length; i++) await d.createTopic(names[i] as string, { options: h.topicOptions(parts[i] as number) });
        const list = await d.listTopics();
        const keys = [...list.keys()];
        const sorted = [...keys].sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
        assert.deepEqual(keys, sorted, 'listTopics is not sorted by name');
        for (let i = 0; i < names.length; i++) {
          const e = list.get(names[i] as string) as Record<string, Json> | undefined;
          assert.ok(e !== undefined, `listTopics lacks ${names[i]}`);
          assert.equal(Number(e['num_partitions']), parts[i], `num_partitions of ${names[i]}`);
        }
      });

      it('openTopic of an unknown topic rejects with a DiasporaError naming it', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const name = h.topicName('unknown');
        await assert.rejects(d.openTopic(name), (err: unknown) => {
          assert.ok(err instanceof DiasporaError, `not a DiasporaError: ${String(err)}`);
          assert.ok(err.message.includes(name), `message does not name the topic: ${err.message}`);
          return true;
        });
        assert.equal(await d.topicExists(name), false, 'openTopic of an unknown topic created it');
      });

      it('two concurrent creations of one topic: exactly one succeeds', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const name = h.topicName('race');
        const rs = await Promise.allSettled([
          d.createTopic(name, { options: h.topicOptions(1) }),
          d.createTopic(name, { options: h.topicOptions(1) }),
        ]);
        assert.equal(rs.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(rs.map((r) => r.status)));
        const failed = rs.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(failed.reason instanceof DiasporaError);
        if (h.duplicateTopicMessage !== undefined) assert.equal((failed.reason as Error).message, h.duplicateTopicMessage(name));
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('2. round trip (pool × batchSize × ordering)', () => {
      const pools = [0, 3];
      const batchSizes: BatchSize[] = [1, 7, 'adaptive'];
      const orderings: OrderingMode[] = ['strict', 'loose'];
      for (const poolSize of pools) {
        for (const batchSize of batchSizes) {
          for (const ordering of orderings) {
            const label = `pool=${poolSize === 0 ? 'default(inline)' : `makeThreadPool(${poolSize})`} batchSize=${batchSize} ordering=${ordering}`;
            it(label, { timeout: 30000 }, async () => {
              await roundTrip(poolSize, batchSize, ordering);
            });
          }
        }
      }

      async function roundTrip(poolSize: number, batchSize: BatchSize, ordering: OrderingMode): Promise<void> {
        const N = 3;
        const d = await newDriver();
        const t = await newTopic(d, N);
        const pool = poolSize === 0 ? undefined : newPool(d, poolSize);
        const p = await newProducer(t, { batchSize, ordering, threadPool: pool });
        if (pool === undefined) assert.equal(p.threadPool.threadCount, 0, 'default producer pool is not inline');
        else assert.equal(p.threadPool, pool);
        assert.equal(p.batchSize, batchSize);
        assert.equal(p.ordering, ordering);

        const specs = makeEvents(ROUND_TRIP_EVENTS);
        const resolvedOrder: number[] = [];
        const futures = specs.map((s) => {
          const f = p.push(s.md, s.data, s.partition === undefined ? undefined : { partition: s.partition });
          void f.then(
            () => resolvedOrder.push(s.seq),
            () => undefined,
          );
          return f;
        });
        await within(p.flush(), 20000, 'flush');
        const incomplete = futures.map((f, i) => (f.completed() ? -1 : i)).filter((i) => i >= 0);
        assert.deepEqual(incomplete, [], 'push futures still pending after flush() resolved');
        const ids = await Promise.all(futures.map((f) => f.wait() as Promise<bigint>));

        const bySeq = new Map<string, PushSpec>();
        for (const s of specs) bySeq.set(new Metadata(s.expected).dump(), s);
        assert.equal(bySeq.size, specs.length, 'test bug: metadata not unique');

        const c = await newConsumer(t, '');
        const events = await pullN(c, specs.length);
        await assertNoMore(c);

        const seen = new Map<number, Event>();
        const seqOfEvent = new Map<Event, number>();
        for (const e of events) {
          const dump = e.metadata.dump();
          const s = bySeq.get(dump);
          assert.ok(s !== undefined, `received an event that was never pushed: ${describeEvent(e)}`);
          const dup = seen.get(s.seq);
          if (dup !== undefined) assert.fail(`event seq ${s.seq} delivered twice (${describeEvent(dup)} and ${describeEvent(e)})`);
          seen.set(s.seq, e);
          seqOfEvent.set(e, s.seq);
          assert.deepEqual(e.metadata.json, s.expected, `metadata value of seq ${s.seq}`);
          assert.equal(e.data.toBuffer().toString('hex'), s.expectedData.toString('hex'), `data of seq ${s.seq}`);
          assert.equal(e.data.size, s.expectedData.length, `data size of seq ${s.seq}`);
          assert.equal(e.id, ids[s.seq], `seq ${s.seq}: push future resolved with ${ids[s.seq]}, consumer saw id ${e.id}`);
          if (s.partition !== undefined) {
            assert.equal(e.partitionIndex, s.partition % N, `seq ${s.seq} pushed with {partition: ${s.partition}} went to ${e.partitionIndex}`);
          }
          assert.ok(e.partitionIndex >= 0 && e.partitionIndex < N);
          assert.deepEqual(e.partition, t.partitions[e.partitionIndex], 'event.partition differs from topic.partitions[partitionIndex]');
          assert.deepEqual({ ...e.headers }, {}, 'headers of an event pushed without headers');
        }
        assert.equal(seen.size, specs.length);

        const by = checkDensePerPartition(events, ordering === 'strict' ? (e) => seqOfEvent.get(e) as number : undefined);
        assert.equal(by.size, N, 'not every partition received events');

        if (ordering === 'strict') {
          // futures of one partition resolve in push order
          const partOf = new Map<number, number>();
          for (const [seq, e] of seen) partOf.set(seq, e.partitionIndex);
          for (let q = 0; q < N; q++) {
            const order = resolvedOrder.filter((s) => partOf.get(s) === q);
            assert.deepEqual(order, [...order].sort((a, b) => a - b), `partition ${q}: push futures resolved out of push order`);
          }
        }
      }

      it('default partition selector: round robin from 0, explicit partition i goes to i % N', { timeout: 10000 }, async () => {
        const N = 3;
        const d = await newDriver();
        const t = await newTopic(d, N);
        const p = await newProducer(t);
        const plan: (number | undefined)[] = [undefined, undefined, 5, undefined, undefined, 3, undefined, 7];
        const expected = [0, 1, 2, 2, 0, 0, 1, 1];
        const fs = plan.map((q, seq) => p.push({ seq }, undefined, q === undefined ? undefined : { partition: q }));
        await within(p.flush(), 10000, 'flush');
        await Promise.all(fs);
        const c = await newConsumer(t, '');
        const events = await pullN(c, plan.length);
        for (const e of events) assert.equal(e.partitionIndex, expected[seqOf(e)], `seq ${seqOf(e)} went to partition ${e.partitionIndex}`);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('3. data selection', () => {
      const FULL = 100;
      /** seq → data length: mostly 100 bytes, one short event and one without data. */
      const lengths = [100, 100, 4, 0, 100, 100];

      async function setup(): Promise<{ t: TopicHandle; data: Buffer[] }> {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        const p = await newProducer(t);
        const data = lengths.map((n, seq) => bytes(seq + 1, n));
        const fs = data.map((b, seq) => p.push({ seq }, b.length === 0 ? undefined : b));
        await within(p.flush(), 10000, 'flush');
        await Promise.all(fs);
        return { t, data };
      }

      function pick(buf: Buffer, ranges: readonly { offset: number; size: number }[]): string {
        return Buffer.concat(ranges.map((r) => buf.subarray(r.offset, r.offset + r.size))).toString('hex');
      }

      /** Spec examples (api.md §3.2) on a 100-byte base, and their literal flattened ranges. */
      const cases: {
        name: string;
        select: (full: DataDescriptor) => DataDescriptor | null;
        ranges: (size: number) => { offset: number; size: number }[];
      }[] = [
        {
          name: 'makeSubView(2, 5)',
          select: (full) => full.makeSubView(2, 5),
          ranges: (n) => (n === 0 ? [] : [{ offset: 2, size: Math.min(5, n - 2) }]),
        },
        {
          name: 'makeStridedView(90, 2, 2, 6)',
          select: (full) => (full.size < FULL ? null : full.makeStridedView(90, 2, 2, 6)),
          ranges: (n) => (n < FULL ? [] : [{ offset: 90, size: 2 }, { offset: 98, size: 2 }]),
        },
        {
          name: 'makeSubView(20, 30).makeStridedView(0, 3, 2, 8)',
          select: (full) => (full.size < FULL ? null : full.makeSubView(20, 30).makeStridedView(0, 3, 2, 8)),
          ranges: (n) => (n < FULL ? [] : [{ offset: 20, size: 2 }, { offset: 30, size: 2 }, { offset: 40, size: 2 }]),
        },
        {
          name: 'makeSubView(20, 30).makeSubView(5, 10)',
          select: (full) => (full.size < FULL ? null : full.makeSubView(20, 30).makeSubView(5, 10)),
          ranges: (n) => (n < FULL ? [] : [{ offset: 25, size: 10 }]),
        },
      ];

      for (const cs of cases) {
        it(`dataSelector ${cs.name} returns exactly the flattened bytes`, { timeout: 15000 }, async () => {
          const { t, data } = await setup();
          const calls: { seq: number; fullSize: number }[] = [];
          const selected = new Map<number, DataDescriptor | null>();
          const selector: DataSelector = (md, full) => {
            const seq = (md.json as Record<string, number>)['seq'] as number;
            calls.push({ seq, fullSize: full.size });
            const s = cs.select(full);
            selected.set(seq, s);
            return s;
          };
          const c = await newConsumer(t, '', { dataSelector: selector });
          assert.equal(c.dataSelector, selector);
          const events = await pullN(c, lengths.length);
          for (const e of events) {
            const seq = seqOf(e);
            const want = pick(data[seq] as Buffer, cs.ranges(lengths[seq] as number));
            assert.equal(e.data.toBuffer().toString('hex'), want, `seq ${seq} (${lengths[seq]} bytes): wrong selected bytes`);
            const desc = selected.get(seq);
            if (desc !== undefined && desc !== null && desc.size > 0) {
              assert.equal(pick(data[seq] as Buffer, desc.flatten()), want, `seq ${seq}: bytes differ from descriptor.flatten()`);
              assert.deepEqual(desc.flatten(), cs.ranges(lengths[seq] as number), `seq ${seq}: flatten() of the spec example`);
            }
          }
          // the selector sees the full descriptor of each event with data
          for (const call of calls) assert.equal(call.fullSize, lengths[call.seq], `selector for seq ${call.seq} got full.size ${call.fullSize}`);
        });
      }

      it('NoDataSelector delivers metadata without data', { timeout: 15000 }, async () => {
        const { t } = await setup();
        const c = await newConsumer(t, '', { dataSelector: NoDataSelector });
        const events = await pullN(c, lengths.length);
        for (const e of events) {
          assert.equal(e.data.size, 0, `seq ${seqOf(e)} has data`);
          assert.equal(e.data.toBuffer().length, 0);
        }
        assert.deepEqual(events.map(seqOf), lengths.map((_, i) => i));
      });

      it('default consumer (no selector, no allocator) receives the full data', { timeout: 15000 }, async () => {
        const { t, data } = await setup();
        const c = await newConsumer(t, '');
        const events = await pullN(c, lengths.length);
        for (const e of events) assert.equal(e.data.toBuffer().toString('hex'), (data[seqOf(e)] as Buffer).toString('hex'));
      });

      it('a two-segment dataAllocator receives the bytes split across its segments', { timeout: 15000 }, async () => {
        const { t, data } = await setup();
        const allocated = new Map<number, Buffer[]>();
        const sizes: { seq: number; size: number }[] = [];
        const allocator: DataAllocator = (md, sel) => {
          const seq = (md.json as Record<string, number>)['seq'] as number;
          sizes.push({ seq, size: sel.size });
          const segs = [Buffer.alloc(3), Buffer.alloc(sel.size - 3)];
          allocated.set(seq, segs);
          return segs;
        };
        const c = await newConsumer(t, '', { dataAllocator: allocator });
        const events = await pullN(c, lengths.length);
        for (const e of events) {
          const seq = seqOf(e);
          const full = data[seq] as Buffer;
          if (full.length === 0) {
            assert.equal(e.data.size, 0);
            assert.ok(!allocated.has(seq), 'allocator called for an event without data');
            continue;
          }
          const segs = allocated.get(seq);
          assert.ok(segs !== undefined, `allocator not called for seq ${seq}`);
          assert.equal(segs[0]?.toString('hex'), full.subarray(0, 3).toString('hex'), `seq ${seq}: first segment`);
          assert.equal(segs[1]?.toString('hex'), full.subarray(3).toString('hex'), `seq ${seq}: second segment`);
          assert.equal(e.data.segments.length, 2, `seq ${seq}: event data is not the allocated memory`);
          assert.equal(e.data.segments[0], segs[0]);
          assert.equal(e.data.segments[1], segs[1]);
          assert.equal(e.data.toBuffer().toString('hex'), full.toString('hex'));
        }
        for (const s of sizes) assert.equal(s.size, lengths[s.seq], `allocator asked for ${s.size} bytes for seq ${s.seq}`);
      });

      it('nested selection scattered into a two-segment allocation', { timeout: 15000 }, async () => {
        const { t, data } = await setup();
        const allocated = new Map<number, Buffer[]>();
        const c = await newConsumer(t, '', {
          dataSelector: (_md, full) => (full.size < FULL ? null : full.makeSubView(20, 30).makeStridedView(0, 3, 2, 8)),
          dataAllocator: (md, sel) => {
            assert.equal(sel.size, 6);
            const segs = [Buffer.alloc(3), Buffer.alloc(3)];
            allocated.set((md.json as Record<string, number>)['seq'] as number, segs);
            return segs;
          },
        });
        const events = await pullN(c, lengths.length);
        for (const e of events) {
          const seq = seqOf(e);
          const full = data[seq] as Buffer;
          if (full.length < FULL) {
            assert.equal(e.data.size, 0);
            continue;
          }
          const segs = allocated.get(seq) as Buffer[];
          const want = [full[20], full[21], full[30], full[31], full[40], full[41]] as number[];
          assert.deepEqual([...(segs[0] as Buffer)], want.slice(0, 3), `seq ${seq}: first segment`);
          assert.deepEqual([...(segs[1] as Buffer)], want.slice(3), `seq ${seq}: second segment`);
        }
      });

      it('an allocator handing out consecutive slices of one buffer gets every event\'s bytes', { timeout: 30000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        const total = 1500;
        // sizes of 8-byte multiples and not: some slices are adjacent in memory as in the file, some are not
        const len = (seq: number): number => 700 + (seq % 7) * 4;
        const p = await newProducer(t);
        for (let seq = 0; seq < total; seq++) p.push({ seq }, bytes(seq, len(seq)));
        await within(p.flush(), 10000, 'flush');
        const arena = Buffer.alloc(total * 800);
        let used = 0;
        const c = await newConsumer(t, '', {
          dataSelector: (_md, full) => full.makeSubView(0, full.size),
          dataAllocator: (_md, sel) => {
            const slice = arena.subarray(used, used + sel.size);
            used += (sel.size + 7) & ~7;
            return slice;
          },
        });
        for (const e of await pullN(c, total)) {
          const seq = seqOf(e);
          assert.equal(e.data.toBuffer().toString('hex'), bytes(seq, len(seq)).toString('hex'), `seq ${seq}: wrong data`);
        }
      });

      it('strided selections of many events: every selected byte, in order', { timeout: 30000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        const total = 800;
        await fill(t, total, { dataLen: 400 });
        // 40 blocks of 3 bytes, one every 10: more ranges per fetch than one scatter read can take (IOV_MAX)
        const c = await newConsumer(t, '', { dataSelector: (_md, full) => full.makeStridedView(1, 40, 3, 7) });
        for (const e of await pullN(c, total)) {
          const seq = seqOf(e);
          const full = bytes(seq, 400);
          const want = Buffer.concat(Array.from({ length: 40 }, (_, k) => full.subarray(1 + 10 * k, 4 + 10 * k)));
          assert.equal(e.data.toBuffer().toString('hex'), want.toString('hex'), `seq ${seq}: wrong selected bytes`);
        }
      });

      it('an allocator with too little memory rejects the pull with the §1 text', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        await (async () => {
          const p = await newProducer(t);
          await p.push({ seq: 0 }, bytes(0, 100));
          await p.flush();
        })();
        const c = await newConsumer(t, '', { dataAllocator: () => Buffer.alloc(1) });
        await assert.rejects(within(c.pull().wait(5000), 6000, 'pull'), (err: unknown) => {
          assert.ok(err instanceof DiasporaError, String(err));
          assert.equal(err.message, 'DataView has insufficient capacity for descriptor segments');
          return true;
        });
      });

      it('a read error rejects a pull without advancing: later pulls deliver every event once', { timeout: 20000 }, async () => {
        const N = 3;
        const d = await newDriver();
        const t = await newTopic(d, N);
        const total = 12;
        await fill(t, total, { dataLen: 10, partitioned: true }); // seq → partition seq % 3
        let failOnce = true;
        const c = await newConsumer(t, '', {
          dataAllocator: (md, sel) => {
            if (failOnce && (md.json as Record<string, number>)['seq'] === 4) {
              failOnce = false;
              throw new Error('transient allocation failure');
            }
            return Buffer.alloc(sel.size);
          },
        });
        const events: Event[] = [];
        let errors = 0;
        const deadline = performance.now() + 4000;
        while (events.length < total && performance.now() < deadline) {
          try {
            const e = await c.pull().wait(500);
            if (e !== undefined) events.push(e);
          } catch {
            errors++;
          }
        }
        assert.ok(!failOnce, 'the failing allocation never happened');
        assert.ok(errors <= 1, `${errors} pulls rejected for one failure`);
        const seqs = events.map(seqOf).sort((a, b) => a - b);
        assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i), 'events lost or duplicated around a read error');
        checkDensePerPartition(events, seqOf);
        await assertNoMore(c);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('4. concurrent producer and consumer', () => {
      const variants: { name: string; burst: number; producerPause: () => Promise<unknown>; consumerPauseEvery: number; peer: boolean }[] = [
        { name: 'consumer faster than producer', burst: 10, producerPause: () => sleep(1), consumerPauseEvery: 0, peer: false },
        { name: 'consumer slower than producer', burst: 50, producerPause: () => new Promise((r) => setImmediate(r)), consumerPauseEvery: 5, peer: false },
      ];
      if (h.createPeerDriver !== undefined) {
        variants.push(
          { name: 'separate driver instances, consumer faster', burst: 10, producerPause: () => sleep(1), consumerPauseEvery: 0, peer: true },
          { name: 'separate driver instances, consumer slower', burst: 50, producerPause: () => new Promise((r) => setImmediate(r)), consumerPauseEvery: 5, peer: true },
        );
      }
      for (const v of variants) {
        it(`${v.name}: ${CONCURRENT_EVENTS} events, nothing lost or duplicated, order kept`, { timeout: 40000 }, async () => {
          const N = 3;
          const d = await newDriver();
          const t = await newTopic(d, N);
          const ct = v.peer ? await openTopic(await peerDriver(d), t.name) : t;
          const c = await newConsumer(ct, '');
          const p = await newProducer(t);
          const futures: Future<bigint>[] = [];

          const produce = (async () => {
            for (let seq = 0; seq < CONCURRENT_EVENTS; ) {
              for (let k = 0; k < v.burst && seq < CONCURRENT_EVENTS; k++, seq++) {
                futures.push(p.push({ seq }, seq % 7 === 0 ? bytes(seq, 50) : undefined));
              }
              await p.ready();
              await v.producerPause();
            }
            await within(p.flush(), 20000, 'flush');
          })();

          const consume = (async () => {
            const out: Event[] = [];
            const deadline = performance.now() + 30000;
            while (out.length < CONCURRENT_EVENTS) {
              const left = Math.ceil(deadline - performance.now());
              if (left <= 0) assert.fail(`consumer received ${out.length} of ${CONCURRENT_EVENTS} events`);
              const e = await c.pull().wait(left);
              if (e === undefined) continue;
              out.push(e);
              if (v.consumerPauseEvery > 0 && out.length % v.consumerPauseEvery === 0) await sleep(1);
            }
            return out;
          })();

          const [, events] = await Promise.all([produce, consume]);
          await assertNoMore(c, 200);
          const ids = await Promise.all(futures.map((f) => f.wait() as Promise<bigint>));
          const seen = new Set<number>();
          for (const e of events) {
            const seq = seqOf(e);
            assert.ok(!seen.has(seq), `seq ${seq} delivered twice`);
            seen.add(seq);
            assert.equal(e.id, ids[seq], `seq ${seq}: future id ${ids[seq]}, delivered id ${e.id}`);
            if (seq % 7 === 0) assert.equal(e.data.toBuffer().toString('hex'), bytes(seq, 50).toString('hex'));
            else assert.equal(e.data.size, 0);
          }
          assert.equal(seen.size, CONCURRENT_EVENTS);
          checkDensePerPartition(events, seqOf);
        });
      }
      it('a consumer following a busy producer triggers no MaxListenersExceededWarning', { timeout: 20000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 2);
        const c = await newConsumer(t, '');
        const p = await newProducer(t);
        const warnings: string[] = [];
        const onWarning = (w: Error): void => {
          if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message);
        };
        process.on('warning', onWarning);
        try {
          const total = 200;
          const consume = pullN(c, total, 15000);
          for (let seq = 0; seq < total; seq++) {
            await p.push({ seq }); // one write (and one consumer wake-up) at a time
            if (seq % 4 === 0) await sleep(1);
          }
          const es = await consume;
          checkDensePerPartition(es, seqOf);
          await sleep(100); // warnings are emitted on a later tick
        } finally {
          process.off('warning', onWarning);
        }
        assert.deepEqual(warnings, [], 'listeners accumulate on an AbortSignal while following a producer');
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('5. acknowledgement and restart', () => {
      it('acknowledged positions survive consumer recreation; only contiguous acks advance; startFrom', { timeout: 30000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        await fill(t, 20);

        // c1: pull 20, acknowledge the first 10 and wait until they are durable
        const c1 = await newConsumer(t, 'c', { ackIntervalMs: 20 });
        const first = await pullN(c1, 20);
        assert.deepEqual(first.map((e) => e.id), Array.from({ length: 20 }, (_, i) => BigInt(i)));
        await within(Promise.all(first.slice(0, 10).map((e) => e.acknowledge())), 5000, 'acknowledge futures (ackIntervalMs 20)');
        await c1.close();

        // c2 restarts at 10; ack 10 and 12 (not 11): position 11
        const c2 = await newConsumer(t, 'c', { ackIntervalMs: 60000 });
        const second = await pullN(c2, 5);
        assert.deepEqual(second.map((e) => e.id), [10n, 11n, 12n, 13n, 14n], 'consumer "c" did not restart at its committed position 10');
        const a10 = second[0]?.acknowledge();
        void second[2]?.acknowledge();
        void second[2]?.acknowledge(); // twice: a no-op
        await within(c2.close(), 5000, 'close'); // close persists positions
        await within(Promise.resolve(a10), 5000, 'acknowledge future after close');

        // c3 restarts at 11 (12 acknowledged, but 11 is not); ack 12 then 11 → position 13
        const c3 = await newConsumer(t, 'c', { ackIntervalMs: 20 });
        const third = await pullN(c3, 2);
        assert.deepEqual(third.map((e) => e.id), [11n, 12n], 'position advanced past an unacknowledged event (or did not persist on close)');
        const a12 = third[1]?.acknowledge();
        const a11 = third[0]?.acknowledge();
        await within(Promise.all([a12, a11]), 5000, 'acknowledge futures');
        await c3.close();

        const c4 = await newConsumer(t, 'c');
        assert.equal((await pullOne(c4)).id, 13n, 'out-of-order acknowledgements 12, 11 did not advance the position to 13');
        await c4.close();

        // startFrom 'earliest' ignores the committed position (and acknowledging nothing changes nothing)
        const c5 = await newConsumer(t, 'c', { startFrom: 'earliest' });
        assert.equal((await pullOne(c5)).id, 0n, "startFrom 'earliest' did not start at 0");
        await c5.close();
        const c6 = await newConsumer(t, 'c', { startFrom: 'committed' });
        assert.equal((await pullOne(c6)).id, 13n, "committed position changed by a consumer that acknowledged nothing");
        await c6.close();

        // startFrom 'latest': nothing until a new event, which then has id 20
        const c7 = await newConsumer(t, 'c', { startFrom: 'latest' });
        assert.equal(await c7.pull().wait(200), undefined, "startFrom 'latest' delivered an old event");
        const p = await newProducer(t);
        const f = p.push({ seq: 20 });
        await within(p.flush(), 5000, 'flush');
        assert.equal(await f, 20n);
        const late = await pullOne(c7);
        assert.equal(late.id, 20n);
        assert.equal(seqOf(late), 20);
      });

      it('commit() persists acknowledgements before the ack interval', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        await fill(t, 6);
        const c1 = await newConsumer(t, 'k', { ackIntervalMs: 60000 });
        const es = await pullN(c1, 3);
        const acks = es.map((e) => e.acknowledge());
        await within(c1.commit(), 5000, 'commit');
        await within(Promise.all(acks), 5000, 'acknowledge futures after commit()');
        // same-name consumers running together split partitions on kafka (api.md §9): close first
        await c1.close();
        const c2 = await newConsumer(t, 'k');
        assert.equal((await pullOne(c2)).id, 3n, 'a second consumer "k" does not see the committed position 3');
      });

      it('startAt starts the given partitions at the given ids; the others follow startFrom', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 2);
        const p = await newProducer(t);
        const fs = Array.from({ length: 12 }, (_, seq) => p.push({ seq }, undefined, { partition: seq % 2 }));
        await within(p.flush(), 5000, 'flush');
        await Promise.all(fs);
        const c = await newConsumer(t, '', { startFrom: 'earliest', startAt: new Map([[0, 4n]]) });
        const es = await pullN(c, 8);
        assert.deepEqual(es.filter((e) => e.partitionIndex === 0).map((e) => [e.id, seqOf(e)]), [
          [4n, 8],
          [5n, 10],
        ]);
        assert.equal(es.filter((e) => e.partitionIndex === 1).length, 6);
        await assertNoMore(c);
        await assert.rejects(newConsumer(t, '', { targets: [1], startAt: new Map([[0, 1n]]) }), /Invalid startAt: partition 0/);
      });

      it('anonymous consumer "" always starts at the beginning', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        await fill(t, 8);
        const a1 = await newConsumer(t, '', { ackIntervalMs: 0 });
        const es = await pullN(a1, 5);
        await within(Promise.all(es.map((e) => e.acknowledge())), 5000, 'anonymous acknowledge');
        await a1.close();
        const a2 = await newConsumer(t, '');
        assert.equal((await pullOne(a2)).id, 0n, 'anonymous consumer did not restart at 0');
        await a2.close();
        // also with startFrom 'committed' explicitly
        const a3 = await newConsumer(t, '', { startFrom: 'committed' });
        assert.equal((await pullOne(a3)).id, 0n);
      });

      if (h.createPeerDriver !== undefined) {
        it('acknowledged positions are visible to another driver instance', { timeout: 15000 }, async () => {
          const d = await newDriver();
          const t = await newTopic(d, 1);
          await fill(t, 10);
          const c1 = await newConsumer(t, 'peer', { ackIntervalMs: 0 });
          const es = await pullN(c1, 4);
          await within(Promise.all(es.map((e) => e.acknowledge())), 5000, 'acknowledge');
          await c1.close();
          const t2 = await openTopic(await peerDriver(d), t.name);
          const c2 = await newConsumer(t2, 'peer');
          assert.equal((await pullOne(c2)).id, 4n);
        });
      }
    });

    // -------------------------------------------------------------------------------------------
    describe('5b. consumer targets (api.md §9: the partitions to read)', () => {
      interface Pushed {
        id: bigint;
        md: Json;
        data: Buffer;
      }

      /** Pushes `perPartition` events to each of the `n` partitions (interleaved), flushes; the events per partition in id order. */
      async function pushEach(t: TopicHandle, n: number, perPartition: number, from = 0): Promise<Map<number, Pushed[]>> {
        const p = await newProducer(t);
        const pending: { part: number; md: Json; data: Buffer; f: Future<bigint> }[] = [];
        for (let k = from; k < from + perPartition; k++) {
          for (let part = 0; part < n; part++) {
            const md = { part, k, tag: `p${part}-e${k}` };
            const data = bytes(part * 1000 + k, 5 + k);
            pending.push({ part, md, data, f: p.push(md, data, { partition: part }) });
          }
        }
        await within(p.flush(), 10000, 'flush');
        const out = new Map<number, Pushed[]>();
        for (const e of pending) {
          const id = (await within(e.f.wait(), 5000, 'push future')) as bigint;
          let l = out.get(e.part);
          if (l === undefined) out.set(e.part, (l = []));
          l.push({ id, md: e.md, data: e.data });
        }
        for (const l of out.values()) l.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        await p.close();
        return out;
      }

      /** The received events as [partition, id, metadata, data], per partition in delivery order. */
      function received(es: readonly Event[]): [number, bigint, Json, Buffer][] {
        return [...es]
          .map((e) => [e.partitionIndex, e.id, e.metadata.json, e.data.toBuffer()] as [number, bigint, Json, Buffer])
          .sort((a, b) => a[0] - b[0]); // stable: keeps the delivery order within a partition
      }

      function expected(pushed: Map<number, Pushed[]>, parts: number[]): [number, bigint, Json, Buffer][] {
        return parts.flatMap((part) => (pushed.get(part) ?? []).map((e) => [part, e.id, e.md, e.data] as [number, bigint, Json, Buffer]));
      }

      it('targets [1] receives exactly partition 1; targets [0, 2] exactly partitions 0 and 2 (also events pushed later)', { timeout: 30000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 3);
        const first = await pushEach(t, 3, 4);
        for (const part of [0, 1, 2]) assert.equal(first.get(part)?.length, 4, `partition ${part} holds 4 events`);

        const c1 = await newConsumer(t, '', { startFrom: 'earliest', targets: [1] });
        const c02 = await newConsumer(t, '', { startFrom: 'earliest', targets: [0, 2] });
        const all = await newConsumer(t, '', { startFrom: 'earliest' });
        assert.deepEqual([...c1.targets], [1]);
        assert.deepEqual([...c02.targets], [0, 2]);
        assert.deepEqual([...all.targets], []);

        assert.deepEqual(received(await pullN(c1, 4)), expected(first, [1]), 'targets [1]');
        await assertNoMore(c1, 300);
        assert.deepEqual(received(await pullN(c02, 8)), expected(first, [0, 2]), 'targets [0, 2]');
        await assertNoMore(c02, 300);
        // without targets: every partition (the events above are not an artefact of the topic)
        assert.deepEqual(received(await pullN(all, 12)), expected(first, [0, 1, 2]), 'no targets');
        await assertNoMore(all, 150);

        // events pushed while the consumers wait: still only their partitions
        const later = await pushEach(t, 3, 1, 4);
        assert.deepEqual(received(await pullN(c1, 1)), expected(later, [1]), 'targets [1], later event');
        await assertNoMore(c1, 300);
        assert.deepEqual(received(await pullN(c02, 2)), expected(later, [0, 2]), 'targets [0, 2], later events');
        await assertNoMore(c02, 300);
      });

      it('a target partition out of range (or not an integer) is rejected with a DiasporaError naming it', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 3);
        const attempt = async (targets: number[]): Promise<void> => {
          const c = await t.consumer('', { startFrom: 'earliest', targets });
          await c.close(); // only reached when the consumer was (wrongly) created
        };
        for (const [targets, bad] of [
          [[3], '3'],
          [[0, 3], '3'],
          [[-1], '-1'],
          [[1.5], '1.5'],
        ] as [number[], string][]) {
          await assert.rejects(attempt(targets), (err: unknown) => {
            assert.ok(err instanceof DiasporaError, `targets ${JSON.stringify(targets)}: not a DiasporaError: ${String(err)}`);
            assert.ok(err.message.startsWith(`Invalid target partition ${bad} `), `targets ${JSON.stringify(targets)}: ${err.message}`);
            assert.ok(err.message.includes('3 partitions'), err.message);
            return true;
          });
        }
        // the topic is still usable with valid targets
        await fill(t, 3, { partitioned: true });
        const c = await newConsumer(t, '', { startFrom: 'earliest', targets: [2] });
        const e = await pullOne(c);
        assert.deepEqual([e.partitionIndex, e.id, seqOf(e)], [2, 0n, 2]);
        await assertNoMore(c);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('6. waiting on an idle topic', () => {
      it('pull().wait(300) on an empty topic resolves undefined after >= 300 ms', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 3);
        const c = await newConsumer(t, '');
        const t0 = performance.now();
        const e = await c.pull().wait(300);
        const dt = performance.now() - t0;
        assert.equal(e, undefined);
        assert.ok(dt >= 295, `wait(300) returned after ${dt.toFixed(1)} ms`);
        assert.ok(dt < 2000, `wait(300) returned after ${dt.toFixed(1)} ms`);
      });

      it('a 1 s idle wait costs the process < 200 ms of CPU time', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 3);
        const c = await newConsumer(t, '');
        assert.equal(await c.pull().wait(50), undefined); // warm up
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const e = await c.pull().wait(1000);
        const dt = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        const cpuMs = (cpu.user + cpu.system) / 1000;
        assert.equal(e, undefined);
        assert.ok(dt >= 995, `wait(1000) returned after ${dt.toFixed(1)} ms`);
        assert.ok(cpuMs < 200, `idle wait used ${cpuMs.toFixed(1)} ms CPU in ${dt.toFixed(0)} ms (busy loop?)`);
      });

      it('an abandoned, timed-out pull does not swallow an event', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        const c = await newConsumer(t, '');
        const abandoned = c.pull();
        assert.equal(await abandoned.wait(50), undefined);
        const p = await newProducer(t);
        assert.equal(await p.push({ seq: 0 }), 0n);
        await within(p.flush(), 5000, 'flush');
        const e = await pullOne(c, 3000);
        assert.equal(e.id, 0n, 'the new pull did not get event 0');
        assert.equal(seqOf(e), 0);
        assert.equal(abandoned.completed(), false, 'the abandoned pull took the event');
      });

      it('a waiting pull wakes up promptly when an event is pushed', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 2);
        const c = await newConsumer(t, '');
        const pending = c.pull().wait(5000);
        await sleep(150);
        const p = await newProducer(t);
        const tPush = performance.now();
        p.push({ seq: 0 }, bytes(0, 10));
        const e = await pending;
        const latency = performance.now() - tPush;
        assert.ok(e !== undefined, 'waiting pull did not receive the event');
        assert.equal(seqOf(e), 0);
        assert.equal(e.data.toBuffer().toString('hex'), bytes(0, 10).toString('hex'));
        assert.ok(latency < 1500, `event delivered ${latency.toFixed(0)} ms after push`);
      });

      it('several outstanding pulls get distinct events in call order', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        const c = await newConsumer(t, '');
        const waits = [c.pull(), c.pull(), c.pull()].map((f) => f.wait(5000));
        await sleep(20);
        const p = await newProducer(t);
        for (let seq = 0; seq < 3; seq++) p.push({ seq });
        await within(p.flush(), 5000, 'flush');
        const es = await Promise.all(waits);
        assert.deepEqual(es.map((e) => e?.id), [0n, 1n, 2n]);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('7. errors', () => {
      it('schema validator rejects with InvalidMetadata and does not consume an event id', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1, { validator: { type: 'schema', schema: { type: 'object', required: ['x'] } } });
        const p = await newProducer(t);
        assert.equal(await p.push({ x: 1 }), 0n);
        let f!: Future<bigint>;
        assert.doesNotThrow(() => {
          f = p.push({});
        }, 'push threw instead of rejecting its future');
        await assert.rejects(f.wait(), (err: unknown) => {
          assert.ok(err instanceof InvalidMetadata, `not InvalidMetadata: ${String(err)}`);
          assert.ok(err instanceof DiasporaError);
          assert.ok(
            err.message.startsWith('Metadata does not comply to required schema:\n'),
            `message: ${JSON.stringify(err.message)}`,
          );
          return true;
        });
        assert.equal(await p.push({ x: 2 }), 1n, 'a failed push consumed an event id');
        // the same within one synchronous batch
        const fs = [p.push({ x: 3 }), p.push({ y: 0 }), p.push({ x: 4 })];
        await within(p.flush(), 5000, 'flush');
        assert.equal(await fs[0], 2n);
        await assert.rejects((fs[1] as Future<bigint>).wait(), InvalidMetadata);
        assert.equal(await fs[2], 3n, 'a failed push inside a batch consumed an event id');
        const c = await newConsumer(t, '');
        const es = await pullN(c, 4);
        assert.deepEqual(es.map((e) => e.metadata.dump()), ['{"x":1}', '{"x":2}', '{"x":3}', '{"x":4}']);
        await assertNoMore(c);
      });

      it('eventbridge validator rejection text', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1, { validator: { type: 'eventbridge', schema: { source: ['sensor'] } } });
        const p = await newProducer(t);
        await assert.rejects(p.push({ source: 'other' }).wait(), (err: unknown) => {
          assert.ok(err instanceof InvalidMetadata, String(err));
          assert.equal(err.message, 'Metadata object does not satisfy eventbridge pattern');
          return true;
        });
        assert.equal(await p.push({ source: 'sensor' }), 0n);
      });

      it('unknown validator type: createTopic rejects with the factory texts', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const n1 = h.topicName('nosuch');
        await assert.rejects(d.createTopic(n1, { options: h.topicOptions(1), validator: { type: 'nosuch' } }), (err: unknown) => {
          assert.ok(err instanceof DiasporaError, String(err));
          assert.ok(err.message.startsWith('Trying to load diaspora-stream-nosuch failed:'), err.message);
          return true;
        });
        assert.equal(await d.topicExists(n1), false, 'a topic was created despite the failure');
        const n2 = h.topicName('nosuchmod');
        await assert.rejects(
          d.createTopic(n2, { options: h.topicOptions(1), validator: { type: 'nosuch:./missing.js' } }),
          (err: unknown) => {
            assert.ok(err instanceof DiasporaError, String(err));
            assert.ok(err.message.startsWith('Could not load module ./missing.js:'), err.message);
            return true;
          },
        );
        assert.equal(await d.topicExists(n2), false);
      });

      it('push after producer.close() rejects "Producer is closed"', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        const p = await newProducer(t);
        const f0 = p.push({ seq: 0 });
        await p.close();
        assert.equal(f0.completed(), true, 'close() did not flush an earlier push');
        assert.equal(await f0, 0n);
        let f!: Future<bigint>;
        assert.doesNotThrow(() => {
          f = p.push({ seq: 1 });
        });
        await assert.rejects(f.wait(), (err: unknown) => {
          assert.ok(err instanceof DiasporaError, String(err));
          assert.equal(err.message, 'Producer is closed');
          return true;
        });
        const c = await newConsumer(t, '');
        assert.equal((await pullOne(c)).id, 0n);
        await assertNoMore(c);
      });

      it('pull after consumer.close() rejects "Consumer is closed"; so does a pending pull', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        const c = await newConsumer(t, '');
        const pending = c.pull().wait(5000);
        // handle the rejection from the start: it may come before close() resolves
        const outcome = pending.then(
          () => undefined,
          (err: unknown) => err,
        );
        await sleep(20);
        await within(c.close(), 5000, 'close');
        await assert.rejects(within(outcome.then((e) => Promise.reject(e)), 2000, 'pending pull'), (err: unknown) => {
          assert.ok(err instanceof DiasporaError, String(err));
          assert.equal(err.message, 'Consumer is closed');
          return true;
        });
        await assert.rejects(c.pull().wait(1000), (err: unknown) => {
          assert.ok(err instanceof DiasporaError, String(err));
          assert.equal(err.message, 'Consumer is closed');
          return true;
        });
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('8. process()', () => {
      for (const poolSize of [0, 2]) {
        const label = poolSize === 0 ? 'inline pool' : `makeThreadPool(${poolSize})`;
        describe(label, () => {
          async function setup(n: number): Promise<{ c: Consumer; t: TopicHandle; pool: ThreadPool | undefined }> {
            const d = await newDriver();
            const t = await newTopic(d, 1);
            await fill(t, n);
            const pool = poolSize === 0 ? undefined : newPool(d, poolSize);
            const c = await newConsumer(t, '', { threadPool: pool });
            return { c, t, pool };
          }
          /** A processor that yields to the event loop so pooled calls overlap. */
          const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

          it('ends on StopEventProcessor with the count of events processed before it', { timeout: 15000 }, async () => {
            const { c } = await setup(30);
            let calls = 0;
            let ok = 0;
            const n = await within(
              c.process(async () => {
                const k = ++calls;
                await tick();
                if (k === 10) throw new StopEventProcessor('enough');
                ok++;
              }),
              10000,
              'process',
            );
            assert.equal(n, ok, 'process() result differs from the number of normal returns');
            if (poolSize === 0) {
              assert.equal(n, 9);
              assert.equal(calls, 10);
            } else assert.ok(n >= 9, `only ${n} processed`);
            // nothing swallowed: the next pull is the first event not passed to the processor
            assert.equal((await pullOne(c)).id, BigInt(calls));
          });

          it('ends after maxEvents', { timeout: 15000 }, async () => {
            const { c } = await setup(30);
            const ids: bigint[] = [];
            const n = await within(
              c.process(
                async (e) => {
                  await tick();
                  ids.push(e.id);
                },
                { maxEvents: 12 },
              ),
              10000,
              'process',
            );
            assert.equal(n, 12);
            assert.deepEqual([...ids].sort((a, b) => (a < b ? -1 : 1)), Array.from({ length: 12 }, (_, i) => BigInt(i)));
            const rest = await pullN(c, 18);
            assert.deepEqual(rest.map((e) => e.id), Array.from({ length: 18 }, (_, i) => BigInt(12 + i)), 'events after maxEvents lost or reordered');
            await assertNoMore(c);
          });

          it('ends when the AbortSignal aborts, without swallowing an event', { timeout: 15000 }, async () => {
            const { c, t } = await setup(10);
            const ac = new AbortController();
            let processed = 0;
            const timer = setTimeout(() => ac.abort(), 300);
            const t0 = performance.now();
            const n = await within(
              c.process(
                async () => {
                  await tick();
                  processed++;
                },
                { signal: ac.signal, timeoutMs: 5000 },
              ),
              8000,
              'process',
            );
            clearTimeout(timer);
            const dt = performance.now() - t0;
            assert.equal(n, 10);
            assert.equal(processed, 10);
            assert.ok(dt < 3000, `abort noticed only after ${dt.toFixed(0)} ms (timeoutMs is 5000)`);
            const p = await newProducer(t);
            p.push({ seq: 10 });
            await within(p.flush(), 5000, 'flush');
            assert.equal((await pullOne(c)).id, 10n, 'the pull withdrawn by abort swallowed the next event');
          });

          it('an already aborted signal processes nothing', { timeout: 10000 }, async () => {
            const { c } = await setup(3);
            const ac = new AbortController();
            ac.abort();
            let calls = 0;
            const n = await within(c.process(() => void calls++, { signal: ac.signal }), 5000, 'process');
            assert.equal(n, 0);
            assert.equal(calls, 0);
            assert.equal((await pullOne(c)).id, 0n);
          });

          it('ends on an idle pull with stopWhenIdle', { timeout: 15000 }, async () => {
            const { c } = await setup(15);
            const seen = new Set<bigint>();
            const t0 = performance.now();
            const n = await within(
              c.process(
                async (e) => {
                  await tick();
                  seen.add(e.id);
                },
                { stopWhenIdle: true, timeoutMs: 200 },
              ),
              8000,
              'process',
            );
            assert.equal(n, 15);
            assert.equal(seen.size, 15);
            assert.ok(performance.now() - t0 >= 195, 'stopWhenIdle stopped before an idle pull timed out');
          });

          it('rejects with the Error a processor throws', { timeout: 15000 }, async () => {
            const { c } = await setup(20);
            const boom = new Error('boom');
            let calls = 0;
            await assert.rejects(
              within(
                c.process(async () => {
                  calls++;
                  await tick();
                  if (calls === 5) throw boom;
                }),
                10000,
                'process',
              ),
              (err: unknown) => err === boom,
            );
            assert.ok(calls >= 5);
          });

          it('a thread pool given to process() is used', { timeout: 15000 }, async () => {
            const d = await newDriver();
            const t = await newTopic(d, 1);
            await fill(t, 20);
            const c = await newConsumer(t, '');
            const pool = poolSize === 0 ? d.defaultThreadPool() : newPool(d, poolSize);
            let active = 0;
            let maxActive = 0;
            const n = await within(
              c.process(
                async () => {
                  active++;
                  maxActive = Math.max(maxActive, active);
                  await sleep(2);
                  active--;
                },
                { threadPool: pool, stopWhenIdle: true, timeoutMs: 200 },
              ),
              10000,
              'process',
            );
            assert.equal(n, 20);
            if (poolSize === 0) assert.equal(maxActive, 1, 'inline processing overlapped');
            else {
              assert.ok(maxActive > 1, 'pooled processing never overlapped');
              assert.ok(maxActive <= poolSize, `${maxActive} concurrent calls on a pool of ${poolSize}`);
            }
          });
        });
      }
    });

    // -------------------------------------------------------------------------------------------
    describe('9. back-pressure', () => {
      it('batchSize 1, maxNumBatches 2: hasCapacity() turns false, ready() resolves later, nothing dropped', { timeout: 20000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 3);
        const p = await newProducer(t, { batchSize: 1, maxNumBatches: 2 });
        assert.equal(p.maxNumBatches, 2);
        assert.equal(p.hasCapacity(), true, 'a fresh producer has no capacity');
        const total = 300;
        const fs: Future<bigint>[] = [];
        let sawFull = false;
        for (let seq = 0; seq < total; seq++) {
          fs.push(p.push({ seq }, seq % 3 === 0 ? bytes(seq, 20) : undefined));
          if (!p.hasCapacity()) sawFull = true;
        }
        assert.ok(sawFull, 'hasCapacity() never became false');
        assert.equal(p.hasCapacity(), false);
        let capacityWhenReady: boolean | undefined;
        await within(
          p.ready().then(() => {
            capacityWhenReady = p.hasCapacity();
          }),
          10000,
          'ready()',
        );
        assert.equal(capacityWhenReady, true, 'ready() resolved while hasCapacity() was false');

        // a well-behaved caller: await ready() before each push
        for (let seq = total; seq < 2 * total; seq++) {
          await within(p.ready(), 10000, 'ready()');
          assert.equal(p.hasCapacity(), true, 'no capacity right after ready() resolved');
          fs.push(p.push({ seq }));
        }
        await within(p.flush(), 15000, 'flush');
        const ids = await Promise.all(fs.map((f) => f.wait() as Promise<bigint>));
        const c = await newConsumer(t, '');
        const es = await pullN(c, 2 * total);
        await assertNoMore(c);
        for (const e of es) assert.equal(e.id, ids[seqOf(e)]);
        assert.equal(new Set(es.map(seqOf)).size, 2 * total);
        checkDensePerPartition(es, seqOf);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('10. flush', () => {
      for (const ordering of ['strict', 'loose'] as const) {
        it(`flush covers every earlier push with makeThreadPool(3), ordering ${ordering}`, { timeout: 20000 }, async () => {
          const d = await newDriver();
          const t = await newTopic(d, 3);
          const pool = newPool(d, 3);
          const p = await newProducer(t, { threadPool: pool, ordering });
          const fs: Future<bigint>[] = [];
          for (let seq = 0; seq < 500; seq++) fs.push(p.push({ seq }, seq % 4 === 0 ? bytes(seq, 30) : undefined));
          await within(p.flush(), 15000, 'flush');
          const pending = fs.map((f, i) => (f.completed() ? -1 : i)).filter((i) => i >= 0);
          assert.deepEqual(pending, [], `${pending.length} push futures not completed when flush() resolved`);
          const c = await newConsumer(t, '');
          const es = await pullN(c, 500);
          await assertNoMore(c);
          assert.equal(new Set(es.map(seqOf)).size, 500);
        });
      }

      it('flush closes a batch that is neither full nor lingered out', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 2);
        const p = await newProducer(t, { batchSize: 1000, lingerMs: 60000 });
        const fs: Future<bigint>[] = [];
        for (let seq = 0; seq < 50; seq++) fs.push(p.push({ seq }));
        await within(p.flush(), 5000, 'flush of an open batch');
        assert.ok(fs.every((f) => f.completed()));
        const c = await newConsumer(t, '');
        await pullN(c, 50);
      });

      it('close() flushes every earlier push', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 3);
        const pool = newPool(d, 3);
        const p = await t.producer({ threadPool: pool, batchSize: 7 });
        const fs: Future<bigint>[] = [];
        for (let seq = 0; seq < 100; seq++) fs.push(p.push({ seq }));
        await within(p.close(), 10000, 'producer close');
        assert.ok(fs.every((f) => f.completed()), 'push futures pending after close()');
        const c = await newConsumer(t, '');
        const es = await pullN(c, 100);
        await assertNoMore(c);
        checkDensePerPartition(es, seqOf);
      });

      it("driver.close() closes what was opened through it: producers flush, pending pulls reject 'Consumer is closed'", { timeout: 20000 }, async () => {
        const d = await h.createDriver();
        track(() => d.close());
        const name = h.topicName('t');
        await d.createTopic(name, { options: h.topicOptions(2) });
        const t = await d.openTopic(name);
        // never closed by the test: the driver's close must end them
        const p = await t.producer({ batchSize: 1000, lingerMs: 60000 });
        const fs: Future<bigint>[] = [];
        for (let seq = 0; seq < 40; seq++) fs.push(p.push({ seq }, seq % 2 === 0 ? bytes(seq, 64) : undefined));
        const idle = await t.consumer('closing', { startFrom: 'latest' });
        // (settled into a value at once: it rejects during close(), before the assertion below looks at it)
        const pending = idle.pull().wait(60000).then((e) => e, (err: unknown) => err);
        const it = idle[Symbol.asyncIterator]();
        const iterating = it.next();
        await sleep(50);
        await within(d.close(), 10000, 'driver close');
        assert.ok(fs.every((f) => f.completed()), `${fs.filter((f) => !f.completed()).length} push futures pending after driver.close()`);
        const outcome = await within(pending, 2000, 'pending pull after driver.close()');
        assert.ok(outcome instanceof DiasporaError && /Consumer is closed/.test(outcome.message), `pending pull ended with ${String(outcome)}`);
        assert.deepEqual(await within(iterating, 2000, 'iteration after driver.close()'), { done: true, value: undefined });
        await assert.rejects(p.push({ seq: 99 }).wait(1000), /Producer is closed/);
        await assert.rejects(d.openTopic(name), /Driver is closed/);
        // everything pushed before the close is stored, once
        const d2 = h.createPeerDriver !== undefined ? await peerDriver(d) : undefined;
        if (d2 !== undefined) {
          const c = await newConsumer(await openTopic(d2, name), '');
          const es = await pullN(c, 40);
          await assertNoMore(c);
          assert.equal(new Set(es.map(seqOf)).size, 40);
        }
      });

      it('lingerMs writes a partial explicit batch without flush', { timeout: 10000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        const p = await newProducer(t, { batchSize: 100, lingerMs: 20 });
        const f = p.push({ seq: 0 });
        assert.equal(await within(f, 5000, 'push future without flush (linger)'), 0n);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('11. headers', () => {
      it('headers pushed with an event are delivered with it', { skip: !h.supportsHeaders, timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 2);
        const p = await newProducer(t);
        const plan: (Record<string, string> | undefined)[] = [{ a: '1' }, undefined, { b: '2', 'x-unicode': 'é✓ 🚀', empty: '' }, undefined, { a: '1' }];
        const fs = plan.map((hd, seq) => p.push({ seq }, seq === 2 ? bytes(seq, 10) : undefined, hd === undefined ? undefined : { headers: hd }));
        await within(p.flush(), 5000, 'flush');
        await Promise.all(fs);
        const c = await newConsumer(t, '');
        const es = await pullN(c, plan.length);
        for (const e of es) {
          const seq = seqOf(e);
          assert.deepEqual({ ...e.headers }, plan[seq] ?? {}, `headers of seq ${seq}`);
        }
        // also through a second consumer (headers come from storage, not a cache of the first read)
        const c2 = await newConsumer(t, '', { dataSelector: NoDataSelector });
        for (const e of await pullN(c2, plan.length)) assert.deepEqual({ ...e.headers }, plan[seqOf(e)] ?? {});
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('11b. re-publishing what was read (forwarding)', () => {
      it('events read back are pushed again, mixed with new metadata and large batches: same metadata, data and order', { timeout: 30000 }, async () => {
        const d = await newDriver();
        const src = await newTopic(d, 1);
        const p = await newProducer(src);
        // metadata of several shapes (the stored bytes are passed through, never re-encoded)
        const n = 300;
        const mds = Array.from({ length: n }, (_, seq): Json => (seq % 7 === 0 ? { seq, big: 'x'.repeat(3000 + seq), n: 2.5 } : { seq, u: 'é✓', list: [seq, null, true] }));
        const fs = mds.map((md, seq) => p.push(md, seq % 3 === 0 ? bytes(seq, 50) : undefined, { partition: 0 }));
        await within(p.flush(), 10000, 'flush');
        await Promise.all(fs);
        const read = await pullN(await newConsumer(src, ''), n);

        // interleave: read events (runs of adjacent stored records) with fresh metadata every 5th
        const dst = await newTopic(d, 1);
        const p2 = await newProducer(dst, { batchSize: 64 });
        const expected: { md: Json; data: Buffer }[] = [];
        const fs2: PromiseLike<unknown>[] = [];
        for (const [i, e] of read.entries()) {
          if (i % 5 === 4) {
            const fresh = { fresh: i, pad: 'y'.repeat(i * 7) };
            fs2.push(p2.push(fresh, undefined, { partition: 0 }));
            expected.push({ md: fresh, data: Buffer.alloc(0) });
          }
          fs2.push(p2.push(e.metadata, e.data, { partition: 0 }));
          expected.push({ md: e.metadata.json, data: e.data.toBuffer() });
        }
        await within(p2.flush(), 10000, 'flush');
        await Promise.all(fs2);
        const back = await pullN(await newConsumer(dst, ''), expected.length);
        assert.deepEqual(
          back.map((e) => [e.metadata.json, e.data.toBuffer().toString('hex')]),
          expected.map((x) => [x.md, x.data.toString('hex')]),
        );
        // the stored text itself is unchanged (2.5 stays 2.5, key order kept)
        assert.equal(back[0]?.metadata.dump(), read[0]?.metadata.dump());
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('12. iteration', () => {
      it('events({idleTimeoutMs: 200}) yields every event then ends', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 3);
        await fill(t, 25);
        const c = await newConsumer(t, '');
        const seen: Event[] = [];
        const t0 = performance.now();
        for await (const e of c.events({ idleTimeoutMs: 200 })) seen.push(e);
        assert.ok(performance.now() - t0 >= 195, 'iteration ended before the idle timeout');
        assert.deepEqual(seen.map(seqOf).sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i));
        checkDensePerPartition(seen, seqOf);
      });

      it('for await (const e of consumer) ends on close()', { timeout: 15000 }, async () => {
        const d = await newDriver();
        const t = await newTopic(d, 1);
        await fill(t, 5);
        const c = await newConsumer(t, '');
        const seen: bigint[] = [];
        const loop = (async () => {
          for await (const e of c) {
            seen.push(e.id);
            if (seen.length === 5) setTimeout(() => void c.close(), 50);
          }
        })();
        await within(loop, 5000, 'iteration after close()');
        assert.deepEqual(seen, [0n, 1n, 2n, 3n, 4n]);
      });
    });
  });
}
