/**
 * `loadForwardConfig` (diaspora-ctl.md §8.1, forwarding.md §2): the exact start-up error messages, YAML typing of
 * the reference keys, defaults and unknown keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCodes } from '../../src/api/errors.js';
import { ForwardConfigError, loadForwardConfig, parseTopicRef, type ForwardConfig } from '../../src/forward/config.js';
import { tempDir } from '../helpers/cli.js';

const T = { timeout: 10_000 };

const DRIVERS = 'drivers:\n  local: { type: files, options: { root_path: /tmp/x } }\n  remote: { type: files }\n';

function withConfig<R>(text: string, fn: (path: string, dir: string) => R): R {
  const { dir, cleanup } = tempDir('diaspora-fwd-config-');
  try {
    const p = join(dir, 'fwd.yaml');
    writeFileSync(p, text);
    return fn(p, dir);
  } finally {
    cleanup();
  }
}

function load(text: string): ForwardConfig {
  return withConfig(text, (p) => loadForwardConfig(p));
}

function fails(text: string, message: string | ((path: string) => string)): void {
  withConfig(text, (p) => {
    const expected = typeof message === 'string' ? message : message(p);
    assert.throws(
      () => loadForwardConfig(p),
      (err: unknown) => {
        assert.ok(err instanceof ForwardConfigError, `expected a ForwardConfigError, got ${String(err)}`);
        assert.equal(err.message, expected);
        assert.equal(err.code, ErrorCodes.CONFIG);
        return true;
      },
    );
  });
}

test('missing drivers section (absent, empty document, not a mapping)', T, () => {
  fails('forward: []\n', "Config missing 'drivers' section");
  fails('', "Config missing 'drivers' section");
  fails('drivers: [files]\nforward: []\n', "Config missing 'drivers' section");
  fails('drivers:\nforward: []\n', "Config missing 'drivers' section");
});

test('driver missing its type', T, () => {
  fails('drivers:\n  local: { options: { root_path: /x } }\nforward: []\n', "Driver 'local' missing required 'type' field");
  fails('drivers:\n  local:\nforward: []\n', "Driver 'local' missing required 'type' field");
  fails('drivers:\n  ok: { type: files }\n  bad: { type: ~ }\nforward: []\n', "Driver 'bad' missing required 'type' field");
});

test('missing forward entries (absent, not a list)', T, () => {
  fails(DRIVERS, "Config missing 'forward' entries");
  fails(DRIVERS + 'forward: { from: local/a, to: remote/b }\n', "Config missing 'forward' entries");
  fails(DRIVERS + 'forward:\n', "Config missing 'forward' entries");
});

test("forward entry missing 'from' or 'to'", T, () => {
  fails(DRIVERS + 'forward:\n  - from: local/a\n', "forward entry missing 'from' or 'to' field");
  fails(DRIVERS + 'forward:\n  - to: remote/b\n', "forward entry missing 'from' or 'to' field");
  fails(DRIVERS + 'forward:\n  - from: local/a\n    to: ~\n', "forward entry missing 'from' or 'to' field");
  fails(DRIVERS + 'forward:\n  - local/a\n', "forward entry missing 'from' or 'to' field");
});

test('invalid topic references', T, () => {
  for (const ref of ['nodriver', '/topic', 'local/', 'x']) {
    fails(DRIVERS + `forward:\n  - from: "${ref}"\n    to: remote/b\n`, `Invalid topic reference '${ref}': expected 'driver/topic'`);
  }
  fails(DRIVERS + 'forward:\n  - from: local/a\n    to: remote\n', "Invalid topic reference 'remote': expected 'driver/topic'");
  // split at the FIRST "/": the topic may contain slashes (the driver decides whether it is valid)
  assert.deepEqual(parseTopicRef('local/a/b'), { driver: 'local', topic: 'a/b', ref: 'local/a/b' });
});

test('unknown driver', T, () => {
  fails(DRIVERS + 'forward:\n  - from: nosuch/a\n    to: remote/b\n', "Unknown driver 'nosuch'");
  fails(DRIVERS + 'forward:\n  - from: local/a\n    to: other/b\n', "Unknown driver 'other'");
});

test('YAML syntax error with line:column; unreadable file', T, () => {
  fails(DRIVERS + 'forward:\n  - from: [local/a\n', (p) => `Failed to parse YAML config: ${p}:6:1: Flow sequence in block collection must be sufficiently indented and end with a ]`);
  fails('drivers:\n  a: 1\n  a: 2\n', (p) => `Failed to parse YAML config: ${p}:3:3: Map keys must be unique`);
  const { dir, cleanup } = tempDir('diaspora-fwd-config-');
  try {
    const missing = join(dir, 'missing.yaml');
    assert.throws(() => loadForwardConfig(missing), { message: `Failed to parse YAML config: cannot read ${missing}: No such file or directory` });
    mkdirSync(join(dir, 'sub.yaml'));
    assert.throws(() => loadForwardConfig(join(dir, 'sub.yaml')), { message: `Failed to parse YAML config: cannot read ${join(dir, 'sub.yaml')}: Is a directory` });
  } finally {
    cleanup();
  }
});

test('a YAML document that is not a mapping', T, () => {
  fails('- a\n- b\n', 'Failed to parse YAML config: the document must be a mapping');
});

test('quoted scalars stay strings ("123", "on"); plain ones are typed; type/from/to read as strings', T, () => {
  const cfg = load(
    [
      'drivers:',
      '  "123": { type: files, options: { root_path: "123", flag: "on", plain_flag: on, n: 42, f: 1.5, z: ~, s: 0x10 } }',
      '  yes: { type: files }',
      'forward:',
      '  - from: "123/on"',
      '    to: yes/456',
      '    name: "007"',
      '',
    ].join('\n'),
  );
  const d = cfg.drivers.get('123');
  assert.ok(d !== undefined);
  assert.equal(d.type, 'files');
  assert.deepEqual(d.options, { root_path: '123', flag: 'on', plain_flag: true, n: 42, f: 1.5, z: null, s: '0x10' });
  // keys are scalar text: the plain key `yes` is the driver named "yes"
  assert.ok(cfg.drivers.has('yes'));
  const p = cfg.policies[0];
  assert.ok(p !== undefined);
  assert.equal(p.name, '007');
  assert.deepEqual(p.from, { driver: '123', topic: 'on', ref: '123/on' });
  assert.deepEqual(p.to, { driver: 'yes', topic: '456', ref: 'yes/456' });
  assert.equal(p.consumerName, '007');
});

test('defaults of a reference-style policy', T, () => {
  const cfg = withConfig(DRIVERS + 'forward:\n  - from: local/src\n    to: remote/dst\n', (p, dir) => {
    const c = loadForwardConfig(p);
    assert.equal(c.dir, resolve(dir));
    assert.equal(c.stateDir, join(resolve(dir), '.diaspora-forward'));
    return c;
  });
  assert.equal(cfg.drivers.size, 2);
  assert.deepEqual(cfg.drivers.get('remote'), { type: 'files', options: {} });
  assert.deepEqual(cfg.drivers.get('local'), { type: 'files', options: { root_path: '/tmp/x' } });
  assert.equal(cfg.httpListen, undefined);
  assert.equal(cfg.shutdownTimeoutMs, 5000);
  assert.equal(cfg.logFormat, 'text');
  assert.deepEqual(cfg.unknownKeys, []);
  assert.equal(cfg.policies.length, 1);
  const p = cfg.policies[0];
  assert.ok(p !== undefined);
  assert.equal(p.name, 'local/src->remote/dst');
  assert.equal(p.consumerName, 'local/src->remote/dst');
  assert.equal(p.start, 'committed');
  assert.equal(p.partitions, undefined);
  assert.equal(p.delivery, 'at_least_once');
  assert.equal(p.batchSize, 1000);
  assert.equal(p.batchLingerMs, 20);
  assert.equal(p.maxInFlight, 4);
  assert.equal(p.bufferEvents, 10_000);
  assert.equal(p.forwardData, true);
  assert.equal(p.dataSelector, undefined);
  assert.equal(p.dataAllocator, undefined);
  assert.deepEqual(p.filters, []);
  assert.equal(p.filterErrors, 'halt');
  assert.equal(p.headers, true);
  assert.equal(p.dropOwnOrigin, true);
  assert.equal(p.stopAtEnd, false);
  assert.deepEqual(p.retry, { minMs: 500, maxMs: 30_000, jitter: 0.2 });
  assert.equal(p.checkpointIntervalMs, 1000);
});

test('an empty forward list is valid', T, () => {
  const cfg = load(DRIVERS + 'forward: []\n');
  assert.deepEqual(cfg.policies, []);
});

test('daemon keys, defaults section and policy overrides', T, () => {
  const cfg = withConfig(
    [
      DRIVERS,
      'http: { listen: "127.0.0.1:9464" }',
      'state_dir: state',
      'shutdown_timeout: 2s',
      'log_format: json',
      'defaults:',
      '  batch_size: 10',
      '  forward_data: false',
      '  headers: no',
      'forward:',
      '  - from: local/a',
      '    to: remote/b',
      '    batch_size: 20',
      '    partitions: fixed:1',
      '    data_selector: "./sel.js:make"',
      '    filters: [ { module: ./f.js, config: { x: 1 } } ]',
      '    checkpoint: { interval: 250ms }',
      '    retry: { min: 10ms, max: 1s, jitter: 0 }',
      '  - name: second',
      '    from: local/c',
      '    to: remote/d',
      '    partitions: hash:user.id',
      '    start: earliest',
      '    consumer_name: my-consumer',
      '',
    ].join('\n'),
    (p, dir) => {
      const c = loadForwardConfig(p);
      assert.equal(c.stateDir, join(resolve(dir), 'state'));
      return c;
    },
  );
  assert.equal(cfg.httpListen, '127.0.0.1:9464');
  assert.equal(cfg.shutdownTimeoutMs, 2000);
  assert.equal(cfg.logFormat, 'json');
  const [a, b] = cfg.policies;
  assert.ok(a !== undefined && b !== undefined);
  assert.equal(a.batchSize, 20);
  assert.equal(a.forwardData, false);
  assert.equal(a.headers, false);
  assert.deepEqual(a.partitions, { kind: 'fixed', partition: 1 });
  assert.equal(a.dataSelector, './sel.js:make');
  assert.deepEqual(a.filters, [{ module: './f.js', export: 'default', config: { x: 1 } }]);
  assert.equal(a.checkpointIntervalMs, 250);
  assert.deepEqual(a.retry, { minMs: 10, maxMs: 1000, jitter: 0 });
  assert.equal(b.name, 'second');
  assert.equal(b.batchSize, 10);
  assert.deepEqual(b.partitions, { kind: 'hash', path: ['user', 'id'] });
  assert.equal(b.start, 'earliest');
  assert.equal(b.consumerName, 'my-consumer');
  assert.deepEqual(cfg.unknownKeys, []);
});

test('unknown keys are collected (daemon, driver, policy, defaults); driver options are not checked', T, () => {
  const cfg = load(
    [
      'drivers:',
      '  local: { type: files, options: { anything: 1 }, typo: 2 }',
      'forward:',
      '  - from: local/a',
      '    to: local/b',
      '    batchsize: 5',
      'defaults: { strat: earliest }',
      'htp: { listen: x }',
      '',
    ].join('\n'),
  );
  assert.deepEqual([...cfg.unknownKeys].sort(), ['defaults.strat', 'drivers.local.typo', 'forward[0].batchsize', 'htp'].sort());
  assert.equal(cfg.policies[0]?.batchSize, 1000);
});

test('unknown keys inside retry and checkpoint are collected (policy and defaults); a non-mapping checkpoint is refused', T, () => {
  const cfg = load(
    DRIVERS +
      'defaults: { retry: { max: 2s, jiter: 0.5 } }\nforward:\n  - from: local/a\n    to: remote/b\n    retry: { mn: 1s, min: 200ms }\n    checkpoint: { intervall: 10ms, interval: 3s, topic: __diaspora_forward_checkpoints }\n',
  );
  assert.deepEqual([...cfg.unknownKeys].sort(), ['defaults.retry.jiter', 'forward[0].checkpoint.intervall', 'forward[0].retry.mn']);
  assert.deepEqual(cfg.policies[0]?.retry, { minMs: 200, maxMs: 30_000, jitter: 0.2 });
  assert.equal(cfg.policies[0]?.checkpointIntervalMs, 3000);
  const base = DRIVERS + 'forward:\n  - from: local/a\n    to: remote/b\n';
  const name = 'local/a->remote/b';
  fails(base + '    checkpoint: 5s\n', `Policy ${name}: 'checkpoint' must be a mapping`);
  fails(base + '    checkpoint: [ { interval: 5s } ]\n', `Policy ${name}: 'checkpoint' must be a mapping`);
  fails(base + '    retry: 5\n', `Policy ${name}: 'retry' must be a mapping`);
  fails(base + '    checkpoint: { interval: [1] }\n', `Invalid duration for Policy ${name}: 'checkpoint.interval': [1]`);
  fails(base + '    retry: { jitter: "0.5" }\n', `Policy ${name}: 'retry.jitter' must be a number in [0, 1]`);
  assert.equal(load(base + '    checkpoint: ~\n').policies[0]?.checkpointIntervalMs, 1000);
});

test('invalid policy values', T, () => {
  const base = DRIVERS + 'forward:\n  - from: local/a\n    to: remote/b\n';
  const name = 'local/a->remote/b';
  fails(base + '    batch_size: 0\n', `Policy ${name}: 'batch_size' must be an integer >= 1`);
  fails(base + '    forward_data: "yes"\n', `Policy ${name}: 'forward_data' must be a boolean`);
  fails(base + '    start: middle\n', `Policy ${name}: 'start' must be one of committed, earliest, latest`);
  fails(base + '    partitions: fixed:x\n', `Policy ${name}: 'partitions' must be same, auto, fixed:<n> or hash:<metadata key path>`);
  fails(base + '    batch_linger: 5 s\n', `Invalid duration for Policy ${name}: 'batch_linger': 5 s`);
  fails(base + '  - from: local/a\n    to: remote/b\n', `Duplicate policy name '${name}'`);
  fails(DRIVERS + 'http: { listen: "nohost" }\nforward: []\n', "Invalid http.listen 'nohost': expected host:port");
});

test('an empty name or consumer_name is refused: the source consumer would be anonymous, its positions never kept', T, () => {
  const base = DRIVERS + 'forward:\n  - from: local/a\n    to: remote/b\n';
  fails(base + '    name: ""\n', "forward[0]: 'name' must not be empty (an anonymous consumer keeps no positions)");
  fails(base + "    consumer_name: ''\n", "Policy local/a->remote/b: 'consumer_name' must not be empty (an anonymous consumer keeps no positions)");
  fails(DRIVERS + 'defaults: { consumer_name: "" }\nforward:\n  - { from: local/a, to: remote/b, name: p }\n', "Policy p: 'consumer_name' must not be empty (an anonymous consumer keeps no positions)");
  // absent or null: the default (the policy name)
  assert.equal(load(base + '    name: ~\n    consumer_name:\n').policies[0]?.consumerName, 'local/a->remote/b');
});

test('durations above the longest timer (2147483647 ms, ~24.8 days) are refused, naming the key and the limit', T, () => {
  const base = DRIVERS + 'forward:\n  - from: local/a\n    to: remote/b\n';
  const name = 'local/a->remote/b';
  fails(base + '    batch_linger: 600h\n', `Invalid duration for Policy ${name}: 'batch_linger': 600h (at most 2147483647 ms)`);
  fails(base + '    retry: { max: 2147483648 }\n', `Invalid duration for Policy ${name}: 'retry.max': 2147483648 (at most 2147483647 ms)`);
  fails(base + '    checkpoint: { interval: 36000m }\n', `Invalid duration for Policy ${name}: 'checkpoint.interval': 36000m (at most 2147483647 ms)`);
  fails(DRIVERS + 'shutdown_timeout: 600h\nforward: []\n', "Invalid duration for 'shutdown_timeout': 600h (at most 2147483647 ms)");
  assert.equal(load(base + '    batch_linger: 2147483647\n').policies[0]?.batchLingerMs, 2_147_483_647);
});

test('type is read as a string whatever its YAML type', T, () => {
  const cfg = load('drivers:\n  n: { type: 123 }\nforward: []\n');
  assert.equal(cfg.drivers.get('n')?.type, '123');
});

test('defaults apply to every policy key, data_selector and data_allocator included (forwarding.md §2)', T, () => {
  const cfg = load(DRIVERS + 'defaults:\n  data_selector: "./sel.js:make"\n  data_allocator: "./alloc.js:make"\nforward:\n  - from: local/a\n    to: remote/b\n');
  assert.deepEqual(cfg.unknownKeys, []);
  assert.equal(cfg.policies[0]?.dataSelector, './sel.js:make');
  assert.equal(cfg.policies[0]?.dataAllocator, './alloc.js:make');
});

test('delivery: no_duplicates with scan_limit; exactly_once only into durable files topics; both need headers', T, () => {
  const p = load(`${DRIVERS}forward:\n  - { from: local/a, to: remote/b, delivery: no_duplicates, scan_limit: 500 }\n  - { from: local/c, to: remote/d, delivery: no_duplicates }\n`).policies;
  assert.deepEqual(
    p.map((x) => [x.delivery, x.scanLimit]),
    [
      ['no_duplicates', 500],
      ['no_duplicates', 100_000],
    ],
  );
  fails(
    `${DRIVERS}forward:\n  - { from: local/a, to: remote/b, delivery: exactly_once }\n`,
    "Policy local/a->remote/b: delivery 'exactly_once' into a files destination needs its driver's flush_behavior to be immediate or on_flush (got \"buffered\")",
  );
  const ok = load(`drivers:\n  local: { type: files, options: { root_path: /tmp/x, flush_behavior: on_flush } }\nforward:\n  - { from: local/a, to: local/b, delivery: exactly_once }\n`).policies;
  assert.equal(ok[0]?.delivery, 'exactly_once');
  fails(
    `drivers:\n  local: { type: files }\n  k: { type: kafka, options: { kafka: { bootstrap.servers: 127.0.0.1:1 } } }\nforward:\n  - { from: local/a, to: k/b, delivery: exactly_once }\n`,
    "Policy local/a->k/b: delivery 'exactly_once' into a 'kafka' destination needs Kafka transactions, not supported by this version (use no_duplicates)",
  );
  fails(
    `${DRIVERS}forward:\n  - { from: local/a, to: remote/b, delivery: no_duplicates, headers: false }\n`,
    "Policy local/a->remote/b: delivery 'no_duplicates' needs the provenance headers (headers: true): they are how a restart finds what was already forwarded",
  );
  fails(`${DRIVERS}forward:\n  - { from: local/a, to: remote/b, delivery: no_duplicates, scan_limit: 0 }\n`, "Policy local/a->remote/b: 'scan_limit' must be an integer >= 1");
});
