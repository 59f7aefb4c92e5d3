/**
 * Runs the driver conformance suite against the `kafka` driver on the broker of the test contract
 * (DIASPORA_KAFKA_BOOTSTRAP; skipped with a message when it is not set, failing under CI=true).
 * Every driver of this run uses one namespace of its own, so cleanup deletes exactly its topics.
 */
import { randomBytes } from 'node:crypto';
import { Driver } from '../../src/index.js';
import { kafkaSuite } from '../helpers/kafka.js';
import { driverConformanceSuite } from './suite.js';

kafkaSuite('kafka driver', (env) => {
  const namespace = `conf${process.pid}${randomBytes(3).toString('hex')}`;
  let counter = 0;
  const open = (): Promise<Driver> => Driver.create('kafka', { kafka: { 'bootstrap.servers': env.bootstrap }, namespace });

  driverConformanceSuite({
    name: 'kafka',
    createDriver: open,
    createPeerDriver: () => open(),
    topicOptions: (n) => ({ num_partitions: n, replication_factor: 1 }),
    topicName: (prefix) => `${prefix}-${++counter}`,
    async cleanup() {
      const d = await open();
      try {
        // topics whose info topic is missing are not listed: ask the admin for every Kafka topic of the namespace
        const impl = d.impl as unknown as { admin: { listTopics(): Promise<string[]>; deleteTopics(n: string[]): Promise<void> } };
        const all = (await impl.admin.listTopics()).filter((t) => t.startsWith(namespace + '.'));
        if (all.length > 0) await impl.admin.deleteTopics(all);
      } finally {
        await d.close();
      }
    },
    supportsHeaders: true,
    producerRefusesRecreatedTopic: false,
    duplicateTopicMessage: (name) => `Topic already exists: ${name}`,
  });
});
