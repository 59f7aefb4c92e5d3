/**
 * The Kafka test contract: integration tests read `DIASPORA_KAFKA_BOOTSTRAP` (PLAINTEXT host:port)
 * and `DIASPORA_KAFKA_ENDPOINTS` (endpoints.json of `scripts/kafka.sh start --mode secure`).
 * Without them the Kafka suites skip with one message — except under `CI=true`, where a missing
 * broker is a failure (dependencies.md §5).
 */
import { describe, it } from 'node:test';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cli.js';

export interface KafkaEndpoints {
  bootstrap: string;
  PLAINTEXT?: string;
  SASL_SSL?: string;
  SASL_PLAINTEXT?: string;
  SSL?: string;
  ca_pem?: string;
  client_pem?: string;
  client_key?: string;
  scram?: { username: string; password: string; mechanisms: string[] };
  [key: string]: unknown;
}

export interface KafkaEnv {
  bootstrap: string;
  /** The parsed endpoints.json, when DIASPORA_KAFKA_ENDPOINTS is set and readable. */
  endpoints: KafkaEndpoints | undefined;
}

export const KAFKA_SKIP_MESSAGE = 'Kafka integration tests skipped: DIASPORA_KAFKA_BOOTSTRAP is not set (run scripts/kafka.sh or npm test)';

let cached: KafkaEnv | undefined | null = null;

export function kafkaEnv(): KafkaEnv | undefined {
  if (cached !== null) return cached;
  const bootstrap = process.env['DIASPORA_KAFKA_BOOTSTRAP'];
  if (bootstrap === undefined || bootstrap.trim() === '') return (cached = undefined);
  let endpoints: KafkaEndpoints | undefined;
  const path = process.env['DIASPORA_KAFKA_ENDPOINTS'];
  if (path !== undefined && path !== '') {
    try {
      endpoints = JSON.parse(readFileSync(path, 'utf8')) as KafkaEndpoints;
    } catch {
      endpoints = undefined;
    }
  }
  return (cached = { bootstrap: bootstrap.trim(), endpoints });
}

let announced = false;

/**
 * Registers `fn` as a describe block when a broker is configured; otherwise prints the skip
 * message once (outside CI) or registers a failing test (under CI=true).
 */
export function kafkaSuite(name: string, fn: (env: KafkaEnv) => void): void {
  const env = kafkaEnv();
  if (env !== undefined) {
    describe(name, () => fn(env));
    return;
  }
  if (process.env['CI'] === 'true') {
    describe(name, () => {
      it('needs a Kafka broker', { timeout: 1000 }, () => {
        throw new Error('DIASPORA_KAFKA_BOOTSTRAP is not set under CI=true: the Kafka integration tests must run in CI (scripts/kafka.sh)');
      });
    });
    return;
  }
  if (!announced) {
    announced = true;
    console.log(KAFKA_SKIP_MESSAGE);
  }
}

/** A unique name for a topic or group: `<prefix>-<pid>-<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(5).toString('hex')}`;
}

/**
 * A broker of a test's own (scripts/kafka.sh, plain mode, in a temporary directory), for fault
 * tests that freeze, kill or restart it without disturbing the shared one.
 */
export class OwnBroker {
  readonly dir = mkdtempSync(join(tmpdir(), 'diaspora-own-broker-'));
  pid = NaN;
  bootstrap = '';
  /** Why start() failed ('' when running). */
  error = '';

  private run(args: string[], timeout: number): SpawnSyncReturns<string> {
    return spawnSync('bash', [OWN_BROKER_SCRIPT, ...args, '--mode', 'plain'], { env: { ...process.env, KAFKA_DATA_DIR: this.dir }, encoding: 'utf8', timeout });
  }

  private readPid(): number {
    try {
      return Number(readFileSync(join(this.dir, 'broker.pid'), 'utf8').trim());
    } catch {
      return NaN;
    }
  }

  /** Starts the broker; true when it is ready (else `error` says why). */
  start(): boolean {
    const r = this.run(['start'], 120_000);
    this.pid = this.readPid();
    const bootstrap = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    if (r.status === 0 && Number.isInteger(this.pid) && this.pid > 0 && /^127\.0\.0\.1:\d+$/.test(bootstrap)) {
      this.bootstrap = bootstrap;
      return true;
    }
    this.error = `scripts/kafka.sh start --mode plain failed (exit ${r.status}, pid ${this.pid}, bootstrap ${bootstrap})\n${r.stderr}`;
    return false;
  }

  /** Stops the broker (SIGKILL with `kill`: a crash) and starts it again on the same data and port. */
  restart(kill: boolean): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const args = [OWN_BROKER_SCRIPT, 'restart', '--mode', 'plain', ...(kill ? ['--kill'] : [])];
      const child = spawn('bash', args, { env: { ...process.env, KAFKA_DATA_DIR: this.dir }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        this.pid = this.readPid();
        resolve({ code, stderr });
      });
    });
  }

  /** Resumes a frozen broker (if any), stops it and removes its data. */
  stop(): void {
    if (Number.isInteger(this.pid) && this.pid > 0) {
      try {
        process.kill(this.pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    this.run(['stop'], 60_000);
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(`${this.dir}.lock`, { force: true }); // scripts/kafka.sh's lock file beside the data directory
  }
}

const OWN_BROKER_SCRIPT = join(ROOT, 'scripts', 'kafka.sh');
