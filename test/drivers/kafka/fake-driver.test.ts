/**
 * The kafka driver over the in-memory fake at the client-adapter boundary (no broker): topic
 * creation and info topics, opening and listing, producing (one send in flight, client reset),
 * consuming (malformed records, end marker, headers, commit modes), options and errors.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Driver, NO_MORE_EVENTS, registerDriver, setLogSink, type Event, type TopicHandle } from '../../../src/index.js';
import type { Json } from '../../../src/api/json.js';
import { Metadata } from '../../../src/api/metadata.js';
import { createKafkaDriverWith } from '../../../src/drivers/kafka/driver.js';
import { encodeValue, endOfStreamValue } from '../../../src/drivers/kafka/record-layout.js';
import { FakeCluster } from './fake-client.js';

let counter = 0;
let logs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeEach(() => {
  logs = [];
  setLogSink((level, m) => logs.push(`[${level}] ${m}`));
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  setLogSink(undefined);
});

async function fakeDriver(cluster: FakeCluster, extra: Record<string, Json> = {}): Promise<Driver> {
  const type = `kafka-fake-${++counter}`;
  registerDriver(type, (o) => createKafkaDriverWith(o, cluster.factory()));
  const d = await Driver.create(type, { kafka: { 'bootstrap.servers': 'fake:9092' }, ...extra });
  closers.push(() => d.close());
  return d;
}

async function open(d: Driver, name: string): Promise<TopicHandle> {
  const t = await d.openTopic(name);
  closers.push(() => t.close());
  return t;
}

function defaultValue(md: Json, data = ''): Buffer {
  const text = Buffer.from(new Metadata(md).dump());
  const rec = Buffer.alloc(8 + text.length);
  rec.writeBigUInt64LE(BigInt(text.length));
  text.copy(rec, 8);
  return encodeValue(rec, data === '' ? [] : [Buffer.from(data)]);
}

describe('kafka driver over a fake client', () => {
  it('createTopic writes the info topic: retention -1, validator/selector/serializer compact JSON', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('t1', { options: { num_partitions: 3, config: { 'retention.ms': '-1' } }, validator: { type: 'schema', schema: { type: 'object' } } });
    const data = c.topics.get('t1');
    const info = c.topics.get('__info_t1');
    assert.equal(data?.partitions.length, 3);
    assert.deepEqual(data?.configs, { 'retention.ms': '-1' });
    assert.equal(info?.partitions.length, 1);
    assert.deepEqual(info?.configs, { 'retention.ms': '-1', 'retention.bytes': '-1' });
    assert.deepEqual(
      info?.partitions[0]?.map((r) => r.value?.toString()),
      ['{"schema":{"type":"object"},"type":"schema"}', '{"type":"default"}', '{"type":"default"}'],
    );
    assert.ok(info?.partitions[0]?.every((r) => r.headers.length === 0));
    // default replication factor 3 on a 1-broker cluster: 1, with a warning
    assert.equal(data?.replicationFactor, 1);
    assert.ok(logs.some((l) => l.startsWith('[warning] Topic t1: the cluster has 1 broker(s)')), logs.join('\n'));
    await assert.rejects(d.createTopic('t1', { options: {} }), { message: 'Topic already exists: t1' });
    await assert.rejects(d.createTopic('t2', { options: { replication_factor: 2 } }), /^DiasporaError: Kafka error: cannot create topic t2: INVALID_REPLICATION_FACTOR|Kafka error: cannot create topic t2: INVALID_REPLICATION_FACTOR/);
    assert.equal(c.topics.has('t2'), false);
    assert.equal(c.topics.has('__info_t2'), false, 'the info topic created in the same request is removed');
    const t = await open(d, 't1');
    assert.equal(t.partitions.length, 3);
    assert.deepEqual(t.partitions[2], { partition_id: 2 });
    assert.deepEqual(t.validator.metadata().json, { type: 'schema', schema: { type: 'object' } });
  });

  it('topic option texts of octopus', { timeout: 10000 }, async () => {
    const d = await fakeDriver(new FakeCluster());
    const cases: [Json, string][] = [
      [{ num_partitions: 'x' }, '"num_partitions" option should be a number'],
      [{ num_partitions: 0 }, 'Invalid value for "num_partitions" option'],
      [{ replication_factor: '1' }, '"replication_factor" option should be a number'],
      [{ replication_factor: -1 }, 'Invalid value for "replication_factor" option'],
      [{ disable_info_topic: 1 }, '"disable_info_topic" option should be a boolean'],
    ];
    for (const [options, message] of cases) await assert.rejects(d.createTopic('x', { options }), { message });
    await assert.rejects(d.createTopic('x', { options: { disable_info_topic: true }, validator: { type: 'schema', schema: {} } }), {
      message: 'Cannot disable info topic: validator type is not "default"',
    });
    await assert.rejects(d.createTopic('x', { options: { disable_info_topic: true }, serializer: { type: 'schema', schema: {} } }), {
      message: 'Cannot disable info topic: serializer type is not "default"',
    });
    await assert.rejects(d.createTopic('bad/name', { options: {} }), { message: 'Invalid topic name: bad/name' });
  });

  it('namespace and info prefix name the Kafka topics; listTopics strips and filters', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c, { namespace: 'ns', info_topic_prefix: 'info_' });
    await d.createTopic('a', { options: { num_partitions: 2 } });
    await d.createTopic('b', { options: { disable_info_topic: true } });
    assert.ok(c.topics.has('ns.a') && c.topics.has('ns.info_a') && c.topics.has('ns.b') && !c.topics.has('ns.info_b'));
    c.addTopic('other', 1);
    c.addTopic('__consumer_offsets', 1);
    c.addTopic('otherns.a', 1);
    const list = await d.listTopics();
    assert.deepEqual([...list.keys()], ['a']);
    assert.deepEqual(list.get('a'), {
      name: 'a',
      num_partitions: 2,
      validator: { type: 'default' },
      selector: { type: 'default' },
      partition_selector: { type: 'default' },
      serializer: { type: 'default' },
    });
    const d2 = await fakeDriver(c, { namespace: 'ns', info_topic_prefix: 'info_', list_all_topics: true });
    assert.deepEqual((await d2.listTopics()).get('b'), { name: 'b', num_partitions: 1, info_topic: false });
    assert.equal(await d.topicExists('a'), true);
    assert.equal(await d.topicExists('other'), false);
    await d.deleteTopic('a');
    assert.ok(!c.topics.has('ns.a') && !c.topics.has('ns.info_a'));
    await assert.rejects(d.deleteTopic('a'), { message: 'Topic "a" not found' });
  });

  it('openTopic: not found; missing or short info topic warns and uses defaults; bad records fail', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await assert.rejects(d.openTopic('nope'), { message: 'Topic "nope" not found' });
    c.addTopic('plain', 2);
    const t = await open(d, 'plain');
    assert.equal(t.partitions.length, 2);
    assert.deepEqual(t.serializer.metadata().json, { type: 'default' });
    assert.ok(logs.includes('[warning] [octopus:warning] Could not read info topic __info_plain, using default validator, serializer, and partition selector'), logs.join('\n'));
    c.addTopic('short', 1);
    c.addTopic('__info_short', 1);
    c.append('__info_short', 0, Buffer.from('{"type":"default"}'));
    await open(d, 'short');
    assert.ok(logs.some((l) => l.includes('Could not read info topic __info_short')));
    c.addTopic('badjson', 1);
    c.addTopic('__info_badjson', 1);
    for (const v of ['{"type":"default"}', '{not json', '{"type":"default"}']) c.append('__info_badjson', 0, Buffer.from(v));
    await assert.rejects(d.openTopic('badjson'), (e: unknown) => {
      assert.match((e as Error).message, /^Cannot open topic badjson: invalid partition selector configuration in info topic: Could not parse JSON/);
      return true;
    });
    c.addTopic('badtype', 1);
    c.addTopic('__info_badtype', 1);
    for (const v of ['{"type":"default"}', '{"type":"default"}', '{"type":"nosuch"}']) c.append('__info_badtype', 0, Buffer.from(v));
    await assert.rejects(d.openTopic('badtype'), (e: unknown) => {
      assert.match((e as Error).message, /^Cannot open topic badtype: invalid serializer configuration in info topic: Trying to load diaspora-stream-nosuch failed/);
      return true;
    });
  });

  it('producer: sends pipelined up to max.in.flight, in order; queued batches coalesced', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('q', { options: { num_partitions: 4 } });
    const t = await open(d, 'q');
    const p = await t.producer({ batchSize: 5, maxNumBatches: 64 });
    closers.push(() => p.close());
    c.sendDelayMs = 5;
    const fs = Array.from({ length: 400 }, (_, i) => p.push({ i }));
    await p.flush();
    const ids = await Promise.all(fs);
    assert.ok(c.maxInflightSends > 1 && c.maxInflightSends <= 5, `${c.maxInflightSends} sends in flight (max.in.flight 5)`);
    for (let i = 0; i < 400; i++) assert.equal(ids[i], BigInt(Math.floor(i / 4)), `event ${i}`);
    for (let part = 0; part < 4; part++) {
      const seq = (c.topics.get('q')?.partitions[part] ?? []).map((r) => JSON.parse(Buffer.from(r.value as Buffer).subarray(24).toString()).i as number);
      assert.deepEqual(seq, Array.from({ length: 100 }, (_, k) => k * 4 + part), `partition ${part} in push order`);
    }
  });

  it('producer: max.in.flight 1 — one send in flight, partitions coalesced, client replaced after a failure', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('p', { options: { num_partitions: 4 } });
    const t = await open(d, 'p');
    const p = await t.producer({ batchSize: 5, options: { kafka: { 'max.in.flight.requests.per.connection': 1 } } });
    closers.push(() => p.close());
    c.sendDelayMs = 5;
    const before = c.producersCreated;
    const fs = Array.from({ length: 200 }, (_, i) => p.push({ i }, undefined, { headers: { h: String(i) } }));
    await p.flush();
    const ids = await Promise.all(fs);
    assert.equal(c.maxInflightSends, 1, 'concurrent sends with max.in.flight 1');
    assert.ok(c.sendCalls < 40, `${c.sendCalls} sends for 40 batches: partitions were not coalesced`);
    for (let i = 0; i < 200; i++) assert.equal(ids[i], BigInt(Math.floor(i / 4)));
    assert.equal(c.topics.get('p')?.partitions[1]?.[0]?.headers[0]?.[1].toString(), '1');
    // a failed send rejects its pushes with "Kafka error: …" and the next send uses a new client
    c.failSends = 1;
    await assert.rejects(p.push({ fail: true }).wait(), (e: unknown) => {
      assert.match((e as Error).message, /^Kafka error: NOT_ENOUGH_REPLICAS: injected failure$/);
      return true;
    });
    const created = c.producersCreated;
    assert.ok(await p.push({ ok: true }) >= 0n);
    assert.equal(c.producersCreated, created + 1, 'the producer client was not replaced after the failure');
    assert.ok(created > before);
  });

  it('producer: batch.num.messages splits a batch into several produce batches', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('s', { options: {} });
    const t = await open(d, 's');
    const p = await t.producer({ options: { kafka: { 'batch.num.messages': 3 } } });
    closers.push(() => p.close());
    const fs = Array.from({ length: 10 }, (_, i) => p.push({ i }));
    await p.flush();
    assert.deepEqual(await Promise.all(fs), Array.from({ length: 10 }, (_, i) => BigInt(i)));
    assert.ok(c.sendSizes.slice(-4).every((n) => n <= 3), JSON.stringify(c.sendSizes));
  });

  it('producer: a failed send fails the appends of the partition queued behind it (they would land ahead of the re-sent records)', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('q', { options: {} });
    const t = await open(d, 'q');
    // appends of 6 events split into record batches of 3; 2 requests in flight: A1 and A2 sent, B1 and B2 queued
    const p = await t.producer({ batchSize: 6, maxNumBatches: 8, options: { kafka: { 'batch.num.messages': 3, 'max.in.flight': 2 } } });
    closers.push(() => p.close());
    c.sendDelayMs = 30;
    c.failSends = 1;
    const a = Array.from({ length: 12 }, (_, i) => p.push({ i }));
    await p.flush().wait(5000).catch(() => undefined);
    const outcomes = await Promise.allSettled(a.map((f) => f.wait(5000)));
    assert.deepEqual(
      outcomes.map((o) => o.status),
      Array.from({ length: 12 }, () => 'rejected'),
      'the first append failed with its first request; the second, queued behind, fails with it',
    );
    // later pushes are written
    const later = await Promise.all([p.push({ i: 12 }), p.push({ i: 13 })]);
    assert.equal(later[1], later[0] + 1n);
  });

  it('rebalance: fetched but undelivered events of a revoked partition are not delivered; they come back with it', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('rb', { options: { num_partitions: 2 } });
    for (let i = 0; i < 50; i++) for (const p of [0, 1]) c.append('rb', p, defaultValue({ p, i }));
    const t = await open(d, 'rb');
    const k = await t.consumer('g', { ackIntervalMs: 0, batchSize: 8 });
    closers.push(() => k.close());
    // a few events of each partition delivered; the consumer has fetched more ahead of time
    const first: Event[] = [];
    while (!(first.some((e) => e.partitionIndex === 1) && first.length >= 6)) first.push((await k.pull().wait(2000)) as Event);
    const seen1 = first.filter((e) => e.partitionIndex === 1).map((e) => (e.metadata.json as { i: number }).i);
    // partition 1 goes to another member
    c.rebalance('g', [0]);
    const during: Event[] = [];
    for (;;) {
      const e = await k.pull().wait(300);
      if (e === undefined) break;
      during.push(e);
    }
    assert.deepEqual(
      during.filter((e) => e.partitionIndex === 1).map((e) => e.id),
      [],
      'events of the revoked partition delivered after the revocation',
    );
    // it comes back (nothing was committed): delivered from the first event not delivered here, once each
    c.rebalance('g', [0, 1]);
    const expected = Array.from({ length: 50 }, (_, i) => i).filter((i) => !seen1.includes(i));
    const back: number[] = [];
    // until all are back (bounded), then nothing more: a short gap of a loaded machine does not end the reading early
    for (const deadline = Date.now() + 10_000; back.length < expected.length && Date.now() < deadline; ) {
      const e = await k.pull().wait(1000);
      if (e !== undefined && e.partitionIndex === 1) back.push((e.metadata.json as { i: number }).i);
    }
    for (;;) {
      const e = await k.pull().wait(500);
      if (e === undefined) break;
      if (e.partitionIndex === 1) back.push((e.metadata.json as { i: number }).i);
    }
    assert.deepEqual(back, expected);
  });

  for (const [kind, name] of [
    ['anonymous consumer', ''],
    ['group member', 'grower'],
  ] as const) {
    it(`${kind}: partitions added to the topic are read from their beginning once noticed`, { timeout: 10000 }, async () => {
      const c = new FakeCluster();
      const d = await fakeDriver(c, { kafka: { 'bootstrap.servers': 'fake:9092', 'topic.metadata.refresh.interval.ms': 100 } });
      await d.createTopic('gr', { options: { num_partitions: 1 } });
      for (let i = 0; i < 3; i++) c.append('gr', 0, defaultValue({ p: 0, i }));
      const t = await open(d, 'gr');
      const k = await t.consumer(name, { ackIntervalMs: 0, startFrom: 'latest' });
      closers.push(() => k.close());
      // started at the end of partition 0; the topic then grows and both partitions get events
      (c.topics.get('gr')?.partitions as unknown[]).push([]);
      c.append('gr', 1, defaultValue({ p: 1, i: 0 }));
      c.append('gr', 1, defaultValue({ p: 1, i: 1 }));
      c.append('gr', 0, defaultValue({ p: 0, i: 3 }));
      const got: string[] = [];
      const deadline = Date.now() + 5000;
      while (got.length < 3 && Date.now() < deadline) {
        const e = await k.pull().wait(500);
        if (e !== undefined) got.push(`${e.partitionIndex}:${(e.metadata.json as { i: number }).i}`);
      }
      // partition 1 is read from its beginning even though the consumer started at 'latest'
      assert.deepEqual(got.sort(), ['0:3', '1:0', '1:1']);
      assert.equal(await k.pull().wait(300), undefined);
      assert.ok(logs.some((l) => l.includes('the topic grew from 1 to 2 partitions')), logs.join('\n'));
    });
  }

  it('consumer: malformed records (skip), end marker, headers, octopus values', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('m', { options: {} });
    c.append('m', 0, defaultValue({ a: 1 }, 'xy'), [[Buffer.from('k'), Buffer.from('vé')]]);
    c.append('m', 0, Buffer.from('short'));
    c.append('m', 0, defaultValue({ a: 2 }));
    c.append('m', 0, endOfStreamValue());
    c.append('m', 0, defaultValue({ a: 3 }));
    const t = await open(d, 'm');
    const k = await t.consumer('k', { ackIntervalMs: 0 });
    closers.push(() => k.close());
    const e0 = (await k.pull().wait(2000)) as Event;
    assert.deepEqual(e0.metadata.json, { a: 1 });
    assert.equal(e0.data.toBuffer().toString(), 'xy');
    assert.deepEqual({ ...e0.headers }, { k: 'vé' });
    await e0.acknowledge();
    await assert.rejects(k.pull().wait(2000), { message: 'Unexpected message size received (payload < 2*sizeof(size_t))' });
    const e2 = (await k.pull().wait(2000)) as Event;
    assert.deepEqual([e2.id, e2.metadata.json], [2n, { a: 2 }]);
    assert.ok(logs.some((l) => l.includes('skipped malformed record at offset 1')));
    const end = (await k.pull().wait(2000)) as Event;
    assert.equal(end.id, NO_MORE_EVENTS);
    assert.deepEqual(end.metadata.json, {});
    const e4 = (await k.pull().wait(2000)) as Event;
    assert.equal(e4.id, 4n);
    await e2.acknowledge();
    await k.commit();
    // position 2 acknowledged → 3 is the end marker (delivered) → committed 4
    assert.equal(c.commits.get('k')?.get('m:0'), 4n);
    assert.deepEqual(c.commitKinds.map((x) => x.kind), ['member', 'member']);
    // process() stops at the end marker
    const a = await t.consumer('');
    closers.push(() => a.close());
    const seen: bigint[] = [];
    await assert.rejects(a.process((e) => void seen.push(e.id), { timeoutMs: 500 }), /Unexpected message size/);
    const n = await a.process((e) => void seen.push(e.id), { timeoutMs: 500 });
    assert.equal(n, 1);
    assert.deepEqual(seen, [0n, 2n]);
  });

  it('consumer: on_malformed "stop" keeps rejecting', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c, { on_malformed: 'stop' });
    await d.createTopic('s', { options: {} });
    c.append('s', 0, Buffer.alloc(20));
    c.append('s', 0, defaultValue({ a: 2 }));
    const t = await open(d, 's');
    const k = await t.consumer('');
    closers.push(() => k.close());
    for (let i = 0; i < 3; i++) {
      await assert.rejects(k.pull().wait(2000), { message: "Unexpected message size received (payload size doesn't match declared metadata size and data size)" });
    }
  });

  it('producer: a push to a topic deleted since rejects with TOPIC_NOT_FOUND (a forward policy halts on it)', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('s', { options: {} });
    const t = await open(d, 's');
    const p = await t.producer();
    closers.push(() => p.close());
    assert.equal(await p.push({ a: 1 }), 0n);
    c.topics.delete('s');
    await assert.rejects(p.push({ a: 2 }).wait(5000), { code: 'DIASPORA_TOPIC_NOT_FOUND', message: 'Topic s was deleted' });
  });

  for (const recreate of [false, true]) {
    const what = recreate ? 'deleted and created again under its name' : 'deleted';
    it(`consumer: a topic ${what} ends the pulls with TOPIC_NOT_FOUND once the records fetched before are delivered${recreate ? '; nothing of the new topic' : ''}`, { timeout: 10000 }, async () => {
      const c = new FakeCluster();
      const d = await fakeDriver(c);
      await d.createTopic('s', { options: {} });
      c.append('s', 0, defaultValue({ a: 1 }));
      c.append('s', 0, defaultValue({ a: 2 }));
      const t = await open(d, 's');
      const k = await t.consumer('', { startFrom: 'earliest' });
      closers.push(() => k.close());
      assert.deepEqual((await k.pull().wait(2000))?.metadata.json, { a: 1 });
      c.topics.delete('s');
      if (recreate) {
        c.addTopic('s', 1);
        for (let i = 0; i < 4; i++) c.append('s', 0, defaultValue({ fresh: i }));
      }
      assert.deepEqual((await k.pull().wait(2000))?.metadata.json, { a: 2 }, 'fetched before the deletion');
      const message = recreate ? 'Topic s was deleted (a topic of the same name was created since)' : 'Topic s was deleted';
      for (let i = 0; i < 2; i++) await assert.rejects(k.pull().wait(5000), { code: 'DIASPORA_TOPIC_NOT_FOUND', message });
      assert.ok(logs.includes(`[warning] Kafka consumer of s: ${message}`), logs.join('\n'));
    });
  }

  it('consumer modes: anonymous commits nothing, targets commit standalone, names commit as members', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    const d = await fakeDriver(c);
    await d.createTopic('g', { options: { num_partitions: 2 } });
    const t = await open(d, 'g');
    const p = await t.producer();
    closers.push(() => p.close());
    for (let i = 0; i < 4; i++) p.push({ i });
    await p.flush();
    const anon = await t.consumer('', { ackIntervalMs: 0 });
    const e = (await anon.pull().wait(2000)) as Event;
    await e.acknowledge();
    await anon.close();
    assert.equal(c.commits.size, 0);
    const tg = await t.consumer('tg', { targets: [1], ackIntervalMs: 0 });
    closers.push(() => tg.close());
    const e1 = (await tg.pull().wait(2000)) as Event;
    assert.equal(e1.partitionIndex, 1);
    await e1.acknowledge();
    assert.equal(c.commits.get('tg')?.get('g:1'), 1n);
    assert.deepEqual(c.commitKinds, [{ group: 'tg', kind: 'standalone' }]);
    // a new consumer with the same name starts at the committed position
    await tg.close();
    const tg2 = await t.consumer('tg', { targets: [1] });
    closers.push(() => tg2.close());
    assert.equal(((await tg2.pull().wait(2000)) as Event).id, 1n);
    // startFrom latest
    const late = await t.consumer('', { startFrom: 'latest' });
    closers.push(() => late.close());
    assert.equal(await late.pull().wait(200), undefined);
    assert.deepEqual(await late.endPositions(), new Map([[0, 2n], [1, 2n]]));
  });

  it('errors: unreachable cluster, transactional.id, zstd', { timeout: 10000 }, async () => {
    const c = new FakeCluster();
    c.reachable = false;
    await assert.rejects(fakeDriver(c), { message: 'Kafka error: Cannot reach the Kafka cluster (connect ECONNREFUSED 127.0.0.1:1)' });
    c.reachable = true;
    const d = await fakeDriver(c);
    await d.createTopic('e', { options: {} });
    const t = await open(d, 'e');
    await assert.rejects(t.producer({ options: { kafka: { 'transactional.id': 'x' } } }), /transactions are not supported/);
    await assert.rejects(t.producer({ options: { kafka: { 'compression.type': 'zstd' } } }), { message: 'Unsupported compression: zstd' });
    await assert.rejects(fakeDriver(c, { kafka: { 'bootstrap.servers': 'fake:1', 'compression.codec': 'zstd' } }), { message: 'Unsupported compression: zstd' });
  });
});
