/**
 * Acceptance behaviours of the kafka driver on a real broker (kafka-octopus.md §11), with kafkajs
 * as the independent second client: the value layout both ways (§11.1), the info topic (§11.2),
 * round-robin partitioning (§11.3), restart at the committed position (§11.4), a killed consumer
 * (§11.5), manual targets (§11.7), consumer groups, and the start positions.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import zlib from 'node:zlib';
import { DiasporaError, Driver, NO_MORE_EVENTS, setLogSink, type Event, type Json, type TopicHandle } from '../../../src/index.js';
import { kafkaSuite, octopusValue, uniqueName, writeCommittedTransaction, type KafkaEnv } from '../../helpers/kafka.js';

const { Kafka, logLevel } = kafkajs;

const GOLDEN_HEX = '0f00000000000000' + '0200000000000000' + '0700000000000000' + Buffer.from('{"x":1}').toString('hex') + Buffer.from('hi').toString('hex');

async function pullN(c: { pull(): { wait(ms: number): Promise<Event | undefined> } }, n: number, ms = 15000): Promise<Event[]> {
  const out: Event[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) assert.fail(`received ${out.length} of ${n} events`);
    const e = await c.pull().wait(left);
    if (e !== undefined) out.push(e);
  }
  return out;
}

const seqOf = (e: Event): number => (e.metadata.json as { seq: number }).seq;

kafkaSuite('kafka driver acceptance (kafka-octopus.md §11)', (env: KafkaEnv) => {
  const kafka = new Kafka({ brokers: [env.bootstrap], clientId: 'diaspora-interop', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const created: string[] = [];
  /**
   * The kafkajs producers and consumers of the running test, disconnected after it even when it fails: one left
   * connected keeps the file's process alive until the runner's limit, which then reports a cancelled file instead
   * of the failed assertion.
   */
  const clients = new Set<{ disconnect(): Promise<void> }>();
  const kjs = <C extends { disconnect(): Promise<void> }>(client: C): C => {
    clients.add(client);
    return client;
  };
  afterEach(async () => {
    for (const c of clients) await c.disconnect().catch(() => undefined);
    clients.clear();
  });
  let d: Driver;

  const opts = (extra: Record<string, Json> = {}): Json => ({ kafka: { 'bootstrap.servers': env.bootstrap }, ...extra });

  before(async () => {
    await admin.connect();
    d = await Driver.create('kafka', opts());
  });

  after(async () => {
    await d.close();
    const existing = new Set(await admin.listTopics());
    const drop = created.flatMap((n) => [n, `__info_${n}`]).filter((n) => existing.has(n));
    if (drop.length > 0) await admin.deleteTopics({ topics: drop });
    await admin.disconnect();
  });

  async function topic(prefix: string, n: number): Promise<string> {
    const name = uniqueName(prefix);
    await d.createTopic(name, { options: { num_partitions: n, replication_factor: 1 } });
    created.push(name);
    return name;
  }

  /** Reads every record of a topic with kafkajs (from the beginning, anonymous group). */
  async function readWithKafkajs(name: string, n: number): Promise<kafkajs.KafkaMessage[]> {
    const consumer = kjs(kafka.consumer({ groupId: uniqueName('kjs') }));
    await consumer.connect();
    await consumer.subscribe({ topic: name, fromBeginning: true });
    const out: kafkajs.KafkaMessage[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kafkajs read ${out.length} of ${n} records`)), 20000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          out.push(message);
          if (out.length === n) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    return out;
  }

  describe('§11.1 record layout, both ways', () => {
    it('our values and headers as read by kafkajs (golden bytes, no data, key null)', { timeout: 40000 }, async () => {
      const name = await topic('interop-out', 1);
      const t = await d.openTopic(name);
      const p = await t.producer();
      await p.push({ x: 1 }, Buffer.from('hi'), { headers: { trace: 'abc', 'x-unicode': 'é✓' } });
      await p.push({ x: 1 });
      await p.flush();
      // the end-of-stream marker (the generic producer has no markEndOfStream yet: call the writer)
      await (p as unknown as { writer: { markEndOfStream(parts?: number[]): Promise<void> } }).writer.markEndOfStream();
      await p.close();
      await t.close();
      const msgs = await readWithKafkajs(name, 3);
      assert.equal(msgs[2]?.value?.toString('hex'), 'ff'.repeat(16));
      assert.equal(msgs[0]?.value?.toString('hex'), GOLDEN_HEX);
      assert.equal(msgs[0]?.key, null);
      assert.equal(msgs[0]?.headers?.['trace']?.toString(), 'abc');
      assert.equal(msgs[0]?.headers?.['x-unicode']?.toString(), 'é✓');
      assert.equal(msgs[1]?.value?.toString('hex'), GOLDEN_HEX.slice(0, 16) + '0000000000000000' + GOLDEN_HEX.slice(32, 62));
      assert.deepEqual(msgs[1]?.headers, {});
    });

    it('octopus-layout values written by kafkajs, incl. the end marker, decode in ours', { timeout: 40000 }, async () => {
      const name = await topic('interop-in', 1);
      const producer = kjs(kafka.producer());
      await producer.connect();
      await producer.send({
        topic: name,
        messages: [
          { value: Buffer.from(GOLDEN_HEX, 'hex'), headers: { h: 'v' } },
          { value: Buffer.from(GOLDEN_HEX.slice(0, 16) + '0000000000000000' + GOLDEN_HEX.slice(32, 62), 'hex') },
          { value: Buffer.alloc(16, 0xff) },
        ],
      });
      await producer.disconnect();
      const t = await d.openTopic(name);
      const c = await t.consumer('');
      const es = await pullN(c, 3);
      assert.deepEqual(es[0]?.metadata.json, { x: 1 });
      assert.equal(es[0]?.data.toBuffer().toString(), 'hi');
      assert.deepEqual({ ...es[0]?.headers }, { h: 'v' });
      assert.equal(es[0]?.id, 0n);
      assert.deepEqual(es[1]?.metadata.json, { x: 1 });
      assert.equal(es[1]?.data.size, 0);
      assert.equal(es[2]?.id, NO_MORE_EVENTS);
      assert.deepEqual(es[2]?.metadata.json, {});
      await c.close();
      // process() stops at the end marker
      const c2 = await t.consumer('');
      let n = 0;
      assert.equal(await c2.process(() => void n++, { timeoutMs: 2000 }), 2);
      await c2.close();
      await t.close();
    });

    it('a topic created by another client (no info topic) opens with defaults and a warning', { timeout: 20000 }, async () => {
      const name = uniqueName('foreign');
      await admin.createTopics({ topics: [{ topic: name, numPartitions: 2, replicationFactor: 1 }] });
      created.push(name);
      const logs: string[] = [];
      setLogSink((level, m) => logs.push(`[${level}] ${m}`));
      try {
        const t = await d.openTopic(name);
        assert.equal(t.partitions.length, 2);
        assert.deepEqual(t.validator.metadata().json, { type: 'default' });
        await t.close();
      } finally {
        setLogSink(undefined);
      }
      assert.ok(logs.includes(`[warning] [octopus:warning] Could not read info topic __info_${name}, using default validator, serializer, and partition selector`), logs.join('\n'));
      assert.ok(!(await d.listTopics()).has(name), 'a topic without info topic is listed');
    });
  });

  it('read_committed (default) hides aborted transactions of another client; read_uncommitted shows them', { timeout: 40000 }, async () => {
    const name = await topic('txn', 1);
    const tp = kjs(kafka.producer({ transactionalId: uniqueName('tx'), idempotent: true, maxInFlightRequests: 1 }));
    await tp.connect();
    let seq = 0;
    for (const outcome of ['abort', 'commit', 'abort'] as const) {
      const tx = await tp.transaction();
      await tx.send({ topic: name, messages: [{ value: octopusValue(seq++) }, { value: octopusValue(seq++) }] });
      await (outcome === 'abort' ? tx.abort() : tx.commit());
    }
    await tp.disconnect();
    const plain = kjs(kafka.producer());
    await plain.connect();
    await plain.send({ topic: name, messages: [{ value: octopusValue(seq++) }] });
    await plain.disconnect();
    const t = await d.openTopic(name);
    const c = await t.consumer('');
    const es = await pullN(c, 3);
    assert.deepEqual(es.map(seqOf), [2, 3, 6]);
    assert.equal(await c.pull().wait(300), undefined);
    await c.close();
    const u = await t.consumer('', { options: { kafka: { 'isolation.level': 'read_uncommitted' } } });
    assert.deepEqual((await pullN(u, 7)).map(seqOf), [0, 1, 2, 3, 4, 5, 6]);
    await u.close();
    await t.close();
  });

  it('after the last event before a transaction marker, nextPositions() is the end (past the marker), so reading up to the end stops', { timeout: 40000 }, async () => {
    const name = await topic('txend', 1);
    await writeCommittedTransaction(env.bootstrap, name, [0, 1]);
    const t = await d.openTopic(name);
    const c = await t.consumer('', { startFrom: 'earliest' });
    const end = (await c.endPositions()).get(0);
    assert.equal(end, 3n, 'two records and the commit marker');
    assert.deepEqual((await pullN(c, 2)).map((e) => e.id), [0n, 1n]);
    assert.equal(await c.pull().wait(300), undefined);
    assert.equal((await c.nextPositions()).get(0), 3n, 'the marker is behind the reader: nothing is left to read');
    await c.close();
    await t.close();
  });

  it('a committed offset out of range is reset by auto.offset.reset (earliest by default)', { timeout: 30000 }, async () => {
    const name = await topic('oor', 1);
    const group = uniqueName('grp');
    const t = await d.openTopic(name);
    const p = await t.producer();
    for (let seq = 0; seq < 3; seq++) p.push({ seq });
    await p.close();
    // a standalone commit through the driver's admin client (kafkajs' setOffsets takes ~5 s)
    const driverAdmin = (d.impl as unknown as { admin: { commitOffsets(g: string, t: string, o: Map<number, bigint>): Promise<void> } }).admin;
    await driverAdmin.commitOffsets(group, name, new Map([[0, 1000n]]));
    const logs: string[] = [];
    setLogSink((level, m) => logs.push(`[${level}] ${m}`));
    try {
      const c = await t.consumer(group, { targets: [0] });
      assert.deepEqual((await pullN(c, 3)).map((e) => e.id), [0n, 1n, 2n]);
      await c.close();
    } finally {
      setLogSink(undefined);
    }
    assert.ok(logs.some((l) => l.includes('offset 1000 out of range in partition 0, resetting to earliest')), logs.join('\n'));
    await t.close();
  });

  it('§11.2 the info topic holds the three component records, in order, compact JSON', { timeout: 30000 }, async () => {
    const name = uniqueName('info');
    await d.createTopic(name, {
      options: { num_partitions: 2, replication_factor: 1 },
      validator: { type: 'schema', schema: { type: 'object', required: ['x'] } },
    });
    created.push(name);
    const msgs = await readWithKafkajs(`__info_${name}`, 3);
    assert.deepEqual(
      msgs.map((m) => m.value?.toString()),
      ['{"schema":{"required":["x"],"type":"object"},"type":"schema"}', '{"type":"default"}', '{"type":"default"}'],
    );
    for (const m of msgs) {
      assert.equal(m.key, null);
      assert.deepEqual(m.headers, {});
    }
    const cfg = await admin.describeConfigs({ resources: [{ type: 2, name: `__info_${name}`, configNames: ['retention.ms', 'retention.bytes'] }], includeSynonyms: false });
    const entries = new Map(cfg.resources[0]?.configEntries.map((e) => [e.configName, e.configValue]));
    assert.equal(entries.get('retention.ms'), '-1');
    assert.equal(entries.get('retention.bytes'), '-1');
    const t = await d.openTopic(name);
    assert.deepEqual(t.validator.metadata().json, { type: 'schema', schema: { type: 'object', required: ['x'] } });
    await t.close();
    const listed = (await d.listTopics()).get(name) as Record<string, Json>;
    assert.deepEqual(listed['selector'], { type: 'default' });
    assert.equal(listed['num_partitions'], 2);
  });

  it('§11.3 300 pushes to 3 partitions with the default selector: 100 each, round robin', { timeout: 30000 }, async () => {
    const name = await topic('rr', 3);
    const t = await d.openTopic(name);
    const p = await t.producer();
    const fs = Array.from({ length: 300 }, (_, seq) => p.push({ seq }));
    await p.flush();
    const ids = await Promise.all(fs);
    await p.close();
    const c = await t.consumer('');
    const es = await pullN(c, 300);
    const counts = [0, 0, 0];
    for (const e of es) {
      const seq = seqOf(e);
      assert.equal(e.partitionIndex, seq % 3, `seq ${seq} in partition ${e.partitionIndex}`);
      assert.equal(e.id, BigInt(Math.floor(seq / 3)));
      assert.equal(ids[seq], e.id);
      counts[e.partitionIndex]!++;
    }
    assert.deepEqual(counts, [100, 100, 100]);
    await c.close();
    await t.close();
  });

  it('a producer whose topic was deleted and created again under its name refuses the new topic once its metadata is refreshed (metadata.max.age.ms): TOPIC_NOT_FOUND, nothing written to it', { timeout: 40000 }, async () => {
    const props = { 'bootstrap.servers': env.bootstrap, 'metadata.max.age.ms': 500 };
    const own = await Driver.create('kafka', { kafka: props });
    try {
      const name = await topic('recreated', 1);
      const t = await own.openTopic(name);
      const p = await t.producer();
      assert.equal(await p.push({ seq: 0 }).wait(), 0n);
      await d.deleteTopic(name);
      // the deletion completes in the background: "already exists" (marked for deletion) for a moment
      for (const deadline = Date.now() + 15000; ; ) {
        try {
          await d.createTopic(name, { options: { num_partitions: 1, replication_factor: 1 } });
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      await new Promise((r) => setTimeout(r, 1500)); // past metadata.max.age.ms: the next send sees the new topic id
      await assert.rejects(p.push({ seq: 1 }).wait(15000), { code: 'DIASPORA_TOPIC_NOT_FOUND', message: `Topic ${name} was deleted` });
      await p.close().catch(() => undefined);
      await t.close();
      const c = await (await d.openTopic(name)).consumer('', { startFrom: 'earliest' });
      try {
        assert.equal(await c.pull().wait(1500), undefined, 'the new topic got a record of the old producer');
      } finally {
        await c.close();
      }
    } finally {
      await own.close();
    }
  });

  it('§11.4 acknowledge 10 of 20, close: the next consumer of that name starts at 10 (a Kafka group offset)', { timeout: 30000 }, async () => {
    const name = await topic('restart', 1);
    const group = uniqueName('grp');
    const t = await d.openTopic(name);
    const p = await t.producer();
    for (let seq = 0; seq < 20; seq++) p.push({ seq });
    await p.close();
    const c1 = await t.consumer(group, { ackIntervalMs: 50 });
    const es = await pullN(c1, 20);
    await Promise.all(es.slice(0, 10).map((e) => e.acknowledge()));
    await c1.close();
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [name] });
    assert.equal(offsets[0]?.partitions[0]?.offset, '10', 'kafkajs sees the committed offset of the group');
    const c2 = await t.consumer(group);
    const next = await pullN(c2, 10);
    assert.deepEqual(next.map((e) => e.id), Array.from({ length: 10 }, (_, i) => BigInt(10 + i)));
    await c2.close();
    await t.close();
  });

  it('§11.5 a consumer killed without closing redelivers exactly the unacknowledged events', { timeout: 60000 }, async () => {
    const name = await topic('killed', 1);
    const group = uniqueName('grp');
    const t = await d.openTopic(name);
    const p = await t.producer();
    for (let seq = 0; seq < 20; seq++) p.push({ seq });
    await p.close();
    // the child pulls 15, acknowledges 0..9 and 12, then is killed
    const child = spawn(process.execPath, [fileURLToPath(new URL('./child-consumer.js', import.meta.url)), env.bootstrap, name, group, '15', '0,1,2,3,4,5,6,7,8,9,12'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const ready = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`child not ready: ${out}`)), 30000);
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolve(out);
        }
      });
      child.on('exit', (code) => reject(new Error(`child exited with ${code}: ${out}`)));
    });
    assert.match(ready, /^READY 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const c = await t.consumer(group, { options: { kafka: { 'session.timeout.ms': 6000 } } });
    const es = await pullN(c, 10, 30000);
    // 12 was acknowledged after the unacknowledged 10 and 11: it comes again (at-least-once), nothing is skipped
    assert.deepEqual(es.map(seqOf), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.equal(await c.pull().wait(300), undefined);
    await c.close();
    await t.close();
  });

  it('§11.7 targets [1] reads only partition 1 and commits under its name', { timeout: 30000 }, async () => {
    const name = await topic('targets', 3);
    const group = uniqueName('tgt');
    const t = await d.openTopic(name);
    const p = await t.producer();
    for (let seq = 0; seq < 30; seq++) p.push({ seq });
    await p.close();
    const c = await t.consumer(group, { targets: [1], ackIntervalMs: 20 });
    const es = await pullN(c, 10);
    assert.ok(es.every((e) => e.partitionIndex === 1));
    assert.equal(await c.pull().wait(300), undefined, 'events of other partitions delivered');
    await Promise.all(es.slice(0, 4).map((e) => e.acknowledge()));
    await c.close();
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [name] });
    const byPartition = new Map(offsets[0]?.partitions.map((x) => [x.partition, x.offset]));
    assert.equal(byPartition.get(1), '4');
    assert.equal(byPartition.get(0), '-1');
    const c2 = await t.consumer(group, { targets: [1] });
    assert.equal((await pullN(c2, 1))[0]?.id, 4n);
    await c2.close();
    await t.close();
  });

  it('consumers of one name split the partitions (group), and take over on close', { timeout: 60000 }, async () => {
    const name = await topic('group', 2);
    const group = uniqueName('grp');
    const t = await d.openTopic(name);
    const p = await t.producer();
    for (let seq = 0; seq < 20; seq++) p.push({ seq });
    await p.flush();
    const fast = { options: { kafka: { 'heartbeat.interval.ms': 300, 'session.timeout.ms': 6000 } }, ackIntervalMs: 20 };
    const c1 = await t.consumer(group, fast);
    const c2 = await t.consumer(group, fast);
    // once the rebalance settled, each member owns one partition
    const deadline = Date.now() + 20000;
    let parts1: number[] = [];
    let parts2: number[] = [];
    while (Date.now() < deadline) {
      parts1 = [...(await c1.endPositions()).keys()];
      parts2 = [...(await c2.endPositions()).keys()];
      if (parts1.length === 1 && parts2.length === 1) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual([...parts1, ...parts2].sort(), [0, 1], `assignments ${JSON.stringify([parts1, parts2])}`);
    const e2 = await pullN(c2, 10);
    assert.ok(e2.every((e) => e.partitionIndex === parts2[0]));
    await Promise.all(e2.map((e) => e.acknowledge()));
    await c2.close();
    // c1 takes over c2's partition from its committed position: nothing more to read there, then new events
    for (let seq = 20; seq < 24; seq++) p.push({ seq }, undefined, { partition: parts2[0] });
    await p.close();
    const rest = await pullN(c1, 14, 20000);
    const seqs = rest.map(seqOf).sort((a, b) => a - b);
    const mine = Array.from({ length: 20 }, (_, s) => s).filter((s) => s % 2 === parts1[0]);
    assert.deepEqual(seqs, [...mine, 20, 21, 22, 23].sort((a, b) => a - b));
    await c1.close();
    await t.close();
  });

  for (const [kind, consumerName] of [
    ['an anonymous consumer', ''],
    ['a group member', 'grow'],
  ] as const) {
    it(`partitions added to a topic are read by ${kind}, from their beginning`, { timeout: 60000 }, async () => {
      const name = await topic('grow', 1);
      const fast = opts({ kafka: { 'bootstrap.servers': env.bootstrap, 'topic.metadata.refresh.interval.ms': 300 } });
      const d2 = await Driver.create('kafka', fast);
      try {
        const t = await d2.openTopic(name);
        const group = consumerName === '' ? '' : uniqueName(consumerName);
        const c = await t.consumer(group, { startFrom: 'latest', options: { kafka: { 'heartbeat.interval.ms': 300, 'session.timeout.ms': 6000 } } });
        try {
          await admin.createPartitions({ topicPartitions: [{ topic: name, count: 2 }] });
          // written to the new partition before the consumer can have noticed it
          const producer = kjs(kafka.producer());
          await producer.connect();
          await producer.send({ topic: name, messages: [0, 1, 2].map((seq) => ({ partition: 1, value: octopusValue(seq) })) });
          await producer.disconnect();
          const got = await pullN(c, 3, 30000);
          assert.deepEqual(
            got.map((e) => [e.partitionIndex, seqOf(e)]),
            [
              [1, 0],
              [1, 1],
              [1, 2],
            ],
          );
        } finally {
          await c.close();
        }
        await t.close();
      } finally {
        await d2.close();
      }
    });
  }

  it('producer.markEndOfStream() writes the octopus end marker: process() and iteration end on it', { timeout: 30000 }, async () => {
    const t = await d.openTopic(await topic('eos', 2));
    const p = await t.producer();
    for (let seq = 0; seq < 4; seq++) p.push({ seq });
    await p.markEndOfStream();
    await p.close();
    // each partition carries its marker after the events: process() stops at the first marker it meets
    const c = await t.consumer('', { startFrom: 'earliest' });
    const seen: number[] = [];
    const n = await c.process((e) => void seen.push(seqOf(e)), { timeoutMs: 15000 });
    assert.ok(n >= 1 && n <= 4, `processed ${n}`);
    await c.close();
    // the raw pulls show the markers themselves: id NO_MORE_EVENTS, metadata {}, no data
    const c2 = await t.consumer('', { startFrom: 'earliest' });
    const all = await pullN(c2, 6);
    const markers = all.filter((e) => e.id === NO_MORE_EVENTS);
    assert.equal(markers.length, 2);
    for (const m of markers) {
      assert.equal(m.metadata.dump(), '{}');
      assert.equal(m.data.size, 0);
    }
    assert.deepEqual(all.filter((e) => e.id !== NO_MORE_EVENTS).map(seqOf).sort(), [0, 1, 2, 3]);
    await c2.close();
    await t.close();
  });

  const payload = Buffer.from('compressible '.repeat(400));
  /** 50 events through the broker with `codec`: read back in order, data intact. */
  async function codecRoundTrip(t: TopicHandle, codec: string): Promise<void> {
    const p = await t.producer({ options: { kafka: { 'compression.type': codec } } });
    for (let seq = 0; seq < 50; seq++) p.push({ seq, codec }, payload.subarray(0, 100 + seq * 10));
    await p.close();
    const c = await t.consumer('', { startFrom: 'earliest' });
    const got = await pullN(c, 50);
    assert.deepEqual(got.map(seqOf), Array.from({ length: 50 }, (_, i) => i));
    for (const e of got) assert.deepEqual(e.data.toBuffer(), payload.subarray(0, 100 + seqOf(e) * 10));
    await c.close();
  }

  for (const codec of ['gzip', 'snappy', 'lz4'] as const) {
    it(`compression.type ${codec}: records round-trip through the broker intact`, { timeout: 30000 }, async () => {
      const t = await d.openTopic(await topic(`codec-${codec}`, 1));
      await codecRoundTrip(t, codec);
      await t.close();
    });
  }

  // Node >= 22.15 (and 23.8) has zstd in zlib; the client uses it when it is there
  const zstd = typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';
  it(
    zstd ? 'compression.type zstd (zlib has zstd): records round-trip through the broker intact' : 'compression.type zstd without zstd in zlib: Unsupported compression: zstd',
    { timeout: 30000 },
    async () => {
      const name = await topic('codec-zstd', 1);
      const t = await d.openTopic(name);
      if (!zstd) {
        await assert.rejects(t.producer({ options: { kafka: { 'compression.type': 'zstd' } } }), (e: unknown) => {
          assert.ok(e instanceof DiasporaError, String(e));
          assert.equal(e.message, 'Unsupported compression: zstd');
          return true;
        });
        await assert.rejects(Driver.create('kafka', opts({ kafka: { 'bootstrap.servers': env.bootstrap, 'compression.type': 'zstd' } })), { message: 'Unsupported compression: zstd' });
        await t.close();
        return;
      }
      // the broker stores the zstd batches as they are; our consumer decompresses them
      await codecRoundTrip(t, 'zstd');
      await t.close();
    },
  );

  it('createTopic without replication_factor on the 1-broker cluster: replication factor 1 (data and info topic), with a warning', { timeout: 30000 }, async () => {
    const name = uniqueName('default-rf');
    const logs: string[] = [];
    setLogSink((level, m) => logs.push(`[${level}] ${m}`));
    try {
      await d.createTopic(name, { options: { num_partitions: 2 } });
    } finally {
      setLogSink(undefined);
    }
    created.push(name);
    // (only this topic's: the shared driver's other clients may warn meanwhile)
    assert.deepEqual(
      logs.filter((l) => l.startsWith('[warning] ') && l.includes(name)),
      [`[warning] Topic ${name}: the cluster has 1 broker(s), using replication factor 1 instead of 3`],
    );
    const md = await admin.fetchTopicMetadata({ topics: [name, `__info_${name}`] });
    const rf = new Map(md.topics.map((t) => [t.name, t.partitions.map((p) => p.replicas.length)]));
    assert.deepEqual(rf.get(name), [1, 1]);
    assert.deepEqual(rf.get(`__info_${name}`), [1]);
    assert.equal((await d.listTopics()).has(name), true);
    // an explicit replication factor is not adjusted: 3 on one broker is the broker's error, and no warning
    const other = uniqueName('rf3');
    logs.length = 0;
    setLogSink((level, m) => logs.push(`[${level}] ${m}`));
    try {
      await assert.rejects(d.createTopic(other, { options: { replication_factor: 3 } }), (e: unknown) => e instanceof DiasporaError && /INVALID_REPLICATION_FACTOR|replication factor/i.test(e.message));
    } finally {
      setLogSink(undefined);
    }
    assert.deepEqual(logs.filter((l) => l.startsWith('[warning] ') && l.includes(other)), []);
    assert.equal(await d.topicExists(other), false);
  });

  it('startFrom earliest / latest and endPositions', { timeout: 30000 }, async () => {
    const name = await topic('start', 2);
    const group = uniqueName('grp');
    const t = await d.openTopic(name);
    const p = await t.producer();
    for (let seq = 0; seq < 6; seq++) p.push({ seq });
    await p.flush();
    const c1 = await t.consumer(group, { ackIntervalMs: 10 });
    const es = await pullN(c1, 6);
    await Promise.all(es.map((e) => e.acknowledge()));
    assert.deepEqual(await c1.endPositions(), new Map([[0, 3n], [1, 3n]]));
    await c1.close();
    const late = await t.consumer(group, { startFrom: 'latest' });
    assert.equal(await late.pull().wait(300), undefined);
    p.push({ seq: 6 });
    await p.flush();
    assert.equal(seqOf((await pullN(late, 1))[0] as Event), 6);
    await late.close();
    const early = await t.consumer(group, { startFrom: 'earliest' });
    assert.equal((await pullN(early, 7)).length, 7);
    await early.close();
    await p.close();
    await t.close();
  });
});
