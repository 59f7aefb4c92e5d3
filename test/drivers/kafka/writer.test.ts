/** Event ids of a pushed batch from the first offsets of the produce batches it was split into. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventIds } from '../../../src/drivers/kafka/writer.js';

describe('kafka writer event ids', () => {
  it('chunks that follow each other give one range', { timeout: 5000 }, () => {
    assert.deepEqual(eventIds([{ base: 7n, count: 3 }]), { first: 7n });
    assert.deepEqual(eventIds([{ base: 7n, count: 3 }, { base: 10n, count: 2 }, { base: 12n, count: 1 }]), { first: 7n });
  });

  it('records of another producer between two chunks: one id per event', { timeout: 5000 }, () => {
    assert.deepEqual(eventIds([{ base: 7n, count: 2 }, { base: 20n, count: 3 }]), { ids: [7n, 8n, 20n, 21n, 22n] });
  });
});
