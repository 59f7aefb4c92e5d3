/**
 * The forward daemon's configuration (diaspora-ctl.md §8.1, forwarding.md §2). One schema table
 * per section drives validation, defaults and the key reference printed by `forward --help`.
 */
import { dirname, resolve } from 'node:path';
import { DiasporaError, ErrorCodes } from '../api/errors.js';
import { dumpCompact, isJsonObject, type Json, type JsonObject } from '../api/json.js';
import { loadForwardYamlFile, parseDuration } from './yaml-config.js';

/** A fatal configuration error, logged as `[error] Fatal error: <message>`. */
export class ForwardConfigError extends DiasporaError {
  constructor(message: string) {
    super(message, { code: ErrorCodes.CONFIG });
    this.name = 'ForwardConfigError';
  }
}

export type Delivery = 'at_least_once' | 'no_duplicates' | 'exactly_once';
export type PartitionMapping =
  | { kind: 'same' }
  | { kind: 'auto' }
  | { kind: 'fixed'; partition: number }
  | { kind: 'hash'; path: string[] };

export interface RetryConfig {
  minMs: number;
  maxMs: number;
  jitter: number;
}

export interface FilterConfig {
  module: string;
  export: string;
  config: Json;
}

export interface PolicyConfig {
  name: string;
  from: { driver: string; topic: string; ref: string };
  to: { driver: string; topic: string; ref: string };
  consumerName: string;
  start: 'committed' | 'earliest' | 'latest';
  partitions: PartitionMapping | undefined; // undefined = same when possible, else auto
  delivery: Delivery;
  batchSize: number;
  batchLingerMs: number;
  maxInFlight: number;
  bufferEvents: number;
  forwardData: boolean;
  dataSelector: string | undefined;
  dataAllocator: string | undefined;
  filters: FilterConfig[];
  filterErrors: 'halt' | 'drop';
  headers: boolean;
  dropOwnOrigin: boolean;
  stopAtEnd: boolean;
  retry: RetryConfig;
  checkpointIntervalMs: number;
  /** no_duplicates: destination events scanned back per partition at start (forwarding.md §5). */
  scanLimit: number;
}

export interface DriverConfig {
  type: string;
  options: JsonObject;
}

export interface ForwardConfig {
  path: string;
  dir: string;
  drivers: Map<string, DriverConfig>;
  policies: PolicyConfig[];
  httpListen: string | undefined;
  stateDir: string;
  shutdownTimeoutMs: number;
  logFormat: 'text' | 'json';
  /** Unknown keys found (warnings, errors with --check). */
  unknownKeys: string[];
}

interface KeyDoc {
  key: string;
  default: string;
  doc: string;
}

/** Policy keys (also accepted under `defaults`). */
export const POLICY_KEYS: readonly KeyDoc[] = [
  { key: 'name', default: '<from>-><to>', doc: 'policy id, metric label and default consumer name' },
  { key: 'from', default: 'required', doc: '"<driver>/<topic>" source (split at the first "/")' },
  { key: 'to', default: 'required', doc: '"<driver>/<topic>" destination' },
  { key: 'consumer_name', default: 'name', doc: 'source consumer whose positions are persisted' },
  { key: 'start', default: 'committed', doc: 'committed | earliest | latest' },
  { key: 'partitions', default: 'same if possible, else auto', doc: 'same | auto | fixed:<n> | hash:<metadata key path>' },
  { key: 'delivery', default: 'at_least_once', doc: 'at_least_once (no loss; events confirmed but not yet acknowledged may be forwarded again after a crash) | no_duplicates (no loss, no duplicate after a process crash: the destination tail is scanned at start; needs headers; a lease) | exactly_once (files destination with flush_behavior immediate|on_flush: no_duplicates under a lease on the destination too)' },
  { key: 'scan_limit', default: '100000', doc: 'no_duplicates: destination events scanned back per partition at start' },
  { key: 'batch_size', default: '1000', doc: 'events per destination batch' },
  { key: 'batch_linger', default: '20ms', doc: 'longest wait to fill a batch' },
  { key: 'max_in_flight', default: '4', doc: 'destination batches in flight' },
  { key: 'buffer_events', default: '10000', doc: 'bound of events between stages' },
  { key: 'forward_data', default: 'true', doc: 'forward event data (false: metadata only)' },
  { key: 'data_selector', default: '-', doc: '"<module.js>:<export>" returning a DataSelector' },
  { key: 'data_allocator', default: '-', doc: '"<module.js>:<export>" returning a DataAllocator' },
  { key: 'filters', default: '[]', doc: 'list of {module, export?, config?} JavaScript filters' },
  { key: 'filter_errors', default: 'halt', doc: 'halt | drop: what to do when a filter keeps throwing' },
  { key: 'headers', default: 'true', doc: 'write provenance headers (diaspora-src, diaspora-policy, diaspora-ts)' },
  { key: 'drop_own_origin', default: 'true', doc: 'drop events that came from the destination (loop prevention)' },
  { key: 'stop_at_end', default: 'false', doc: 'stop once the source end seen at start is reached' },
  { key: 'retry', default: '{min: 500ms, max: 30s, jitter: 0.2}', doc: 'exponential backoff of retried steps' },
  { key: 'checkpoint', default: '{interval: 1s}', doc: 'how often source positions are persisted' },
];

export const DAEMON_KEYS: readonly KeyDoc[] = [
  { key: 'drivers', default: 'required', doc: 'mapping name -> {type, options}' },
  { key: 'forward', default: 'required', doc: 'list of policies' },
  { key: 'http', default: '-', doc: '{listen: "127.0.0.1:9464"} serves /metrics, /healthz, /readyz' },
  { key: 'state_dir', default: '<config dir>/.diaspora-forward', doc: 'daemon state' },
  { key: 'shutdown_timeout', default: '5s', doc: 'drain deadline on SIGINT/SIGTERM' },
  { key: 'log_format', default: 'text', doc: 'text | json' },
  { key: 'defaults', default: '-', doc: 'default values of policy keys' },
];

/** The key reference printed by `forward --help`. */
export function configReference(): string {
  const fmt = (k: KeyDoc): string => `  ${k.key.padEnd(17)}${k.doc} (default: ${k.default})`;
  return ['Daemon keys:', ...DAEMON_KEYS.map(fmt), 'Policy keys (forward[] entries and defaults):', ...POLICY_KEYS.map(fmt)].join('\n');
}

function str(v: Json | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return dumpCompact(v);
  return String(v);
}

export function parseTopicRef(ref: string): { driver: string; topic: string; ref: string } {
  const i = ref.indexOf('/');
  if (i <= 0 || i === ref.length - 1) throw new ForwardConfigError(`Invalid topic reference '${ref}': expected 'driver/topic'`);
  return { driver: ref.slice(0, i), topic: ref.slice(i + 1), ref };
}

/**
 * An empty name would make the source consumer anonymous: no positions kept, so every restart
 * would forward everything again. Absent (undefined) stays absent: the default applies.
 */
function nonEmpty(v: string | undefined, what: string): string | undefined {
  if (v === '') throw new ForwardConfigError(`${what} must not be empty (an anonymous consumer keeps no positions)`);
  return v;
}

function positiveInt(v: Json | undefined, def: number, what: string): number {
  if (v === undefined || v === null) return def;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ForwardConfigError(`${what} must be an integer >= 1`);
  return n;
}

function bool(v: Json | undefined, def: boolean, what: string): boolean {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'boolean') throw new ForwardConfigError(`${what} must be a boolean`);
  return v;
}

function oneOf<T extends string>(v: Json | undefined, allowed: readonly T[], def: T, what: string): T {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ForwardConfigError(`${what} must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

function duration(v: Json | undefined, def: number, what: string): number {
  if (v === undefined || v === null) return def;
  try {
    return parseDuration(v, what);
  } catch (err) {
    throw new ForwardConfigError((err as Error).message);
  }
}

function parsePartitions(v: Json | undefined, what: string): PartitionMapping | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === 'same') return { kind: 'same' };
  if (v === 'auto') return { kind: 'auto' };
  if (typeof v === 'string' && /^fixed:\d+$/.test(v)) return { kind: 'fixed', partition: Number(v.slice(6)) };
  if (typeof v === 'string' && v.startsWith('hash:') && v.length > 5) return { kind: 'hash', path: v.slice(5).split('.') };
  throw new ForwardConfigError(`${what} must be same, auto, fixed:<n> or hash:<metadata key path>`);
}

function checkKeys(obj: JsonObject, allowed: readonly KeyDoc[], prefix: string, unknown: string[], extra: readonly string[] = []): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.some((d) => d.key === k) && !extra.includes(k)) unknown.push(prefix + k);
  }
}

/**
 * exactly_once (forwarding.md §5): into a files topic it is no_duplicates under a lease on the
 * destination too, with a flush behaviour that makes each confirmed batch durable (a machine crash
 * then loses nothing the scan relies on); into Kafka it needs transactions, not in this version.
 */
function checkExactlyOnce(p: PolicyConfig, dst: DriverConfig): void {
  if (dst.type !== 'files') {
    throw new ForwardConfigError(
      `Policy ${p.name}: delivery 'exactly_once' into a '${dst.type}' destination needs Kafka transactions, not supported by this version (use no_duplicates)`,
    );
  }
  const flush = dst.options['flush_behavior'];
  if (flush !== 'immediate' && flush !== 'on_flush') {
    throw new ForwardConfigError(
      `Policy ${p.name}: delivery 'exactly_once' into a files destination needs its driver's flush_behavior to be immediate or on_flush (got ${JSON.stringify(flush ?? 'buffered')})`,
    );
  }
}

/** The keys of the policy keys that are mappings (forwarding.md §2). */
// checkpoint.topic (forwarding.md §6) belongs to exactly_once into Kafka, which is refused at start: known, unused
const NESTED_KEYS: Readonly<Record<string, readonly string[]>> = { retry: ['min', 'max', 'jitter'], checkpoint: ['interval', 'topic'] };

/** Unknown keys inside the `retry` / `checkpoint` mappings of a policy or of `defaults` (typos like `retry.mn`). */
function checkNestedKeys(section: JsonObject, prefix: string, unknown: string[]): void {
  for (const [key, allowed] of Object.entries(NESTED_KEYS)) {
    const v = section[key];
    if (!isJsonObject(v)) continue;
    for (const k of Object.keys(v)) if (!allowed.includes(k)) unknown.push(`${prefix}${key}.${k}`);
  }
}

function parseRetry(v: Json | undefined, what: (k: string) => string): RetryConfig {
  const retry: RetryConfig = { minMs: 500, maxMs: 30_000, jitter: 0.2 };
  if (v === undefined || v === null) return retry;
  if (!isJsonObject(v)) throw new ForwardConfigError(`${what('retry')} must be a mapping`);
  retry.minMs = duration(v['min'], retry.minMs, what('retry.min'));
  retry.maxMs = duration(v['max'], retry.maxMs, what('retry.max'));
  const j = v['jitter'];
  if (j !== undefined && j !== null && (typeof j !== 'number' || j < 0 || j > 1)) throw new ForwardConfigError(`${what('retry.jitter')} must be a number in [0, 1]`);
  if (typeof j === 'number') retry.jitter = j;
  return retry;
}

function parsePolicy(raw: JsonObject, defaults: JsonObject, index: number, unknown: string[]): PolicyConfig {
  const get = (k: string): Json | undefined => (raw[k] !== undefined ? raw[k] : defaults[k]);
  checkKeys(raw, POLICY_KEYS, `forward[${index}].`, unknown);
  const fromS = str(raw['from']);
  const toS = str(raw['to']);
  if (Array.isArray(raw['from'])) {
    throw new ForwardConfigError(`forward[${index}]: source failover pools ('from' as a list) are not supported by this version`);
  }
  if (fromS === undefined || toS === undefined) throw new ForwardConfigError("forward entry missing 'from' or 'to' field");
  const from = parseTopicRef(fromS);
  const to = parseTopicRef(toS);
  const name = nonEmpty(str(raw['name']), `forward[${index}]: 'name'`) ?? `${from.ref}->${to.ref}`;
  const what = (k: string): string => `Policy ${name}: '${k}'`;
  checkNestedKeys(raw, `forward[${index}].`, unknown);
  const retry = parseRetry(get('retry'), what);
  const cp = get('checkpoint');
  if (cp !== undefined && cp !== null && !isJsonObject(cp)) throw new ForwardConfigError(`${what('checkpoint')} must be a mapping`);
  const checkpointIntervalMs = duration(cp?.['interval'], 1000, what('checkpoint.interval'));
  const delivery = oneOf(get('delivery'), ['at_least_once', 'no_duplicates', 'exactly_once'] as const, 'at_least_once', what('delivery'));
  const headers = bool(get('headers'), true, what('headers'));
  if (delivery !== 'at_least_once' && !headers) {
    throw new ForwardConfigError(`Policy ${name}: delivery '${delivery}' needs the provenance headers (headers: true): they are how a restart finds what was already forwarded`);
  }
  const filtersRaw = get('filters') ?? [];
  if (!Array.isArray(filtersRaw)) throw new ForwardConfigError(`${what('filters')} must be a list`);
  const filters: FilterConfig[] = filtersRaw.map((f, i) => {
    if (!isJsonObject(f) || typeof f['module'] !== 'string') throw new ForwardConfigError(`${what(`filters[${i}]`)} needs a 'module' string`);
    const exp = f['export'];
    if (exp !== undefined && typeof exp !== 'string') throw new ForwardConfigError(`${what(`filters[${i}].export`)} must be a string`);
    return { module: f['module'], export: exp ?? 'default', config: f['config'] ?? {} };
  });
  return {
    name,
    from,
    to,
    consumerName: nonEmpty(str(get('consumer_name')), what('consumer_name')) ?? name,
    start: oneOf(get('start'), ['committed', 'earliest', 'latest'] as const, 'committed', what('start')),
    partitions: parsePartitions(get('partitions'), what('partitions')),
    delivery,
    batchSize: positiveInt(get('batch_size'), 1000, what('batch_size')),
    batchLingerMs: duration(get('batch_linger'), 20, what('batch_linger')),
    maxInFlight: positiveInt(get('max_in_flight'), 4, what('max_in_flight')),
    bufferEvents: positiveInt(get('buffer_events'), 10_000, what('buffer_events')),
    forwardData: bool(get('forward_data'), true, what('forward_data')),
    dataSelector: str(get('data_selector')),
    dataAllocator: str(get('data_allocator')),
    filters,
    filterErrors: oneOf(get('filter_errors'), ['halt', 'drop'] as const, 'halt', what('filter_errors')),
    headers,
    dropOwnOrigin: bool(get('drop_own_origin'), true, what('drop_own_origin')),
    stopAtEnd: bool(get('stop_at_end'), false, what('stop_at_end')),
    retry,
    scanLimit: positiveInt(get('scan_limit'), 100_000, what('scan_limit')),
    checkpointIntervalMs,
  };
}

/** Reads and validates a configuration file. Errors are ForwardConfigError (fatal at start). */
export function loadForwardConfig(path: string): ForwardConfig {
  let doc: Json;
  try {
    doc = loadForwardYamlFile(path);
  } catch (err) {
    throw new ForwardConfigError((err as Error).message);
  }
  if (doc === null) doc = {};
  if (!isJsonObject(doc)) throw new ForwardConfigError('Failed to parse YAML config: the document must be a mapping');
  const unknownKeys: string[] = [];
  checkKeys(doc, DAEMON_KEYS, '', unknownKeys, ['sync']);
  const driversRaw = doc['drivers'];
  if (!isJsonObject(driversRaw)) throw new ForwardConfigError("Config missing 'drivers' section");
  const drivers = new Map<string, DriverConfig>();
  for (const [name, d] of Object.entries(driversRaw)) {
    if (!isJsonObject(d) || d['type'] === undefined || d['type'] === null) throw new ForwardConfigError(`Driver '${name}' missing required 'type' field`);
    const options = d['options'] ?? {};
    if (!isJsonObject(options)) throw new ForwardConfigError(`Driver '${name}': 'options' must be a mapping`);
    for (const k of Object.keys(d)) if (k !== 'type' && k !== 'options') unknownKeys.push(`drivers.${name}.${k}`);
    drivers.set(name, { type: str(d['type']) as string, options });
  }
  const fwd = doc['forward'];
  if (!Array.isArray(fwd)) throw new ForwardConfigError("Config missing 'forward' entries");
  const defaults = doc['defaults'] ?? {};
  if (!isJsonObject(defaults)) throw new ForwardConfigError("'defaults' must be a mapping");
  checkKeys(defaults, POLICY_KEYS, 'defaults.', unknownKeys);
  checkNestedKeys(defaults, 'defaults.', unknownKeys);
  const policies = fwd.map((p, i) => {
    if (!isJsonObject(p)) throw new ForwardConfigError("forward entry missing 'from' or 'to' field");
    return parsePolicy(p, defaults, i, unknownKeys);
  });
  const names = new Set<string>();
  for (const p of policies) {
    if (names.has(p.name)) throw new ForwardConfigError(`Duplicate policy name '${p.name}'`);
    names.add(p.name);
    for (const ref of [p.from, p.to]) if (!drivers.has(ref.driver)) throw new ForwardConfigError(`Unknown driver '${ref.driver}'`);
    if (p.delivery === 'exactly_once') checkExactlyOnce(p, drivers.get(p.to.driver) as DriverConfig);
  }
  if (Array.isArray(doc['sync']) && doc['sync'].length > 0) {
    throw new ForwardConfigError("'sync' groups are not supported by this version");
  }
  const http = doc['http'];
  let httpListen: string | undefined;
  if (http !== undefined && http !== null) {
    if (!isJsonObject(http) || (http['listen'] !== undefined && typeof http['listen'] !== 'string')) {
      throw new ForwardConfigError("'http' must be a mapping with a 'listen' string (host:port)");
    }
    httpListen = http['listen'] as string | undefined;
    if (httpListen !== undefined && !/^[^:]+:\d+$/.test(httpListen)) throw new ForwardConfigError(`Invalid http.listen '${httpListen}': expected host:port`);
  }
  const dir = dirname(resolve(path));
  const stateDir = str(doc['state_dir']);
  return {
    path,
    dir,
    drivers,
    policies,
    httpListen,
    stateDir: stateDir === undefined ? resolve(dir, '.diaspora-forward') : resolve(dir, stateDir),
    shutdownTimeoutMs: duration(doc['shutdown_timeout'], 5000, "'shutdown_timeout'"),
    logFormat: oneOf(doc['log_format'], ['text', 'json'] as const, 'text', "'log_format'"),
    unknownKeys,
  };
}
