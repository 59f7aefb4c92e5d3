/**
 * The forward daemon's HTTP endpoint (src/forward/http.ts) on its own: a failing scrape answers
 * 500 and leaves the server (and the process) running.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Gauge } from 'prom-client';
import { startHttpServer } from '../../src/forward/http.js';
import { ForwardMetrics } from '../../src/forward/metrics.js';
import { httpGet } from '../helpers/http.js';
import { unhandledRejectionsDuring } from '../helpers/unhandled.js';


describe('forward http endpoint', () => {
  it('a /metrics scrape that fails answers 500; the server keeps answering', { timeout: 10_000 }, async () => {
    const metrics = new ForwardMetrics(false);
    let failing = true;
    new Gauge({
      name: 'test_collect_fails',
      help: 'a gauge whose collection fails',
      registers: [metrics.registry],
      collect() {
        if (failing) throw new Error('collection failed');
        this.set(1);
      },
    });
    const server = await startHttpServer('127.0.0.1:0', metrics, () => ({ p: 'running' }));
    try {
      const port = (server.address() as AddressInfo).port;
      let failed: { status: number; body: string } | undefined;
      const unhandled = await unhandledRejectionsDuring(async () => {
        failed = await httpGet(port, '/metrics');
      });
      assert.deepEqual(unhandled.map(String), []);
      assert.equal(failed?.status, 500);
      assert.equal((await httpGet(port, '/healthz')).status, 200);
      failing = false;
      const ok = await httpGet(port, '/metrics');
      assert.equal(ok.status, 200);
      assert.match(ok.body, /^test_collect_fails 1$/m);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
