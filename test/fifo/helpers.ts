/**
 * Helpers for the fifo daemon's integration tests: spawning `bin/diaspora-ctl fifo`, waiting for its log lines,
 * writing to FIFOs the way shell scripts do (`printf … > fifo`), reading consumer FIFOs with a non-blocking
 * descriptor (so the test decides exactly when its reader goes away), and reading topics with the library.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, lstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Driver } from '../../src/api/driver.js';
import type { Json } from '../../src/api/json.js';
import { Metadata } from '../../src/api/metadata.js';
import { repoRoot } from '../helpers/fixtures.js';

export const BIN = join(repoRoot(), 'bin', 'diaspora-ctl');

export function tempDir(prefix = 'fifo-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function isFifo(path: string): boolean {
  try {
    return lstatSync(path).isFIFO();
  } catch {
    return false;
  }
}

/** Polls `cond` every 10 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(10);
  }
}

/** Runs `node bin/diaspora-ctl <args>` to completion. */
export function runCtl(args: string[], cwd: string, timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A running `diaspora-ctl fifo` process. */
export class Daemon {
  readonly child: ChildProcess;
  stderr = '';
  stdout = '';
  readonly startedAt = Date.now();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;

  constructor(args: string[], cwd: string) {
    this.child = spawn(process.execPath, [BIN, 'fifo', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    this.child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal, at: Date.now() };
        resolve(this.exitInfo);
      });
    });
  }

  /** The standard daemon on the files driver. */
  static files(root: string, control: string, cwd: string, extra: string[] = []): Daemon {
    return new Daemon(['--driver', 'files', '--driver.root_path', root, '--control-file', control, ...extra], cwd);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Log lines with their timestamp removed: `[info] Message`. */
  get logLines(): string[] {
    return this.stderr
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.replace(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] /, ''));
  }

  count(line: string): number {
    return this.logLines.filter((l) => l === line).length;
  }

  /** Waits until the log has `line` (exact, without timestamp) at least `times` times. */
  async waitForLog(line: string, timeoutMs = 5000, times = 1): Promise<void> {
    const ok = await waitFor(() => this.count(line) >= times || this.exitInfo !== undefined, timeoutMs);
    if (!ok || this.count(line) < times) {
      throw new Error(`log line not seen: ${JSON.stringify(line)} (x${times})\n--- log ---\n${this.stderr}`);
    }
  }

  async waitForLogMatching(re: RegExp, timeoutMs = 5000): Promise<string> {
    let found: string | undefined;
    await waitFor(() => (found = this.logLines.find((l) => re.test(l))) !== undefined || this.exitInfo !== undefined, timeoutMs);
    if (found === undefined) throw new Error(`log line not seen: ${String(re)}\n--- log ---\n${this.stderr}`);
    return found;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitInfo === undefined) process.kill(this.pid, sig);
  }

  /** Waits for the exit; rejects after `timeoutMs`. */
  async exit(timeoutMs = 6000): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`daemon did not exit within ${timeoutMs} ms\n--- log ---\n${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  /** SIGTERM and wait for the exit. */
  async stop(timeoutMs = 6000): Promise<{ code: number | null; elapsedMs: number }> {
    const t0 = Date.now();
    this.signal('SIGTERM');
    const info = await this.exit(timeoutMs);
    return { code: info.code, elapsedMs: info.at - t0 };
  }

  /** For `finally`: kills the process by its pid if it still runs. */
  kill(): void {
    if (this.exitInfo === undefined && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
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
