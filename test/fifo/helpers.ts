/**
 * Helpers for the fifo daemon's integration tests: spawning `bin/diaspora-ctl fifo`, waiting for its log lines,
 * writing to FIFOs the way shell scripts do (`printf … > fifo`), reading consumer FIFOs with a non-blocking
 * descriptor (so the test decides exactly when its reader goes away), and reading topics with the library.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, lstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Driver } from '../../src/api/driver.js';
import type { Json } from '../../src/api/json.js';
import { Metadata } from '../../src/api/metadata.js';
import { BIN, CtlProcess, runCtl as cliRunCtl, sleep, tempDir as cliTempDir, waitFor as cliWaitFor } from '../helpers/cli.js';

export { BIN, sleep };

export function tempDir(prefix = 'fifo-test-'): { dir: string; cleanup: () => void } {
  return cliTempDir(prefix);
}

export function isFifo(path: string): boolean {
  try {
    return lstatSync(path).isFIFO();
  } catch {
    return false;
  }
}

/** Polls `cond` every 10 ms until it holds or `timeoutMs` passes; returns whether it held. */
export function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  return cliWaitFor(cond, timeoutMs, 10);
}

/** Runs `node bin/diaspora-ctl <args>` to completion. */
export async function runCtl(args: string[], cwd: string, timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await cliRunCtl(args, { cwd, timeoutMs });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** A running `diaspora-ctl fifo` process. */
export class Daemon extends CtlProcess {
  readonly startedAt = Date.now();

  constructor(args: string[], cwd: string) {
    super(['fifo', ...args], cwd);
  }

  /** The standard daemon on the files driver. */
  static files(root: string, control: string, cwd: string, extra: string[] = []): Daemon {
    return new Daemon(['--driver', 'files', '--driver.root_path', root, '--control-file', control, ...extra], cwd);
  }

  /** CPU time (user + system) consumed so far, in ms, from /proc/<pid>/stat. */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / clockTicks();
  }
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Writes `text` to `path` with a shell redirection (`printf '%s' text > path`), like a script would. */
export function shellWrite(path: string, text: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', 'printf "%s" "$1" > "$2"', 'sh', text, path], { timeout: timeoutMs }, (err) => (err === null ? resolve() : reject(err)));
  });
}

/** `echo '<line>' > ctl`. */
export function sendCommand(control: string, line: string): Promise<void> {
  return shellWrite(control, line + '\n');
}

/** Writes raw bytes with a shell redirection (`cat file > fifo` would be the same). */
export function shellWriteBytes(path: string, bytes: Buffer, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('sh', ['-c', 'cat > "$1"', 'sh', path], { timeout: timeoutMs, encoding: 'buffer' }, (err) =>
      err === null ? resolve() : reject(err),
    );
    child.stdin?.end(bytes);
  });
}

/**
 * Reader of a consumer FIFO through a non-blocking descriptor: opening never waits, and closing happens exactly
 * when the test says so (no read left pending in a thread).
 */
export class FifoReader {
  private fd: number | undefined;
  private buf = Buffer.alloc(0);

  constructor(readonly path: string) {
    this.fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  }

  private poll(): void {
    if (this.fd === undefined) return;
    const chunk = Buffer.allocUnsafe(65536);
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, chunk, 0, chunk.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return;
        throw err;
      }
      if (n === 0) return; // no writer (yet)
      this.buf = Buffer.concat([this.buf, chunk.subarray(0, n)]);
    }
  }

  /** Bytes received so far. */
  get received(): Buffer {
    this.poll();
    return this.buf;
  }

  /** Complete lines received so far. */
  lines(): string[] {
    const text = this.received.toString('utf8');
    const parts = text.split('\n');
    parts.pop();
    return parts;
  }

  /** Waits until at least `n` complete lines were received; returns all complete lines. */
  async readLines(n: number, timeoutMs = 5000): Promise<string[]> {
    const ok = await waitFor(() => this.lines().length >= n, timeoutMs);
    const lines = this.lines();
    if (!ok) throw new Error(`expected ${n} lines from ${this.path}, got ${lines.length}: ${JSON.stringify(lines)}`);
    return lines;
  }

  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}

/** Creates a topic through the library. */
export async function createTopic(root: string, name: string, options: Json = {}): Promise<void> {
  const driver = await Driver.create('files', { root_path: root });
  try {
    await driver.createTopic(name, { options });
  } finally {
    await driver.close();
  }
}

/** Pushes events through the library. */
export async function produce(root: string, topic: string, events: { metadata: Json; data?: Buffer }[]): Promise<void> {
  const driver = await Driver.create('files', { root_path: root });
  try {
    const t = await driver.openTopic(topic);
    const p = await t.producer();
    // wrapped, so that a JS string is the JSON string itself (push() would parse a bare string as JSON text)
    for (const e of events) void p.push(new Metadata(e.metadata), e.data);
    await p.flush();
    await p.close();
    await t.close();
  } finally {
    await driver.close();
  }
}

/**
 * Reads a topic from the beginning with an anonymous consumer until `n` events arrived (or `timeoutMs`), then
 * waits `settleMs` more to catch extra events. Returns metadata and data of everything read.
 */
export async function readTopic(
  root: string,
  topic: string,
  n: number,
  timeoutMs = 5000,
  settleMs = 200,
): Promise<{ metadata: Json; data: Buffer }[]> {
  const driver = await Driver.create('files', { root_path: root });
  const out: { metadata: Json; data: Buffer }[] = [];
  try {
    const t = await driver.openTopic(topic);
    const c = await t.consumer('', { startFrom: 'earliest' });
    const end = Date.now() + timeoutMs;
    while (out.length < n && Date.now() < end) {
      const e = await c.pull().wait(Math.max(1, end - Date.now()));
      if (e === undefined) break;
      out.push({ metadata: e.metadata.json, data: e.data.toBuffer() });
    }
    for (;;) {
      const e = await c.pull().wait(settleMs);
      if (e === undefined) break;
      out.push({ metadata: e.metadata.json, data: e.data.toBuffer() });
    }
    await c.close();
    await t.close();
  } finally {
    await driver.close();
  }
  return out;
}

export { existsSync, join };
