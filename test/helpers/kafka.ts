/**
 * The Kafka test contract: integration tests read `DIASPORA_KAFKA_BOOTSTRAP` (PLAINTEXT host:port)
 * and `DIASPORA_KAFKA_ENDPOINTS` (endpoints.json of `scripts/kafka.sh start --mode secure`).
 * Without them the Kafka suites (and, without usable endpoints, the secure-listener tests) skip with
 * one message per run — except under `CI=true`, where they fail (dependencies.md §5).
 *
 * "Once per run": scripts/run-tests.mjs sets `DIASPORA_TEST_ANNOUNCE_DIR` to a directory of its own;
 * a message is printed by the first test process that creates its marker file there (the runner
 * creates the marker of the missing-broker message when it printed its own reason). Without that
 * variable (a test file run directly) a message is printed once per process.
 */
import { describe, it, type TestOptions } from 'node:test';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
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
  plain?: { username: string; password: string; mechanisms: string[] };
  [key: string]: unknown;
}

export interface KafkaEnv {
  bootstrap: string;
  /** The parsed endpoints.json, when DIASPORA_KAFKA_ENDPOINTS is set and readable. */
  endpoints: KafkaEndpoints | undefined;
  /** Why `endpoints` is undefined: not set, or its path and the read / parse error ('' when loaded). */
  endpointsProblem: string;
}

export const KAFKA_SKIP_MESSAGE = 'Kafka integration tests skipped: DIASPORA_KAFKA_BOOTSTRAP is not set (run scripts/kafka.sh or npm test)';

let cached: KafkaEnv | undefined | null = null;

export function kafkaEnv(): KafkaEnv | undefined {
  if (cached !== null) return cached;
  const bootstrap = process.env['DIASPORA_KAFKA_BOOTSTRAP'];
  if (bootstrap === undefined || bootstrap.trim() === '') return (cached = undefined);
  const { endpoints, problem } = readEndpoints(process.env['DIASPORA_KAFKA_ENDPOINTS']);
  return (cached = { bootstrap: bootstrap.trim(), endpoints, endpointsProblem: problem });
}

function readEndpoints(path: string | undefined): { endpoints: KafkaEndpoints | undefined; problem: string } {
  if (path === undefined || path === '') {
    return { endpoints: undefined, problem: 'DIASPORA_KAFKA_ENDPOINTS is not set (the endpoints.json of scripts/kafka.sh start --mode secure)' };
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { endpoints: undefined, problem: `cannot read DIASPORA_KAFKA_ENDPOINTS ${path}: ${(err as Error).message}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { endpoints: undefined, problem: `DIASPORA_KAFKA_ENDPOINTS ${path} is not valid JSON: ${(err as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { endpoints: undefined, problem: `DIASPORA_KAFKA_ENDPOINTS ${path} is not a JSON object` };
  }
  return { endpoints: value as KafkaEndpoints, problem: '' };
}

const printed = new Set<string>();

/**
 * Prints `message` once per test run (see the file comment); `key` names its marker file in
 * DIASPORA_TEST_ANNOUNCE_DIR (scripts/run-tests.mjs creates `kafka-skip` itself).
 */
export function announceOnce(key: string, message: string): void {
  if (printed.has(key)) return;
  printed.add(key);
  const dir = process.env['DIASPORA_TEST_ANNOUNCE_DIR'];
  if (dir !== undefined && dir !== '') {
    try {
      closeSync(openSync(join(dir, key), 'wx'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return; // another test process (or the runner) printed it
      // the directory is gone or unwritable: print rather than stay silent
    }
  }
  console.log(message);
}

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
  announceOnce('kafka-skip', KAFKA_SKIP_MESSAGE);
}

/** Keys of endpoints.json a secure-listener test can need. */
export type SecureKey = 'SASL_SSL' | 'SASL_PLAINTEXT' | 'SSL' | 'ca_pem' | 'client_pem' | 'client_key' | 'scram' | 'plain';

const SECURE_KEYS: readonly SecureKey[] = ['SASL_SSL', 'SASL_PLAINTEXT', 'SSL', 'ca_pem', 'client_pem', 'client_key', 'scram', 'plain'];

/** endpoints.json as seen by a secure-listener test: the keys it declared are present. */
export type SecureEndpoints = KafkaEndpoints & Required<Pick<KafkaEndpoints, SecureKey>>;

/** Why `env` cannot run a test needing `needs` of endpoints.json ('' when it can). */
export function secureGap(env: KafkaEnv, needs: readonly SecureKey[]): string {
  const ep = env.endpoints;
  if (ep === undefined) return env.endpointsProblem;
  if (needs.every((k) => ep[k] !== undefined)) return '';
  // every missing key, not only this test's: the same reason for all tests, printed once
  const missing = SECURE_KEYS.filter((k) => ep[k] === undefined);
  return (
    `DIASPORA_KAFKA_ENDPOINTS ${process.env['DIASPORA_KAFKA_ENDPOINTS'] ?? ''} does not describe a secure-mode broker ` +
    `(no ${missing.join(', ')}; scripts/kafka.sh start --mode secure writes them)`
  );
}

/**
 * A test of the secure listeners (`it`, under the current describe): runs `fn` with the endpoints
 * when endpoints.json has `needs`; otherwise a failing test under CI=true (the secure-listener
 * tests must run in CI), else a skipped one with the reason printed once per run.
 */
export function secureTest(env: KafkaEnv, name: string, options: TestOptions, needs: readonly SecureKey[], fn: (ep: SecureEndpoints) => Promise<void>): void {
  const gap = secureGap(env, needs);
  if (gap === '') {
    const ep = env.endpoints as SecureEndpoints;
    it(name, options, () => fn(ep));
    return;
  }
  if (process.env['CI'] === 'true') {
    it(name, { ...options, timeout: 1000 }, () => {
      throw new Error(`${gap}: under CI=true the Kafka secure-listener tests must run (set DIASPORA_KAFKA_ENDPOINTS to the endpoints.json of scripts/kafka.sh start --mode secure)`);
    });
    return;
  }
  const message = `Kafka secure-listener tests skipped: ${gap}`;
  announceOnce(`kafka-secure-${createHash('sha256').update(message).digest('hex').slice(0, 16)}`, message);
  it(name, { ...options, skip: gap }, () => undefined);
}

/** A unique name for a topic or group: `<prefix>-<pid>-<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(5).toString('hex')}`;
}

export interface OwnBrokerOptions {
  /**
   * Advertise `PLAINTEXT://127.0.0.1:<advertisedPort>` instead of the port the broker listens on
   * (scripts/kafka.sh's KAFKA_ADVERTISED_PORT): clients bootstrap from, and then connect to, that
   * port — e.g. a test's proxy forwarding to `listening`.
   */
  advertisedPort?: number;
}

/**
 * A broker of a test's own (scripts/kafka.sh, plain mode, in a temporary directory), for fault
 * tests that freeze, kill or restart it without disturbing the shared one.
 */
export class OwnBroker {
  readonly dir = mkdtempSync(join(tmpdir(), 'diaspora-own-broker-'));
  pid = NaN;
  /** The address clients bootstrap from (the advertised one). */
  bootstrap = '';
  /** Where the broker listens: `bootstrap`, unless `advertisedPort` was given. */
  listening = '';
  /** Why start() failed ('' when running). */
  error = '';

  constructor(private readonly options: OwnBrokerOptions = {}) {}

  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, KAFKA_DATA_DIR: this.dir };
    delete env['KAFKA_ADVERTISED_PORT'];
    if (this.options.advertisedPort !== undefined) env['KAFKA_ADVERTISED_PORT'] = String(this.options.advertisedPort);
    return env;
  }

  private run(args: string[], timeout: number): SpawnSyncReturns<string> {
    return spawnSync('bash', [OWN_BROKER_SCRIPT, ...args, '--mode', 'plain'], { env: this.env(), encoding: 'utf8', timeout });
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
    const lines = (r.stdout ?? '').trim().split('\n');
    const bootstrap = lines[lines.length - 1] ?? '';
    // advertised elsewhere: the line before the bootstrap says where the broker listens
    const listening = lines.find((l) => l.startsWith('LISTENING='))?.slice('LISTENING='.length) ?? bootstrap;
    const adv = this.options.advertisedPort;
    const addresses = /^127\.0\.0\.1:\d+$/.test(bootstrap) && /^127\.0\.0\.1:\d+$/.test(listening) && (adv === undefined ? listening === bootstrap : bootstrap === `127.0.0.1:${adv}` && listening !== bootstrap);
    if (r.status === 0 && Number.isInteger(this.pid) && this.pid > 0 && addresses) {
      this.bootstrap = bootstrap;
      this.listening = listening;
      return true;
    }
    this.error = `scripts/kafka.sh start --mode plain failed (exit ${r.status}, pid ${this.pid}, bootstrap ${bootstrap}, listening ${listening})\n${r.stderr}`;
    return false;
  }

  /** Stops the broker (SIGKILL with `kill`: a crash) and starts it again on the same data and port. */
  restart(kill: boolean): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const args = [OWN_BROKER_SCRIPT, 'restart', '--mode', 'plain', ...(kill ? ['--kill'] : [])];
      const child = spawn('bash', args, { env: this.env(), stdio: ['ignore', 'ignore', 'pipe'] });
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

/**
 * A record value in the octopus layout (kafka-octopus.md §5) holding `{"seq":<seq>}` as metadata and no data, for
 * writing with another client.
 */
export function octopusValue(seq: number): Buffer {
  const text = Buffer.from(JSON.stringify({ seq }));
  const v = Buffer.alloc(24 + text.length);
  v.writeBigUInt64LE(BigInt(8 + text.length), 0);
  v.writeBigUInt64LE(BigInt(text.length), 16);
  text.copy(v, 24);
  return v;
}

/**
 * Another client (kafkajs) writes events `seqs` to `topic` in one committed transaction: the partition then ends with
 * the transaction's commit marker, an offset no event has.
 */
export async function writeCommittedTransaction(bootstrap: string, topic: string, seqs: readonly number[]): Promise<void> {
  const kafka = new kafkajs.Kafka({ brokers: [bootstrap], clientId: 'diaspora-tests-tx', logLevel: kafkajs.logLevel.NOTHING });
  const tp = kafka.producer({ transactionalId: uniqueName('tx'), idempotent: true, maxInFlightRequests: 1 });
  await tp.connect();
  try {
    const tx = await tp.transaction();
    await tx.send({ topic, messages: seqs.map((seq) => ({ value: octopusValue(seq) })) });
    await tx.commit();
  } finally {
    await tp.disconnect();
  }
}
