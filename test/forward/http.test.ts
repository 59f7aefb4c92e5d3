/**
 * The forward daemon's HTTP endpoint (src/forward/http.ts) on its own: a failing scrape answers
 * 500 and leaves the server (and the process) running.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge } from 'prom-client';
import { startHttpServer } from '../../src/forward/http.js';
import { ForwardMetrics } from '../../src/forward/metrics.js';
import { unhandledRejectionsDuring } from '../helpers/unhandled.js';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

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
        failed = await get(port, '/metrics');
      });
      assert.deepEqual(unhandled.map(String), []);
      assert.equal(failed?.status, 500);
      assert.equal((await get(port, '/healthz')).status, 200);
      failing = false;
      const ok = await get(port, '/metrics');
      assert.equal(ok.status, 200);
      assert.match(ok.body, /^test_collect_fails 1$/m);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
