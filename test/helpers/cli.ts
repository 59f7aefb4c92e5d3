/**
 * Helpers for the end-to-end tests of `diaspora-ctl` (topic, produce/consume, forward): running
 * `node bin/diaspora-ctl …` as a child process in a temporary directory, reading its log lines, keeping a daemon
 * running, and creating / filling / reading files-driver topics with the library.
 *
 * Every child process started here is killed by its pid when a test ends (`finally`), and every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Driver } from '../../src/api/driver.js';
import type { Json } from '../../src/api/json.js';
import { Metadata } from '../../src/api/metadata.js';
import { repoRoot } from './fixtures.js';

export const ROOT = repoRoot();
export const BIN = join(ROOT, 'bin', 'diaspora-ctl');

/** Environment of the child processes: no colour, logs on stderr, no fault injection unless asked for. */
export function ctlEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env['DIASPORA_CTL_LOG_STDOUT'];
  delete env['DIASPORA_FAULT'];
  delete env['DIASPORA_FAULT_INJECTION'];
  return { ...env, ...extra };
}

export function tempDir(prefix = 'diaspora-cli-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every `everyMs` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  /** Written to stdin, which is then closed (default: stdin closed at once). */
  input?: string | Buffer;
  env?: Record<string, string>;
  timeoutMs?: number;
}

function killByPid(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Runs `node bin/diaspora-ctl <args>` to completion (killed by pid after `timeoutMs`, then rejected). */
export async function runCtl(args: string[], o: RunOptions): Promise<RunResult> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd, env: ctlEnv(o.env), stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  child.stdin.on('error', () => undefined);
  child.stdin.end(o.input ?? '');
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<RunResult>((resolve, reject) => {
      timer = setTimeout(() => {
        killByPid(child);
        reject(new Error(`diaspora-ctl ${args.join(' ')} did not exit within ${o.timeoutMs ?? 20_000} ms\n${Buffer.concat(err).toString()}`));
      }, o.timeoutMs ?? 20_000);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        const stdoutBytes = Buffer.concat(out);
        resolve({ code, signal, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: Buffer.concat(err).toString('utf8') });
      });
    });
  } finally {
    clearTimeout(timer);
    killByPid(child);
  }
}

const LOG_LINE = /^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\] \[(trace|debug|info|warning|error|critical)\] (.*)$/;

/**
 * The log lines of a stderr text with their timestamp removed (`[info] Message`). Lines that are not log lines
 * (e.g. `PARSE ERROR:`) are kept as they are.
 */
export function logLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = LOG_LINE.exec(l);
      return m === null ? l : `[${m[2]}] ${m[3]}`;
    });
}

/** Whether every non-empty line of `stderr` is a well-formed log line. */
export function allLogLines(stderr: string): boolean {
  return stderr.split('\n').every((l) => l === '' || LOG_LINE.test(l));
}

/** A long-running `diaspora-ctl` process (a daemon). */
export class CtlProcess {
  readonly child: ChildProcess;
  stderr = '';
  stdout = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;

  constructor(args: string[], cwd: string, env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: ctlEnv(env) });
    this.child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal, at: Date.now() };
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get logLines(): string[] {
    return logLines(this.stderr);
  }

  count(line: string): number {
    return this.logLines.filter((l) => l === line).length;
  }

  /** Waits until the log has `line` (exact, without timestamp) `times` times; throws with the log if not seen. */
  async waitForLog(line: string, timeoutMs = 10_000, times = 1): Promise<void> {
    const ok = await waitFor(() => this.count(line) >= times || this.exitInfo !== undefined, timeoutMs, 10);
    if (!ok || this.count(line) < times) {
      throw new Error(`log line not seen: ${JSON.stringify(line)} (x${times})\n--- log ---\n${this.stderr}`);
    }
  }

  /** Waits for a log line matching `re` and returns it; throws with the log if not seen. */
  async waitForLogMatching(re: RegExp, timeoutMs = 10_000): Promise<string> {
    let found: string | undefined;
    await waitFor(() => (found = this.logLines.find((l) => re.test(l))) !== undefined || this.exitInfo !== undefined, timeoutMs, 10);
    if (found === undefined) throw new Error(`log line not seen: ${String(re)}\n--- log ---\n${this.stderr}`);
    return found;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitInfo === undefined) process.kill(this.pid, sig);
  }

  /** Waits for the exit; rejects after `timeoutMs`. */
  async exit(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms\n--- log ---\n${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  /** SIGTERM, then waits for the exit. */
  async stop(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; elapsedMs: number }> {
    const t0 = Date.now();
    this.signal('SIGTERM');
    const info = await this.exit(timeoutMs);
    return { code: info.code, signal: info.signal, elapsedMs: info.at - t0 };
  }

  /** For `finally`: SIGKILL by pid if still running. */
  kill(): void {
    if (this.exitInfo === undefined) killByPid(this.child);
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Library access to files-driver topics

export async function withFiles<T>(root: string, fn: (d: Driver) => Promise<T>): Promise<T> {
  const driver = await Driver.create('files', { root_path: root });
  try {
    return await fn(driver);
  } finally {
    await driver.close();
  }
}

export async function createTopic(root: string, name: string, options: Json = {}): Promise<void> {
  await withFiles(root, (d) => d.createTopic(name, { options }));
}

export interface NewEvent {
  metadata: Json;
  data?: Buffer;
  partition?: number;
  headers?: Record<string, string>;
}

/** Pushes events through the library (a JS string is the JSON string itself). */
export async function produce(root: string, topic: string, events: readonly NewEvent[]): Promise<void> {
  await withFiles(root, async (d) => {
    const t = await d.openTopic(topic);
    const p = await t.producer();
    const futures = [];
    for (const e of events) {
      if (!p.hasCapacity()) await p.ready();
      futures.push(
        p.push(new Metadata(e.metadata), e.data, {
          ...(e.partition !== undefined ? { partition: e.partition } : {}),
          ...(e.headers !== undefined ? { headers: e.headers } : {}),
        }),
      );
    }
    await p.flush();
    for (const f of futures) await f.wait();
    await p.close();
    await t.close();
  });
}

export interface ReadEvent {
  partition: number;
  id: bigint;
  /** Canonical metadata text. */
  dump: string;
  json: Json;
  /** The metadata's bytes as stored (the files driver keeps them: never re-encoded). */
  stored: Buffer | undefined;
  data: Buffer;
  headers: Record<string, string>;
}

/** Number of events per partition (the partitions' ends). */
export async function partitionEnds(root: string, topic: string): Promise<Map<number, bigint>> {
  return withFiles(root, async (d) => {
    const t = await d.openTopic(topic);
    const c = await t.consumer('', { startFrom: 'earliest' });
    const ends = await c.endPositions();
    await c.close();
    await t.close();
    return ends;
  });
}

export async function countEvents(root: string, topic: string): Promise<number> {
  let n = 0n;
  for (const v of (await partitionEnds(root, topic)).values()) n += v;
  return Number(n);
}

/** Reads every event present (up to the ends seen at start), ordered by partition then id. */
export async function readAll(root: string, topic: string, timeoutMs = 10_000): Promise<ReadEvent[]> {
  return withFiles(root, async (d) => {
    const t = await d.openTopic(topic);
    const c = await t.consumer('', { startFrom: 'earliest' });
    const ends = await c.endPositions();
    let total = 0n;
    for (const v of ends.values()) total += v;
    const out: ReadEvent[] = [];
    const deadline = Date.now() + timeoutMs;
    while (BigInt(out.length) < total) {
      const e = await c.pull().wait(Math.max(1, deadline - Date.now()));
      if (e === undefined) throw new Error(`read ${out.length} of ${total} events of ${topic} before the time limit`);
      const stored = e.metadata.storedBytes();
      out.push({
        partition: e.partitionIndex,
        id: e.id,
        dump: e.metadata.dump(),
        json: e.metadata.json,
        stored: stored === undefined ? undefined : Buffer.from(stored),
        data: e.data.toBuffer(),
        headers: { ...e.headers },
      });
    }
    await c.close();
    await t.close();
    out.sort((a, b) => a.partition - b.partition || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  });
}

/**
 * The positions committed by consumer `name` (next id to read per partition), read without consuming anything:
 * a consumer opened with `startFrom: 'committed'`, closed without acknowledging.
 */
export async function committedPositions(root: string, topic: string, name: string): Promise<Map<number, bigint>> {
  return withFiles(root, async (d) => {
    const t = await d.openTopic(topic);
    const c = await t.consumer(name, { startFrom: 'committed' });
    const next = await c.nextPositions();
    await c.close();
    await t.close();
    return next;
  });
}
