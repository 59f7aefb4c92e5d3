/**
 * resetSocket(): a socket whose writable side has ended is destroyed, not reset — a reset there
 * leaves a process that never exits (Node bug, see reset.ts). The child processes below end a
 * connection and reset it in the same tick, then have nothing left to do: they must exit.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const helper = new URL('./reset.js', import.meta.url).href;

/** A child that connects to its own server, ends the connection (with `end`) and resets it with `reset` in the same tick; its exit status and output. */
function endThenReset(end: boolean, reset: string): { status: number | null; signal: string | null; stdout: string } {
  const script = `
    import net from 'node:net';
    import { resetSocket } from ${JSON.stringify(helper)};
    const server = net.createServer((s) => s.on('error', () => {}));
    server.listen(0, '127.0.0.1', () => {
      const c = net.connect(server.address().port, '127.0.0.1', () => {
        c.on('error', () => {});
        c.write('hello');
        setTimeout(() => {
          ${end ? 'c.end();' : ''}
          const rst = ${reset};
          server.close();
          console.log('rst=' + rst);
        }, 20);
      });
    });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
  return { status: r.status, signal: r.signal, stdout: r.stdout.trim() };
}

it('a socket reset after end() in the same tick: resetSocket() destroys it instead, and the process exits', () => {
  const r = endThenReset(true, 'resetSocket(c)');
  assert.deepEqual(r, { status: 0, signal: null, stdout: 'rst=false' });
});

it('an open socket is reset (RST): resetSocket() says so, and the process exits', () => {
  const r = endThenReset(false, 'resetSocket(c)');
  assert.deepEqual(r, { status: 0, signal: null, stdout: 'rst=true' });
});
