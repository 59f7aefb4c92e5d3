/** `/metrics`, `/healthz` and `/readyz` (forwarding.md §11), bound only to the configured address. */
import { createServer, type Server } from 'node:http';
import { log } from '../api/logging.js';
import type { ForwardMetrics } from './metrics.js';

export async function startHttpServer(
  listen: string,
  metrics: ForwardMetrics,
  states: () => Record<string, string>,
): Promise<Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i);
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        // collected before the status line goes out, so that a failure can still answer 500
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"ok"}');
      } else if (req.url === '/readyz') {
        const s = states();
        const ready = Object.values(s).every((x) => x === 'running' || x === 'stopped');
        res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(ready ? { status: 'ready' } : { policies: s }));
      } else {
        res.writeHead(404);
        res.end();
      }
    })().catch((err: unknown) => {
      log.warn(`HTTP ${req.url ?? ''} failed: ${err instanceof Error ? err.message : String(err)}`);
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(500);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // once listening, an error (e.g. EMFILE while accepting) is logged: the daemon's work goes on
  server.on('error', (err) => log.warn(`HTTP server on ${listen}: ${err.message}`));
  return server;
}
