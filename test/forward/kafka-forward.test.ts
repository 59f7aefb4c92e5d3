/**
 * `diaspora-ctl forward` with Kafka on either side (diaspora-ctl.md §8, forwarding.md §3–§4, kafka-octopus.md), on a
 * real broker: the seed's octopus YAML as written, a 100,000-event files → kafka → files round trip, kafka → kafka,
 * restart without duplicates, provenance headers as Kafka record headers, start-up errors (closed port, missing
 * topic, SCRAM failure), SASL_SSL + SCRAM-SHA-256 and mutual TLS, and retries while a broker of our own is frozen
 * (SIGSTOP / SIGCONT).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Driver } from '../../src/api/driver.js';
import type { Json } from '../../src/api/json.js';
import { Metadata } from '../../src/api/metadata.js';
import {
  CtlProcess,
  countEvents,
  createTopic,
  freePort,
  logLines,
  produce,
  readAll,
  runCtl,
  sleep,
  tempDir,
  waitFor,
  withFiles,
  type NewEvent,
  type ReadEvent,
} from '../helpers/cli.js';
import { kafkaSuite, OwnBroker, secureTest, uniqueName, writeCommittedTransaction, type KafkaEnv, type SecureEndpoints } from '../helpers/kafka.js';

const RUNNING = '[info] Forwarding daemon running. Press Ctrl+C to stop.';
const STOPPED = '[info] Forwarding daemon stopped.';

type Props = Record<string, string>;

// ---------------------------------------------------------------------------------------------
// Events

/** Data of event `seq`: 0–512 bytes, deterministic. */
function dataOf(seq: number): Buffer {
  const n = (seq * 7919 + (seq >> 3)) % 513;
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (seq * 31 + i * 7) & 0xff;
  return b;
}

function metadataOf(seq: number): Json {
  return { seq, kind: seq % 3 === 0 ? 'tick' : 'tock', label: `event "${seq}" \\ é ✓`, nested: { a: [seq, null, seq % 2 === 0], f: seq / 4 } };
}

/** Events `from … from+n-1`, event seq in partition seq % partitions. */
function events(from: number, n: number, partitions = 2, headers?: Record<string, string>): NewEvent[] {
  return Array.from({ length: n }, (_, k) => {
    const seq = from + k;
    return { metadata: metadataOf(seq), data: dataOf(seq), partition: seq % partitions, ...(headers !== undefined ? { headers } : {}) };
  });
}

const seqOf = (e: { json: Json }): number => (e.json as { seq: number }).seq;

/** Expected canonical dump of event `seq`. */
const dumpOf = (seq: number): string => new Metadata(metadataOf(seq)).dump();

/**
 * Metadata bytes of event `seq` as a non-canonical writer stores them (keys in insertion order, `é` as `\u00e9`,
 * every fourth indented): the same value as metadataOf(seq), other bytes than its canonical dump, so a forward that
 * re-serialised metadata instead of copying the stored bytes changes them.
 */
function storedMetaOf(seq: number): Buffer {
  return Buffer.from(JSON.stringify(metadataOf(seq), null, seq % 4 === 0 ? 1 : undefined).replace(/é/g, '\\u00e9'), 'utf8');
}

interface Check {
  count: number;
  lost: number;
  duplicates: number;
  mismatched: number;
  outOfOrder: number;
  wrongPartition: number;
}

/**
 * Compares a destination against seqs `0 … n-1` (event seq expected in partition seq % partitions): every (metadata,
 * data) present, content identical, per partition the first occurrences in increasing seq order (= source order).
 */
function check(dst: readonly ReadEvent[], n: number, partitions = 2, textOf: (seq: number) => string = dumpOf): Check {
  const copies = new Map<number, number>();
  const lastFirst = new Map<number, number>();
  let mismatched = 0;
  let outOfOrder = 0;
  let wrongPartition = 0;
  for (const e of dst) {
    const seq = seqOf(e);
    if (!Number.isInteger(seq) || seq < 0 || seq >= n || e.dump !== textOf(seq) || !e.data.equals(dataOf(seq))) {
      mismatched++;
      continue;
    }
    if (e.partition !== seq % partitions) wrongPartition++;
    const c = (copies.get(seq) ?? 0) + 1;
    copies.set(seq, c);
    if (c === 1) {
      const prev = lastFirst.get(e.partition);
      if (prev !== undefined && seq <= prev) outOfOrder++;
      lastFirst.set(e.partition, seq);
    }
  }
  let lost = 0;
  let duplicates = 0;
  for (let s = 0; s < n; s++) {
    const c = copies.get(s) ?? 0;
    if (c === 0) lost++;
    else duplicates += c - 1;
  }
  return { count: dst.length, lost, duplicates, mismatched, outOfOrder, wrongPartition };
}

const CLEAN = (n: number): Check => ({ count: n, lost: 0, duplicates: 0, mismatched: 0, outOfOrder: 0, wrongPartition: 0 });

// ---------------------------------------------------------------------------------------------
// Kafka access through the library

async function withKafka<T>(props: Props, fn: (d: Driver) => Promise<T>): Promise<T> {
  const d = await Driver.create('kafka', { kafka: props });
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

async function createKafkaTopic(props: Props, name: string, partitions: number): Promise<void> {
  await withKafka(props, (d) => d.createTopic(name, { options: { num_partitions: partitions, replication_factor: 1 } }));
}

async function kafkaCount(d: Driver, name: string): Promise<number> {
  const t = await d.openTopic(name);
  const c = await t.consumer('', { startFrom: 'earliest' });
  try {
    let n = 0n;
    for (const v of (await c.endPositions()).values()) n += v;
    return Number(n);
  } finally {
    await c.close();
    await t.close();
  }
}

/** Every event of a Kafka topic up to its current ends (consumer '' from earliest), ordered by partition then offset. */
async function readKafka(props: Props, name: string, timeoutMs = 60_000): Promise<ReadEvent[]> {
  return withKafka(props, async (d) => {
    const t = await d.openTopic(name);
    const c = await t.consumer('', { startFrom: 'earliest' });
    try {
      const ends = await c.endPositions();
      const next = new Map<number, bigint>();
      const done = (): boolean => [...ends].every(([p, end]) => (next.get(p) ?? 0n) >= end);
      const out: ReadEvent[] = [];
      const deadline = Date.now() + timeoutMs;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`read ${out.length} events of ${name} before the time limit (ends ${[...ends].join(' ')})`);
        for (const e of await c.pullBatch(10_000, 1000)) {
          next.set(e.partitionIndex, e.id + 1n);
          out.push({
            partition: e.partitionIndex,
            id: e.id,
            dump: e.metadata.dump(),
            json: e.metadata.json,
            stored: ((b) => (b === undefined ? undefined : Buffer.from(b)))(e.metadata.storedBytes()),
            data: e.data.toBuffer(),
            headers: { ...e.headers },
          });
        }
      }
      out.sort((a, b) => a.partition - b.partition || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return out;
    } finally {
      await c.close();
      await t.close();
    }
  });
}

/** Pushes events to a Kafka topic through the library. */
async function produceKafka(props: Props, name: string, evs: readonly NewEvent[]): Promise<void> {
  await withKafka(props, async (d) => {
    const t = await d.openTopic(name);
    const p = await t.producer();
    const futures = [];
    for (const e of evs) {
      if (!p.hasCapacity()) await p.ready();
      futures.push(p.push(new Metadata(e.metadata), e.data, e.partition !== undefined ? { partition: e.partition } : {}));
    }
    await p.flush();
    for (const f of futures) await f.wait();
    await p.close();
    await t.close();
  });
}

/** Pushes events `0 … n-1` to a files topic (seq in partition seq % 2) with the stored metadata bytes storedMetaOf(seq). */
async function produceStored(root: string, topic: string, n: number): Promise<void> {
  await withFiles(root, async (d) => {
    const t = await d.openTopic(topic);
    const p = await t.producer();
    const futures = [];
    for (let seq = 0; seq < n; seq++) {
      if (!p.hasCapacity()) await p.ready();
      futures.push(p.push(Metadata.fromCanonicalBytes(storedMetaOf(seq)), dataOf(seq), { partition: seq % 2 }));
    }
    await p.flush();
    for (const f of futures) await f.wait();
    await p.close();
    await t.close();
  });
}

/** Per partition, in id order, the stored metadata bytes and the data bytes of every event of a files topic. */
async function readStored(root: string, topic: string, timeoutMs = 60_000): Promise<Map<number, { meta: Buffer; data: Buffer }[]>> {
  return withFiles(root, async (d) => {
    const t = await d.openTopic(topic);
    const c = await t.consumer('', { startFrom: 'earliest' });
    try {
      const ends = await c.endPositions();
      const out = new Map<number, { meta: Buffer; data: Buffer }[]>([...ends.keys()].map((p) => [p, []]));
      let total = 0n;
      for (const v of ends.values()) total += v;
      const deadline = Date.now() + timeoutMs;
      for (let got = 0n; got < total; ) {
        if (Date.now() > deadline) throw new Error(`read ${got} of ${total} events of ${topic} before the time limit`);
        for (const e of await c.pullBatch(10_000, 1000)) {
          const stored = e.metadata.storedBytes();
          assert.ok(stored !== undefined, `${topic} #${e.partitionIndex}@${e.id}: the files driver gave no stored metadata bytes`);
          const list = out.get(e.partitionIndex) as { meta: Buffer; data: Buffer }[];
          assert.equal(BigInt(list.length), e.id, `${topic} #${e.partitionIndex}: ids in order`);
          list.push({ meta: Buffer.from(stored), data: e.data.toBuffer() });
          got++;
        }
      }
      return out;
    } finally {
      await c.close();
      await t.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Configuration files

/** A YAML double-quoted scalar. */
const q = (s: string): string => JSON.stringify(s);

/** The `remote` kafka driver block, in the seed's format (`kafka:` mapping with dotted keys). */
function kafkaDriverYaml(name: string, type: 'octopus' | 'kafka', props: Props): string[] {
  return [`  ${name}:`, `    type: ${type}`, '    options:', '      kafka:', ...Object.entries(props).map(([k, v]) => `        ${k}: ${q(v)}`)];
}

/** The seed's example: a files driver `local` on ./data and an octopus driver `remote`, then the policies. */
function seedYaml(props: Props, policies: [string, string][], extra: string[] = []): string {
  return [
    'drivers:',
    '  local: { type: files, options: { root_path: ./data } }',
    ...kafkaDriverYaml('remote', 'octopus', props),
    ...extra,
    'forward:',
    ...policies.flatMap(([from, to]) => [`  - from: ${from}`, `    to: ${to}`]),
    '',
  ].join('\n');
}

function errorLines(stderr: string): string[] {
  return logLines(stderr).filter((l) => l.startsWith('[error] '));
}

/** `Forwarded N event(s) for … in X s (R events/s)` */
function forwardedLine(stderr: string): string {
  return logLines(stderr).find((l) => l.startsWith('[info] Forwarded ')) ?? '(no Forwarded line)';
}

// ---------------------------------------------------------------------------------------------

kafkaSuite('forward with Kafka (diaspora-ctl.md §8, forwarding.md §3–§4)', (env: KafkaEnv) => {
  const plain: Props = { 'bootstrap.servers': env.bootstrap };
  const created: string[] = [];
  const report: string[] = [];

  after(async () => {
    if (report.length > 0) console.log(report.map((l) => `# ${l}`).join('\n'));
    await withKafka(plain, async (d) => {
      for (const name of created) await d.deleteTopic(name).catch(() => undefined);
    }).catch(() => undefined);
  });

  async function kafkaTopic(prefix: string, partitions: number): Promise<string> {
    const name = uniqueName(prefix);
    created.push(name);
    await createKafkaTopic(plain, name, partitions);
    return name;
  }

  /** A temp dir with data/ (files root) and a files topic `src` (2 partitions) holding `n` events. */
  async function filesSource(n: number, headers?: Record<string, string>): Promise<{ dir: string; root: string; cleanup: () => void }> {
    const { dir, cleanup } = tempDir('diaspora-kafka-forward-');
    const root = join(dir, 'data');
    await createTopic(root, 'src', { num_partitions: 2 });
    if (n > 0) await produce(root, 'src', events(0, n, 2, headers));
    return { dir, root, cleanup };
  }

  async function forwardOnce(dir: string, yaml: string, timeoutMs = 60_000, file = 'fwd.yaml') {
    writeFileSync(join(dir, file), yaml);
    const t0 = Date.now();
    const r = await runCtl(['forward', '--config', file, '--stop-at-end'], { cwd: dir, timeoutMs });
    return { ...r, ms: Date.now() - t0 };
  }

  describe('data paths', () => {
    test('100,000 events files → kafka → files (seed YAML as written): identical content, per-partition order', { timeout: 150_000 }, async () => {
      const N = 100_000;
      const s = await filesSource(0);
      try {
        const t0 = Date.now();
        await produceStored(s.root, 'src', N);
        const produceMs = Date.now() - t0;
        await createTopic(s.root, 'dst', { num_partitions: 2 });
        const k = await kafkaTopic('fwd-big', 2);

        const leg1 = await forwardOnce(s.dir, seedYaml(plain, [['local/src', `remote/${k}`]]), 120_000, 'leg1.yaml');
        assert.equal(leg1.code, 0, leg1.stderr);
        assert.deepEqual(errorLines(leg1.stderr), []);
        assert.ok(forwardedLine(leg1.stderr).startsWith(`[info] Forwarded ${N} event(s) for local/src -> remote/${k} in `), leg1.stderr);
        const mid = await withKafka(plain, (d) => kafkaCount(d, k));
        assert.equal(mid, N, 'events in the kafka topic after leg 1');

        const leg2 = await forwardOnce(s.dir, seedYaml(plain, [[`remote/${k}`, 'local/dst']]), 120_000, 'leg2.yaml');
        assert.equal(leg2.code, 0, leg2.stderr);
        assert.ok(forwardedLine(leg2.stderr).startsWith(`[info] Forwarded ${N} event(s) for remote/${k} -> local/dst in `), leg2.stderr);
        assert.deepEqual(errorLines(leg2.stderr), []);

        const t1 = Date.now();
        const dst = await readAll(s.root, 'dst', 60_000);
        const readMs = Date.now() - t1;
        assert.deepEqual(check(dst, N, 2, (seq) => storedMetaOf(seq).toString('utf8')), CLEAN(N));
        // event by event (partition p, id i in both topics): the stored metadata bytes and the data bytes are the source's
        const srcStored = await readStored(s.root, 'src');
        const dstStored = await readStored(s.root, 'dst');
        for (const p of [0, 1]) {
          const a = srcStored.get(p) ?? [];
          const b = dstStored.get(p) ?? [];
          assert.equal(b.length, a.length, `partition ${p}: events in dst`);
          assert.equal(a.length, N / 2, `partition ${p}: events in src`);
          const differ = a.flatMap((x, i) => (x.meta.equals((b[i] as { meta: Buffer }).meta) && x.data.equals((b[i] as { data: Buffer }).data) ? [] : [i]));
          const i = differ[0];
          assert.equal(
            differ.length,
            0,
            i === undefined
              ? ''
              : `partition ${p}: ${differ.length} event(s) differ, first ${i}: metadata ${JSON.stringify(a[i]?.meta.toString())} → ${JSON.stringify(b[i]?.meta.toString())}, ` +
                  `data ${a[i]?.data.length} → ${b[i]?.data.length} bytes${a[i]?.data.equals(b[i]?.data ?? Buffer.alloc(0)) ? ' (equal)' : ' (different)'}`,
          );
        }
        // the provenance of leg 2 names the kafka topic, partition and offset; per partition the offsets increase
        const cluster = env.endpoints?.['cluster_id'];
        for (const [p, list] of [0, 1].map((p) => [p, dst.filter((e) => e.partition === p)] as const)) {
          list.forEach((e, i) => {
            const src = e.headers['diaspora-src'] ?? '';
            assert.ok(src.endsWith(`/${k}#${p}@${i}`), `dst partition ${p} event ${i}: diaspora-src ${src}`);
            if (typeof cluster === 'string') assert.ok(src.startsWith(`kafka:${cluster}/`), src);
          });
        }
        report.push(
          `100k round trip: produce (files, library) ${produceMs} ms; leg 1 files→kafka ${leg1.ms} ms wall (${forwardedLine(leg1.stderr)}); ` +
            `leg 2 kafka→files ${leg2.ms} ms wall (${forwardedLine(leg2.stderr)}); verify read ${readMs} ms`,
        );
      } finally {
        s.cleanup();
      }
    });

    test('--stop-at-end from a Kafka topic that ends with a transaction marker: every event forwarded, exit 0', { timeout: 60_000 }, async () => {
      const a = await kafkaTopic('fwd-tx', 1);
      // another client's committed transaction: 2 events, then the commit marker at the partition's end
      await writeCommittedTransaction(env.bootstrap, a, [0, 1]);
      const { dir, cleanup } = tempDir('diaspora-kafka-forward-');
      try {
        await createTopic(join(dir, 'data'), 'dst', { num_partitions: 1 });
        const yaml = ['drivers:', '  local: { type: files, options: { root_path: ./data } }', ...kafkaDriverYaml('k', 'kafka', plain), 'forward:', `  - from: k/${a}`, '    to: local/dst', '    start: earliest', ''].join('\n');
        const r = await forwardOnce(dir, yaml, 30_000);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(forwardedLine(r.stderr).startsWith(`[info] Forwarded 2 event(s) for k/${a} -> local/dst`), r.stderr);
        const got = await readAll(join(dir, 'data'), 'dst');
        assert.deepEqual(got.map((e) => e.json), [{ seq: 0 }, { seq: 1 }]);
      } finally {
        cleanup();
      }
    });

    test('kafka → kafka (kafka and octopus drivers): 2,000 events equal content and order; then a continuous run from the committed offsets, SIGTERM', { timeout: 90_000 }, async () => {
      const N = 2000;
      const a = await kafkaTopic('fwd-ka', 2);
      const b = await kafkaTopic('fwd-kb', 2);
      await produceKafka(plain, a, events(0, N));
      const { dir, cleanup } = tempDir('diaspora-kafka-forward-');
      try {
        const yaml = ['drivers:', ...kafkaDriverYaml('k1', 'kafka', plain), ...kafkaDriverYaml('k2', 'octopus', plain), 'forward:', `  - from: k1/${a}`, `    to: k2/${b}`, ''].join('\n');
        const r = await forwardOnce(dir, yaml);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(errorLines(r.stderr), []);
        const src = await readKafka(plain, a);
        const dst = await readKafka(plain, b);
        assert.deepEqual(check(dst, N), CLEAN(N));
        // same partition, same offset: an exact copy
        assert.deepEqual(
          dst.map((e) => [e.partition, e.id, e.dump, e.data.toString('hex')]),
          src.map((e) => [e.partition, e.id, e.dump, e.data.toString('hex')]),
        );
        for (const e of dst) {
          assert.ok(e.headers['diaspora-src']?.endsWith(`/${a}#${e.partition}@${e.id}`), JSON.stringify(e.headers));
          assert.equal(e.headers['diaspora-policy'], `k1/${a}->k2/${b}`);
        }
        report.push(`kafka→kafka ${N} events: ${r.ms} ms wall (${forwardedLine(r.stderr)})`);

        // continuous run (group consumer from the committed offsets): 500 more, then SIGTERM → exit 0, no duplicates
        const daemon = new CtlProcess(['forward', '--config', 'fwd.yaml'], dir);
        try {
          await daemon.waitForLog(RUNNING, 30_000);
          await produceKafka(plain, a, events(N, 500));
          const d = await Driver.create('kafka', { kafka: plain });
          try {
            assert.ok(await waitFor(async () => (await kafkaCount(d, b)) >= N + 500, 30_000, 200), `500 more not forwarded\n${daemon.stderr}`);
          } finally {
            await d.close();
          }
          const stop = await daemon.stop(15_000);
          assert.equal(stop.code, 0, daemon.stderr);
          assert.ok(daemon.logLines.includes(STOPPED), daemon.stderr);
          assert.deepEqual(errorLines(daemon.stderr), []);
          assert.ok(stop.elapsedMs < 10_000, `SIGTERM took ${stop.elapsedMs} ms`);
          report.push(`kafka→kafka continuous: SIGTERM → exit in ${stop.elapsedMs} ms`);
        } finally {
          daemon.kill();
        }
        const all = await readKafka(plain, b);
        assert.deepEqual(check(all, N + 500), CLEAN(N + 500));
      } finally {
        cleanup();
      }
    });

    test('restart: 1,000 forwarded, 500 more produced, second run → exactly 1,500 in Kafka, no duplicates', { timeout: 60_000 }, async () => {
      const s = await filesSource(1000);
      try {
        const k = await kafkaTopic('fwd-restart', 2);
        const yaml = seedYaml(plain, [['local/src', `remote/${k}`]]);
        let r = await forwardOnce(s.dir, yaml);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(logLines(r.stderr).some((l) => l.startsWith(`[info] Forwarded 1000 event(s) for local/src -> remote/${k} in `)), r.stderr);
        assert.equal(await withKafka(plain, (d) => kafkaCount(d, k)), 1000);

        await produce(s.root, 'src', events(1000, 500));
        r = await forwardOnce(s.dir, yaml);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(logLines(r.stderr).some((l) => l.startsWith(`[info] Forwarded 500 event(s) for local/src -> remote/${k} in `)), r.stderr);

        const dst = await readKafka(plain, k);
        assert.deepEqual(check(dst, 1500), CLEAN(1500));
        // a third run has nothing left to do
        r = await forwardOnce(s.dir, yaml);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(logLines(r.stderr).some((l) => l.startsWith(`[info] Forwarded 0 event(s) for local/src -> remote/${k} in `)), r.stderr);
        assert.equal(await withKafka(plain, (d) => kafkaCount(d, k)), 1500);
      } finally {
        s.cleanup();
      }
    });

    test('provenance headers arrive as Kafka record headers (diaspora-src, diaspora-policy, diaspora-ts; source headers copied)', { timeout: 60_000 }, async () => {
      const s = await filesSource(50, { app: 'sensor-7', 'diaspora-policy': 'stale' });
      try {
        const k = await kafkaTopic('fwd-prov', 2);
        const before = BigInt(Date.now()) * 1_000_000n;
        const r = await forwardOnce(s.dir, seedYaml(plain, [['local/src', `remote/${k}`]]));
        const afterTs = BigInt(Date.now()) * 1_000_000n;
        assert.equal(r.code, 0, r.stderr);
        const src = await readAll(s.root, 'src');
        const dst = await readKafka(plain, k);
        assert.deepEqual(check(dst, 50), CLEAN(50));
        const srcId = `files:${realpathSync(join(s.root, 'src'))}`;
        const idOf = new Map(src.map((e) => [seqOf(e), e]));
        for (const e of dst) {
          const se = idOf.get(seqOf(e)) as ReadEvent;
          assert.deepEqual(Object.keys(e.headers).sort(), ['app', 'diaspora-policy', 'diaspora-src', 'diaspora-ts']);
          assert.equal(e.headers['app'], 'sensor-7');
          assert.equal(e.headers['diaspora-src'], `${srcId}#${se.partition}@${se.id}`);
          assert.equal(e.headers['diaspora-policy'], `local/src->remote/${k}`);
          const ts = e.headers['diaspora-ts'] ?? '';
          assert.match(ts, /^\d+$/);
          assert.ok(BigInt(ts) >= before && BigInt(ts) <= afterTs, `diaspora-ts ${ts} not within the run [${before}, ${afterTs}]`);
        }
      } finally {
        s.cleanup();
      }
    });
  });

  // -------------------------------------------------------------------------------------------
  // Start-up errors and secure listeners

  test('Kafka topics deleted at runtime: the policy whose destination went and the one whose source went halt; the other goes on (forwarding.md §13 #17)', { timeout: 90_000 }, async () => {
    const s = await filesSource(10);
    const daemonProcess: { d?: CtlProcess } = {};
    try {
      const [toGone, fromGone, toKept] = [await kafkaTopic('fwd-dst-gone', 2), await kafkaTopic('fwd-src-gone', 2), await kafkaTopic('fwd-kept', 2)];
      await produceKafka(plain, fromGone, events(0, 10));
      await createTopic(s.root, 'dst', { num_partitions: 2 });
      writeFileSync(
        join(s.dir, 'fwd.yaml'),
        seedYaml(plain, [
          ['local/src', `remote/${toGone}`],
          [`remote/${fromGone}`, 'local/dst'],
          ['local/src', `remote/${toKept}`],
        ]),
      );
      const daemon = (daemonProcess.d = new CtlProcess(['forward', '--config', 'fwd.yaml'], s.dir));
      await daemon.waitForLog(RUNNING, 30_000);
      await withKafka(plain, async (d) => {
        const counts = async (): Promise<number[]> => [await kafkaCount(d, toGone), await kafkaCount(d, toKept), await countEvents(s.root, 'dst')];
        assert.ok(await waitFor(async () => (await counts()).every((n) => n === 10), 30_000, 200), `not all forwarded: ${JSON.stringify(await counts())}\n${daemon.stderr}`);
        await d.deleteTopic(toGone);
        await d.deleteTopic(fromGone);
        await produce(s.root, 'src', events(10, 10));
        const halted = (label: string): boolean => daemon.logLines.some((l) => l.startsWith(`[error] Forward worker halted: ${label}: `) && l.includes('was deleted'));
        // a deleted Kafka destination used to be retried for ever; a deleted Kafka source, read for ever without a word
        assert.ok(
          await waitFor(() => halted(`local/src -> remote/${toGone}`) && halted(`remote/${fromGone} -> local/dst`), 30_000, 100),
          `the policies whose topic was deleted did not halt\n${daemon.stderr}`,
        );
        assert.ok(await waitFor(async () => (await kafkaCount(d, toKept)) === 20, 30_000, 200), daemon.stderr);
      });
      assert.ok(daemon.running, daemon.stderr);
      const { code } = await daemon.stop(15_000);
      assert.equal(code, 0, daemon.stderr);
    } finally {
      daemonProcess.d?.kill();
      s.cleanup();
    }
  });

  describe('start-up errors and secure listeners', { concurrency: 4 }, () => {
    const scram = (ep: SecureEndpoints, password: string): Props => ({
      'bootstrap.servers': ep.SASL_SSL,
      'security.protocol': 'sasl_ssl',
      'sasl.mechanisms': 'SCRAM-SHA-256',
      'sasl.username': ep.scram.username,
      'sasl.password': password,
      'ssl.ca.location': ep.ca_pem,
    });

    /** Runs the daemon on a fresh files source of `n` events against `remote/<topic>` with `props`. */
    async function attempt(props: Props, topic: string, n = 10) {
      const s = await filesSource(n);
      try {
        const r = await forwardOnce(s.dir, seedYaml(props, [['local/src', `remote/${topic}`]]), 45_000);
        assert.ok(!logLines(r.stderr).includes(RUNNING) || r.code === 0, r.stderr);
        return r;
      } finally {
        s.cleanup();
      }
    }

    test('closed bootstrap port → [error] Diaspora error: Kafka error: Cannot reach the Kafka cluster (…), exit 1, quickly', { timeout: 45_000 }, async () => {
      const port = await freePort();
      const r = await attempt({ 'bootstrap.servers': `127.0.0.1:${port}` }, 'whatever');
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(errorLines(r.stderr), [`[error] Diaspora error: Kafka error: Cannot reach the Kafka cluster (connect ECONNREFUSED 127.0.0.1:${port})`]);
      assert.ok(logLines(r.stderr).includes("[info] Creating driver 'remote' (type=octopus)"), r.stderr);
      assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
    });

    test('missing Kafka topic → [error] Diaspora error: Topic "<name>" not found, exit 1', { timeout: 45_000 }, async () => {
      const name = uniqueName('fwd-missing');
      const r = await attempt(plain, name);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(errorLines(r.stderr), [`[error] Diaspora error: Topic "${name}" not found`]);
    });

    secureTest(env, 'SCRAM-SHA-256 over SASL_SSL with a wrong password → authentication error, exit 1', { timeout: 45_000 }, ['SASL_SSL', 'ca_pem', 'scram'], async (ep) => {
      const r = await attempt(scram(ep, 'not-the-password'), 'whatever');
      assert.equal(r.code, 1, r.stderr);
      const errs = errorLines(r.stderr);
      assert.equal(errs.length, 1, r.stderr);
      assert.match(errs[0] as string, /^\[error\] Diaspora error: Kafka error: SASL authentication failed/);
      assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
    });

    secureTest(env, 'SASL_SSL + SCRAM-SHA-256 with the right password: 100 events files → kafka', { timeout: 60_000 }, ['SASL_SSL', 'ca_pem', 'scram'], async (ep) => {
      const k = await kafkaTopic('fwd-scram', 2);
      const r = await attempt(scram(ep, ep.scram.password), k, 100);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(errorLines(r.stderr), []);
      assert.deepEqual(check(await readKafka(plain, k), 100), CLEAN(100));
    });

    secureTest(env, 'SSL with mutual TLS (client certificate and key): 100 events files → kafka', { timeout: 60_000 }, ['SSL', 'ca_pem', 'client_pem', 'client_key'], async (ep) => {
      const k = await kafkaTopic('fwd-mtls', 2);
      const props: Props = {
        'bootstrap.servers': ep.SSL,
        'security.protocol': 'ssl',
        'ssl.ca.location': ep.ca_pem,
        'ssl.certificate.location': ep.client_pem,
        'ssl.key.location': ep.client_key,
      };
      const r = await attempt(props, k, 100);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(errorLines(r.stderr), []);
      assert.deepEqual(check(await readKafka(plain, k), 100), CLEAN(100));
    });
  });

  // -------------------------------------------------------------------------------------------
  // A broker of our own, frozen while the daemon runs

  test('delivery no_duplicates, files → kafka: SIGKILL mid-run, restart → 0 lost, 0 duplicated, order kept', { timeout: 120_000 }, async () => {
    const N = 50_000;
    const k = await kafkaTopic('fwd-nodup', 2);
    const s = await filesSource(N);
    let daemon: CtlProcess | undefined;
    try {
      // positions persisted rarely: without the tail scan, everything forwarded before the kill would come again
      writeFileSync(join(s.dir, 'fwd.yaml'), seedYaml(plain, [['local/src', `remote/${k}`]], ['defaults: { delivery: no_duplicates, checkpoint: { interval: 30s } }']));
      daemon = new CtlProcess(['forward', '--config', 'fwd.yaml'], s.dir);
      await daemon.waitForLog(RUNNING, 30_000);
      const d = await Driver.create('kafka', { kafka: plain });
      let atKill = 0;
      try {
        assert.ok(await waitFor(async () => (atKill = await kafkaCount(d, k)) >= 5000, 60_000, 20), `nothing forwarded\n${daemon.stderr}`);
      } finally {
        await d.close();
      }
      process.kill(daemon.pid, 'SIGKILL');
      await daemon.exit(10_000);
      const r = await runCtl(['forward', '--config', 'fwd.yaml', '--stop-at-end'], { cwd: s.dir, timeoutMs: 90_000 });
      assert.equal(r.code, 0, r.stderr);
      const dst = await readKafka(plain, k);
      report.push(`no_duplicates files→kafka: ≥${atKill} records at the kill; ${logLines(r.stderr).find((l) => l.includes('No-duplicates resume')) ?? ''}`);
      assert.deepEqual(check(dst, N), CLEAN(N));
    } finally {
      daemon?.kill();
      s.cleanup();
    }
  });

  describe('a broker of our own, frozen (SIGSTOP ~8 s) while the daemon runs', () => {
    const own = new OwnBroker();
    let broker: { pid: number; bootstrap: string } | undefined;
    let frozen = false;

    before(() => {
      if (own.start()) broker = { pid: own.pid, bootstrap: own.bootstrap };
    });

    after(() => own.stop());

    /**
     * Forwards files → kafka continuously: 1000 events, then the broker is frozen ~8 s while 1000 more reach the
     * source, then resumed; every event must arrive in order (duplicates counted), the daemon must have complained
     * (`expect`) and must stop with exit 0 on SIGTERM.
     */
    async function frozenRun(label: string, extra: Props, expect: RegExp): Promise<void> {
      assert.ok(broker !== undefined, own.error);
      const { pid, bootstrap } = broker;
      const admin: Props = { 'bootstrap.servers': bootstrap };
      const props: Props = { ...admin, ...extra };
      const k = uniqueName('fwd-frozen');
      await createKafkaTopic(admin, k, 2);
      const s = await filesSource(1000);
      let daemon: CtlProcess | undefined;
      try {
        writeFileSync(join(s.dir, 'fwd.yaml'), seedYaml(props, [['local/src', `remote/${k}`]]));
        daemon = new CtlProcess(['forward', '--config', 'fwd.yaml'], s.dir);
        await daemon.waitForLog(RUNNING, 30_000);
        const d = await Driver.create('kafka', { kafka: admin });
        try {
          assert.ok(await waitFor(async () => (await kafkaCount(d, k)) >= 1000, 30_000, 200), `first 1000 events not forwarded\n${daemon.stderr}`);
        } finally {
          await d.close();
        }

        // freeze the broker; meanwhile 1000 more events reach the files source
        const logBefore = daemon.logLines.length;
        process.kill(pid, 'SIGSTOP');
        frozen = true;
        const frozenAt = Date.now();
        for (let i = 0; i < 4; i++) {
          await produce(s.root, 'src', events(1000 + i * 250, 250));
          await sleep(1500);
        }
        await sleep(Math.max(0, 8000 - (Date.now() - frozenAt)));
        assert.ok(daemon.running, `daemon exited while the broker was frozen\n${daemon.stderr}`);
        process.kill(pid, 'SIGCONT');
        frozen = false;
        const frozenMs = Date.now() - frozenAt;

        // after the resume every event arrives
        const d2 = await Driver.create('kafka', { kafka: admin });
        let arrivedMs = -1;
        try {
          const t1 = Date.now();
          const ok = await waitFor(async () => (await kafkaCount(d2, k)) >= 2000, 90_000, 250);
          arrivedMs = Date.now() - t1;
          assert.ok(ok, `not every event arrived after the broker resumed (${await kafkaCount(d2, k)} records)\n${daemon.stderr}`);
        } finally {
          await d2.close();
        }
        assert.ok(daemon.running, daemon.stderr);
        const during = daemon.logLines.slice(logBefore);
        const complaints = during.filter((l) => l.startsWith(`[error] Error in forward worker local/src -> remote/${k}: `) || l === `[warning] Push timed out for local/src -> remote/${k}`);
        assert.ok(
          complaints.some((l) => expect.test(l)),
          `expected a log line matching ${expect} while the broker was frozen\n${daemon.stderr}`,
        );

        const stop = await daemon.stop(15_000);
        assert.equal(stop.code, 0, daemon.stderr);
        assert.ok(daemon.logLines.includes(STOPPED), daemon.stderr);

        const dst = await readKafka(admin, k);
        const c = check(dst, 2000);
        assert.equal(c.lost, 0, JSON.stringify(c));
        assert.equal(c.mismatched, 0, JSON.stringify(c));
        assert.equal(c.outOfOrder, 0, JSON.stringify(c));
        assert.equal(c.wrongPartition, 0, JSON.stringify(c));
        assert.equal(c.count, 2000 + c.duplicates);
        report.push(
          `frozen broker (${label}): frozen ${frozenMs} ms, all 2000 in Kafka ${arrivedMs} ms after SIGCONT, ${c.count} records, ` +
            `duplicates ${c.duplicates}; log lines: ${JSON.stringify([...new Set(complaints.map((l) => l.replace(k, '<topic>')))])}`,
        );
      } finally {
        daemon?.kill();
        if (frozen) {
          try {
            process.kill(pid, 'SIGCONT');
            frozen = false;
          } catch {
            // gone
          }
        }
        s.cleanup();
      }
    }

    test('default client timeouts: the write waits (Push timed out …), nothing lost, order kept, SIGTERM → 0', { timeout: 120_000 }, async () => {
      await frozenRun('default timeouts', {}, /^\[warning\] Push timed out for /);
    });

    // the client retries a timed-out request itself until message.timeout.ms; past it, the write fails and the
    // daemon retries it with back-off
    test('request.timeout.ms 2000, message.timeout.ms 4000: failed writes are retried with back-off (Error in forward worker …), nothing lost, order kept, SIGTERM → 0', { timeout: 120_000 }, async () => {
      await frozenRun('request.timeout.ms=2000, message.timeout.ms=4000', { 'request.timeout.ms': '2000', 'message.timeout.ms': '4000' }, /^\[error\] Error in forward worker local\/src -> remote\/\S+: Kafka error: /);
    });

    /*
     * The other direction: the Kafka SOURCE (a group consumer) loses its broker for ~8 s. A request timeout is a
     * transient error (kafka-octopus.md §6: "transient client errors are retried internally and logged"; forwarding.md
     * §3: a failed step is retried with backoff, `halted` is for unrecoverable errors), so the policy must keep running
     * and forward everything once the broker is back.
     */
    test('kafka → files, request.timeout.ms 2000: a frozen source broker is transient — the policy keeps running, nothing lost, SIGTERM → 0', { timeout: 120_000 }, async () => {
      assert.ok(broker !== undefined, own.error);
      const { pid, bootstrap } = broker;
      const admin: Props = { 'bootstrap.servers': bootstrap };
      const k = uniqueName('fwd-frozen-src');
      await createKafkaTopic(admin, k, 2);
      await produceKafka(admin, k, events(0, 1000));
      const { dir, cleanup } = tempDir('diaspora-kafka-forward-');
      const root = join(dir, 'data');
      let daemon: CtlProcess | undefined;
      try {
        await createTopic(root, 'dst', { num_partitions: 2 });
        writeFileSync(join(dir, 'fwd.yaml'), seedYaml({ ...admin, 'request.timeout.ms': '2000' }, [[`remote/${k}`, 'local/dst']]));
        daemon = new CtlProcess(['forward', '--config', 'fwd.yaml'], dir);
        await daemon.waitForLog(RUNNING, 30_000);
        assert.ok(await waitFor(async () => (await countEvents(root, 'dst')) >= 1000, 30_000, 200), `first 1000 events not forwarded\n${daemon.stderr}`);

        process.kill(pid, 'SIGSTOP');
        frozen = true;
        await sleep(8000);
        process.kill(pid, 'SIGCONT');
        frozen = false;
        await produceKafka(admin, k, events(1000, 1000));

        const ok = await waitFor(async () => (await countEvents(root, 'dst')) >= 2000 || !daemon?.running, 60_000, 200);
        const halted = daemon.logLines.filter((l) => l.startsWith('[error] Forward worker halted: '));
        assert.deepEqual(halted, [], `the policy halted on a transient source error\n${daemon.stderr}`);
        assert.ok(daemon.running, `the daemon exited\n${daemon.stderr}`);
        assert.ok(ok, `not every event arrived after the broker resumed (${await countEvents(root, 'dst')} events)\n${daemon.stderr}`);

        const stop = await daemon.stop(15_000);
        assert.equal(stop.code, 0, daemon.stderr);
        const c = check(await readAll(root, 'dst', 30_000), 2000);
        assert.equal(c.lost, 0, JSON.stringify(c));
        assert.equal(c.mismatched, 0, JSON.stringify(c));
        assert.equal(c.outOfOrder, 0, JSON.stringify(c));
        assert.equal(c.wrongPartition, 0, JSON.stringify(c));
        report.push(`frozen source broker (kafka→files, request.timeout.ms=2000): ${c.count} events, duplicates ${c.duplicates}`);
      } finally {
        daemon?.kill();
        if (frozen) {
          try {
            process.kill(pid, 'SIGCONT');
            frozen = false;
          } catch {
            // gone
          }
        }
        cleanup();
      }
    });
  });
});
