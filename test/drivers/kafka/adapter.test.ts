/**
 * The @platformatic/kafka adapter (src/drivers/kafka/adapter.ts) where it guards the library: listOffsets waits for
 * partition leaders instead of letting the library look up an undefined broker (leader -1 during an election, as
 * right after a broker comes back). The library's Admin is replaced by a stub; no broker is needed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { platformaticClients } from '../../../src/drivers/kafka/adapter.js';
import type { ConnectionSettings } from '../../../src/drivers/kafka/options.js';
import type { KafkaClientError } from '../../../src/drivers/kafka/client-errors.js';

const conn: ConnectionSettings = {
  clientId: 'adapter-test',
  brokers: ['127.0.0.1:1'],
  tls: undefined,
  sasl: undefined,
  connectTimeoutMs: 1000,
  requestTimeoutMs: 300,
  retries: 0,
  retryDelayMs: 10,
  metadataMaxAgeMs: 1000,
};

/** An Admin stand-in: metadata whose partition leaders are -1 for the first `leaderless` calls. */
function stubAdmin(leaderless: number) {
  const calls = { metadata: 0, forced: 0, listOffsets: 0 };
  return {
    calls,
    metadata: async (o: { topics: string[]; forceUpdate?: boolean }) => {
      calls.metadata++;
      if (o.forceUpdate === true) calls.forced++;
      const leader = calls.metadata <= leaderless ? -1 : 1;
      return {
        brokers: new Map([[1, { host: '127.0.0.1', port: 1 }]]),
        topics: new Map([['t', { partitionsCount: 2, partitions: [{ leader }, { leader }] }]]),
      };
    },
    listOffsets: async () => {
      calls.listOffsets++;
      return [{ name: 't', partitions: [{ partitionIndex: 0, offset: 5n }, { partitionIndex: 1, offset: 7n }] }];
    },
    clearMetadata: () => undefined,
    close: async () => undefined,
  };
}

describe('kafka adapter: listOffsets and partitions without a leader', () => {
  it('waits until every partition has a leader (forcing metadata refreshes), then lists the offsets', { timeout: 5000 }, async () => {
    const fetcher = platformaticClients.fetcher(conn);
    const admin = stubAdmin(2);
    (fetcher as unknown as { admin: unknown }).admin = admin;
    try {
      const offsets = await fetcher.listOffsets('t', [0, 1], 'latest', 'read_uncommitted');
      assert.deepEqual([...offsets], [[0, 5n], [1, 7n]]);
      assert.equal(admin.calls.metadata, 3);
      assert.equal(admin.calls.forced, 2, 'each retry asks the cluster again');
      assert.equal(admin.calls.listOffsets, 1, 'the library is only called once the leaders are known');
    } finally {
      await fetcher.close();
    }
  });

  it('a partition that stays without a leader: a retriable LEADER_NOT_AVAILABLE after request.timeout.ms, no TypeError', { timeout: 5000 }, async () => {
    const fetcher = platformaticClients.fetcher(conn);
    const admin = stubAdmin(Infinity);
    (fetcher as unknown as { admin: unknown }).admin = admin;
    const started = performance.now();
    try {
      await assert.rejects(fetcher.listOffsets('t', [1], 'earliest', 'read_uncommitted'), (e: unknown) => {
        const err = e as KafkaClientError;
        assert.equal(err.name, 'KafkaClientError');
        assert.match(err.message, /No leader for t partition\(s\) 1/);
        assert.deepEqual(err.apiIds, ['LEADER_NOT_AVAILABLE']);
        assert.equal(err.retriable, true);
        return true;
      });
      const waited = performance.now() - started;
      assert.ok(waited >= 250 && waited < 3000, `gave up after ${waited.toFixed(0)} ms (request.timeout.ms 300)`);
      assert.equal(admin.calls.listOffsets, 0);
    } finally {
      await fetcher.close();
    }
  });
});
