/**
 * Helpers of the multi-process files-driver tests: starting child scripts (killed by pid in the
 * tests' `finally`), line-oriented waits on their stdout, raw parsing of partition files, hashing
 * a directory tree, and reading a whole partition back with the library.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Driver, type Json } from '../../../src/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));

export function childScript(name: string): string {
  return join(HERE, 'children', `${name}.js`);
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(join(tmpdir(), prefix));
}

export function rmDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Environment of children: no fault injection unless given. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['DIASPORA_FAULT'];
  delete env['DIASPORA_FAULT_INJECTION'];
  delete env['NODE_TEST_CONTEXT'];
  return { ...env, ...extra };
}

export class Child {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  private partial = '';
  private readonly listeners = new Set<() => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Receipt time (epoch ms, performance.timeOrigin + now) of each stdout line. */
  readonly lineTimes: number[] = [];

  constructor(script: string, args: string[], o: { env?: Record<string, string>; cwd?: string } = {}) {
    this.proc = spawn(process.execPath, [childScript(script), ...args], {
      cwd: o.cwd ?? process.cwd(),
      env: childEnv(o.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stdout?.setEncoding('utf8');
    this.proc.stdout?.on('data', (s: string) => {
      const now = performance.timeOrigin + performance.now();
      const parts = (this.partial + s).split('\n');
      this.partial = parts.pop() as string;
      for (const p of parts) {
        this.lines.push(p);
        this.lineTimes.push(now);
      }
      for (const l of [...this.listeners]) l();
    });
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stderr?.on('data', (s: string) => (this.stderr += s));
    this.proc.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        for (const l of [...this.listeners]) l();
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Waits until a stdout line satisfies `pred` (returns it), or throws after `timeoutMs` / on exit. */
  async waitLine(pred: (l: string) => boolean, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(pred);
      if (found !== undefined) return found;
      if (!this.running) throw new Error(`child exited (code ${this.proc.exitCode}, signal ${this.proc.signalCode}) before the expected line; stdout=${JSON.stringify(this.lines)} stderr=${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a line; stdout=${JSON.stringify(this.lines)} stderr=${this.stderr}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.listeners.delete(done);
          resolve();
        };
        const t = setTimeout(done, left);
        this.listeners.add(done);
      });
    }
  }

  /** Waits for exit, bounded (throws on timeout). */
  async waitExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`child did not exit within ${timeoutMs} ms; stdout=${JSON.stringify(this.lines)} stderr=${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  send(line: string): void {
    this.proc.stdin?.write(line + '\n');
  }

  /** SIGKILL by pid when still running (used in `finally`). */
  kill(): void {
    if (this.proc.pid !== undefined && this.running) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** JSON lines printed by the `ops` child, by step. */
export function opsResults(c: Child): Record<string, unknown>[] {
  return c.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface IndexEntry {
  mo: number;
  ms: number;
  dof: number;
  ds: number;
}

export function u64(b: Buffer, pos: number): number {
  return Number(b.readBigUInt64LE(pos));
}

/** Complete records of an index file. */
export function readIndex(path: string): IndexEntry[] {
  const b = fs.existsSync(path) ? fs.readFileSync(path) : Buffer.alloc(0);
  const out: IndexEntry[] = [];
  for (let p = 0; p + 32 <= b.length; p += 32) out.push({ mo: u64(b, p), ms: u64(b, p + 8), dof: u64(b, p + 16), ds: u64(b, p + 24) });
  return out;
}

export interface HeadersRec {
  id: number;
  mo: number;
  headers: Record<string, string>;
}

/** Records of a headers file; `tail` = bytes of a partial trailing record. */
export function readHeadersFile(path: string): { records: HeadersRec[]; tail: number } {
  const b = fs.existsSync(path) ? fs.readFileSync(path) : Buffer.alloc(0);
  const records: HeadersRec[] = [];
  let p = 0;
  while (p + 20 <= b.length) {
    const len = b.readUInt32LE(p + 16);
    if (p + 20 + len > b.length) break;
    records.push({ id: u64(b, p), mo: u64(b, p + 8), headers: JSON.parse(b.toString('utf8', p + 20, p + 20 + len)) as Record<string, string> });
    p += 20 + len;
  }
  return { records, tail: b.length - p };
}

export function fileSize(path: string): number {
  try {
    return fs.statSync(path).size;
  } catch {
    return 0;
  }
}

/** Relative path → sha256 (directories as "dir") of everything under `dir`. */
export function hashTree(dir: string, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of fs.readdirSync(dir).sort()) {
    const p = join(dir, name);
    const rel = prefix + name;
    if (fs.statSync(p).isDirectory()) {
      out.set(rel + '/', 'dir');
      for (const [k, v] of hashTree(p, rel + '/')) out.set(k, v);
    } else out.set(rel, createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
  }
  return out;
}

export interface ReadEvent {
  partition: number;
  id: number;
  metadata: Json;
  data: Buffer;
  headers: Record<string, string>;
}

/**
 * Reads events of a topic from the beginning with a fresh driver: `expected` pulls (each bounded by
 * `pullTimeoutMs`), then one more pull that must time out after `extraMs` (reported as `extra`).
 */
export async function readTopic(
  root: string,
  topic: string,
  expected: number,
  o: { pullTimeoutMs?: number; extraMs?: number } = {},
): Promise<{ events: ReadEvent[]; extra: ReadEvent | undefined }> {
  const driver = await Driver.create('files', { root_path: root });
  try {
    const h = await driver.openTopic(topic);
    const c = await h.consumer('', { startFrom: 'earliest' });
    const events: ReadEvent[] = [];
    const conv = (e: { partitionIndex: number; id: bigint; metadata: { json: Json }; data: { toBuffer(): Buffer }; headers: Readonly<Record<string, string>> }): ReadEvent => ({
      partition: e.partitionIndex,
      id: Number(e.id),
      metadata: e.metadata.json,
      data: Buffer.from(e.data.toBuffer()),
      headers: { ...e.headers },
    });
    for (let i = 0; i < expected; i++) {
      const e = await c.pull().wait(o.pullTimeoutMs ?? 10_000);
      if (e === undefined) break;
      events.push(conv(e));
    }
    let extra: ReadEvent | undefined;
    if ((o.extraMs ?? 0) > 0) {
      const e = await c.pull().wait(o.extraMs);
      if (e !== undefined) extra = conv(e);
    }
    await c.close();
    await h.close();
    return { events, extra };
  } finally {
    await driver.close();
  }
}

/**
 * Accounting of a partition's events against the expected (proc, seq) pairs: ids must be 0..n-1,
 * every expected pair delivered once, and each process's seqs in increasing id order.
 */
export function account(events: ReadEvent[], expected: Map<number, number[]>): { lost: number; duplicated: number; outOfOrder: number; denseIds: boolean; unexpected: number } {
  const seen = new Map<string, number>();
  let outOfOrder = 0;
  let unexpected = 0;
  const lastSeq = new Map<number, number>();
  const want = new Set<string>();
  for (const [p, seqs] of expected) for (const s of seqs) want.add(`${p}/${s}`);
  for (const e of events) {
    const md = e.metadata as { proc: number; seq: number };
    const key = `${md.proc}/${md.seq}`;
    if (!want.has(key)) unexpected++;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    const prev = lastSeq.get(md.proc);
    if (prev !== undefined && md.seq <= prev) outOfOrder++;
    lastSeq.set(md.proc, md.seq);
  }
  let lost = 0;
  let duplicated = 0;
  for (const k of want) if (!seen.has(k)) lost++;
  for (const n of seen.values()) if (n > 1) duplicated += n - 1;
  const denseIds = events.every((e, i) => e.id === i);
  return { lost, duplicated, outOfOrder, denseIds, unexpected };
}
