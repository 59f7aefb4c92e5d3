/**
 * The Kafka test contract: integration tests read `DIASPORA_KAFKA_BOOTSTRAP` (PLAINTEXT host:port)
 * and `DIASPORA_KAFKA_ENDPOINTS` (endpoints.json of `scripts/kafka.sh start --mode secure`).
 * Without them the Kafka suites skip with one message — except under `CI=true`, where a missing
 * broker is a failure (dependencies.md §5).
 */
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

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
