/** Runs the driver conformance suite against the in-process `memory` driver (one store per driver). */
import { randomBytes } from 'node:crypto';
import { Driver } from '../../src/index.js';
import { driverConformanceSuite } from './suite.js';

const stores: string[] = [];
const storeOf = new WeakMap<Driver, string>();
let counter = 0;

async function open(store: string): Promise<Driver> {
  const d = await Driver.create('memory', { store });
  storeOf.set(d, store);
  return d;
}

driverConformanceSuite({
  name: 'memory',
  async createDriver() {
    const store = `conformance-${process.pid}-${++counter}-${randomBytes(4).toString('hex')}`;
    stores.push(store);
    return open(store);
  },
  async createPeerDriver(d) {
    const store = storeOf.get(d);
    if (store === undefined) throw new Error('not a driver of this harness');
    return open(store);
  },
  topicOptions: (n) => ({ num_partitions: n }),
  topicName: (prefix) => `${prefix}-${++counter}`,
  async cleanup() {
    // empty the shared stores so their memory can be reclaimed
    for (const store of stores.splice(0)) {
      const d = await Driver.create('memory', { store });
      for (const name of (await d.listTopics()).keys()) await d.deleteTopic(name);
      await d.close();
    }
  },
  supportsHeaders: true,
  duplicateTopicMessage: (name) => `Topic already exists: ${name}`,
});
