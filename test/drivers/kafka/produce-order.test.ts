/**
 * The idempotent producer on a real broker when the first batch of a partition is not appended while later ones
 * are in flight (a CI run failed so: OUT_OF_ORDER_SEQUENCE_NUMBER on a topic that was just created). The broker
 * accepts any base sequence from a producer it does not know yet on a partition, so a later batch sent while the
 * first waits for its retry would be stored first, and the retry refused for good. Here the first metadata answer
 * has no leader for the partition, as happens right after a topic is created.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { Driver, NO_MORE_EVENTS, type Event } from '../../../src/index.js';
import { platformaticClients } from '../../../src/drivers/kafka/adapter.js';
import { connectionSettings, producerSettings } from '../../../src/drivers/kafka/options.js';
import { listRun } from '../../../src/drivers/kafka/record-batch.js';
import { encodeValue } from '../../../src/drivers/kafka/record-layout.js';
import { kafkaSuite, uniqueName, type KafkaEnv } from '../../helpers/kafka.js';

interface MetadataAnswer {
  topics: Map<string, { partitions: { leader: number }[] }>;
}

kafkaSuite('kafka idempotent producer: batch order when an earlier batch is not appended', (env: KafkaEnv) => {
  let d: Driver;
  before(async () => {
    d = await Driver.create('kafka', { kafka: { 'bootstrap.servers': env.bootstrap } });
  });
  after(async () => {
    await d.close();
  });

  it('first batch without a leader, second batch sent meanwhile: appended in call order, no OUT_OF_ORDER_SEQUENCE_NUMBER', { timeout: 30000 }, async () => {
    const name = uniqueName('porder');
    await d.createTopic(name, { options: { num_partitions: 1, replication_factor: 1 } });
    const props = { 'bootstrap.servers': env.bootstrap, 'retry.backoff.ms': '20' };
    const producer = platformaticClients.producer(connectionSettings(props, undefined), producerSettings(props));
    // the producer's first metadata answer (the first send) shows partition 0 without a leader
    const admin = (producer as unknown as { admin: { metadata(o: unknown): Promise<MetadataAnswer> } }).admin;
    const metadata = admin.metadata.bind(admin);
    let calls = 0;
    admin.metadata = async (o) => {
      const md = await metadata(o);
      if (++calls > 1) return md;
      const t = md.topics.get(name);
      assert.ok(t !== undefined, 'the broker lists the topic');
      return { ...md, topics: new Map([...md.topics, [name, { ...t, partitions: t.partitions.map((p) => ({ ...p, leader: -1 })) }]]) };
    };
    // the octopus value of metadata {seq}: the record is the JSON text after its u64 LE length (the default serializer)
    const value = (seq: number): Buffer => {
      const text = Buffer.from(JSON.stringify({ seq }));
      const record = Buffer.alloc(8 + text.length);
      record.writeBigUInt64LE(BigInt(text.length));
      text.copy(record, 8);
      return encodeValue(record, []);
    };
    const run = (from: number, n: number) => listRun(Array.from({ length: n }, (_, i) => ({ value: value(from + i) })));
    try {
      // both sends are in flight at once, as the writer does with max.in.flight > 1
      const first = producer.send([{ topic: name, partition: 0, records: run(0, 5) }]);
      const second = producer.send([{ topic: name, partition: 0, records: run(5, 5) }]);
      const [a, b] = await Promise.all([first, second]);
      assert.equal(a.get(`${name}:0`), 0n, 'the first batch at offset 0');
      assert.equal(b.get(`${name}:0`), 5n, 'the second batch after it');
    } finally {
      await producer.close();
    }
    const t = await d.openTopic(name);
    const c = await t.consumer('');
    const seqs: number[] = [];
    try {
      for (;;) {
        const e: Event | undefined = await c.pull().wait(seqs.length === 10 ? 500 : 10000);
        if (e === undefined || e.id === NO_MORE_EVENTS) break;
        seqs.push((e.metadata.json as { seq: number }).seq);
      }
    } finally {
      await c.close();
    }
    assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
