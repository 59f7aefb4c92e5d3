/**
 * `diaspora-ctl forward` end to end on the files driver (diaspora-ctl.md §8, §10; forwarding.md §2–§4, §9–§11):
 * start-up errors, the compatibility checklist (before/during the run, continuous writes, SIGTERM, byte-exact
 * copies), restart without duplicates, crash safety (fault injection and SIGKILL), filters, partition mapping,
 * forward_data/headers switches and the HTTP endpoints.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CtlProcess,
  committedPositions,
  countEvents,
  partitionEnds,
  createTopic,
  freePort,
  logLines,
  produce,
  readAll,
  runCtl,
  sleep,
  tempDir,
  waitFor,
  type NewEvent,
  type ReadEvent,
} from '../helpers/cli.js';
import { httpGet } from '../helpers/http.js';

const T = { timeout: 60_000 };
const RUNNING = '[info] Forwarding daemon running. Press Ctrl+C to stop.';
const STOPPED = '[info] Forwarding daemon stopped.';
const POLICY = 'local/src->local/dst';
const LABEL = 'local/src -> local/dst';

interface Setup {
  dir: string;
  root: string;
  config: string;
  cleanup: () => void;
  /** `files:<real path of the source topic>` */
  srcId: () => string;
}

/**
 * A temporary directory with `data/` (files root) holding `src` and `dst` (unless `partitions` is empty) and a
 * configuration `fwd.yaml` with one policy local/src -> local/dst plus `policyExtra` lines.
 */
async function setup(
  o: { srcPartitions?: number; dstPartitions?: number; policyExtra?: string[]; topLevel?: string[]; createTopics?: boolean; driverOptions?: string[] } = {},
): Promise<Setup> {
  const { dir, cleanup } = tempDir('diaspora-forward-test-');
  const root = join(dir, 'data');
  if (o.createTopics !== false) {
    await createTopic(root, 'src', { num_partitions: o.srcPartitions ?? 2 });
    await createTopic(root, 'dst', { num_partitions: o.dstPartitions ?? 2 });
  }
  const config = join(dir, 'fwd.yaml');
  writeConfig(config, root, [['- from: local/src', '  to: local/dst', ...(o.policyExtra ?? []).map((l) => '  ' + l)]], o.topLevel, o.driverOptions);
  return { dir, root, config, cleanup, srcId: () => `files:${realpathSync(join(root, 'src'))}` };
}

function writeConfig(path: string, root: string, policies: string[][], topLevel: string[] = [], driverOptions: string[] = []): void {
  const lines = ['drivers:', '  local:', '    type: files', '    options:', `      root_path: ${JSON.stringify(root)}`, ...driverOptions.map((l) => '      ' + l), ...topLevel, 'forward:'];
  for (const p of policies) lines.push(...p.map((l) => '  ' + l));
  writeFileSync(path, lines.join('\n') + '\n');
}

function startDaemon(s: Setup, extra: string[] = [], env: Record<string, string> = {}): CtlProcess {
  return new CtlProcess(['forward', '--config', s.config, ...extra], s.dir, env);
}

function events(from: number, n: number, o: { partitions?: number; data?: boolean } = {}): NewEvent[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const e: NewEvent = { metadata: { n: i, s: `event "${i}" \\ é ✓`, nested: { a: [i, null, true] } } };
    if (o.data !== false) e.data = Buffer.from(Array.from({ length: (i % 37) + 1 }, (_, b) => (i * 7 + b) & 0xff));
    if (o.partitions !== undefined) e.partition = i % o.partitions;
    return e;
  });
}

/**
 * The random-kill scenario on a 3-partition `src` already holding 3000 events: once the daemon `d` runs, 20 more
 * bursts of 200 while it runs, and a SIGKILL at a random moment meanwhile (every burst is written before this returns).
 */
async function feedAndKillMidRun(s: Setup, d: CtlProcess): Promise<{ delay: number; info: { code: number | null; signal: NodeJS.Signals | null } }> {
  await d.waitForLog(RUNNING);
  const feeding = (async () => {
    for (let k = 0; k < 20; k++) {
      await produce(s.root, 'src', events(3000 + k * 200, 200, { partitions: 3 }));
      await sleep(50);
    }
  })();
  const delay = 200 + Math.floor(Math.random() * 1600);
  await sleep(delay);
  assert.ok(d.running, d.stderr);
  process.kill(d.pid, 'SIGKILL');
  const info = await d.exit(10_000);
  await feeding;
  return { delay, info };
}

/**
 * The fault-injection scenario: 2000 events in a 2-partition `src`, the daemon run until the injected fault kills
 * it (SIGKILL), the destination's ends and the committed source positions at the crash, then a
 * `--stop-at-end` restart (exit 0) and the verdict on the whole destination. `crashed` holds the killed daemon's
 * log lines.
 */
async function crashAndRestart(s: Setup, fault: string) {
  await produce(s.root, 'src', events(0, 2000, { partitions: 2 }));
  const d = startDaemon(s, [], { DIASPORA_FAULT_INJECTION: '1', DIASPORA_FAULT: fault });
  try {
    const info = await d.exit(20_000);
    assert.equal(info.signal, 'SIGKILL', `the daemon should have killed itself\n${d.stderr}`);
  } finally {
    d.kill();
  }
  return { crashed: d.logLines, ...(await restartAfterCrash(s)) };
}

/** After a crash: the destination's ends and the committed source positions, a `--stop-at-end` restart (exit 0), the verdict. */
async function restartAfterCrash(s: Setup) {
  const visible = await partitionEnds(s.root, 'dst');
  const committed = await committedPositions(s.root, 'src', POLICY);
  const atCrash = [...visible.values()].reduce((a, b) => a + Number(b), 0);
  const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  const src = await readAll(s.root, 'src');
  const dst = await readAll(s.root, 'dst');
  return { visible, committed, atCrash, r, src, dst, v: verify(s.srcId(), src, dst) };
}

interface Verdict {
  lost: number;
  duplicates: number;
  outOfOrder: number;
  /** Destination events whose content differs from their source event (or without a known source). */
  mismatched: number;
  /** Largest number of copies of one source event. */
  maxCopies: number;
}

/**
 * The verifier of forwarding.md §13: groups the destination by `diaspora-src`, checks nothing is missing, content is
 * identical, and per source partition the first occurrences appear in increasing id order.
 */
function verify(srcId: string, src: ReadEvent[], dst: ReadEvent[]): Verdict {
  const byKey = new Map<string, ReadEvent>();
  for (const e of src) byKey.set(`${srcId}#${e.partition}@${e.id}`, e);
  const copies = new Map<string, number>();
  const lastFirst = new Map<number, bigint>();
  let outOfOrder = 0;
  let mismatched = 0;
  for (const e of dst) {
    const key = e.headers['diaspora-src'] ?? '';
    const s = byKey.get(key);
    if (s === undefined || s.dump !== e.dump || !s.data.equals(e.data)) {
      mismatched++;
      continue;
    }
    const n = (copies.get(key) ?? 0) + 1;
    copies.set(key, n);
    if (n === 1) {
      const prev = lastFirst.get(s.partition);
      if (prev !== undefined && s.id <= prev) outOfOrder++;
      lastFirst.set(s.partition, s.id);
    }
  }
  let lost = 0;
  let duplicates = 0;
  let maxCopies = 0;
  for (const k of byKey.keys()) {
    const n = copies.get(k) ?? 0;
    if (n === 0) lost++;
    else duplicates += n - 1;
    maxCopies = Math.max(maxCopies, n);
  }
  return { lost, duplicates, outOfOrder, mismatched, maxCopies };
}

/**
 * At-least-once accounting after a crash (mapping 'same'): the committed source position of each partition never
 * exceeds what the destination partition held at the crash (else events would be lost), and the events re-forwarded
 * after the restart are exactly those held by the destination beyond the committed position.
 */
function assertCrashAccounting(visible: Map<number, bigint>, committed: Map<number, bigint>, v: Verdict): number {
  let window = 0;
  for (const [p, held] of visible) {
    const c = committed.get(p) ?? 0n;
    assert.ok(c <= held, `partition ${p}: committed position ${c} beyond the ${held} events in the destination`);
    window += Number(held - c);
  }
  assert.equal(v.duplicates, window, `duplicates must be exactly the confirmed but unacknowledged events (${window})`);
  return window;
}


function fatal(stderr: string): string[] {
  return logLines(stderr).filter((l) => l.startsWith('[error] '));
}

// ---------------------------------------------------------------------------------------------
// Start-up errors

describe('forward: start-up errors and --check', { concurrency: 6 }, () => {
  async function runWith(yaml: string | undefined, files: Record<string, string> = {}, extra: string[] = [], topics = true) {
    const s = await setup({ createTopics: topics });
    try {
      if (yaml !== undefined) writeFileSync(s.config, yaml.replaceAll('$ROOT', JSON.stringify(s.root)));
      for (const [name, text] of Object.entries(files)) writeFileSync(join(s.dir, name), text);
      const r = await runCtl(['forward', '--config', 'fwd.yaml', ...extra], { cwd: s.dir, timeoutMs: 15_000 });
      assert.ok(!logLines(r.stderr).includes(RUNNING), r.stderr);
      return r;
    } finally {
      s.cleanup();
    }
  }
  const drivers = 'drivers:\n  local: { type: files, options: { root_path: $ROOT } }\n';
  const policy = (extra: string): string => `${drivers}forward:\n  - from: local/src\n    to: local/dst\n${extra}`;

  test('malformed YAML → [error] Fatal error: Failed to parse YAML config: fwd.yaml:<line>:<col>: …, exit 1', T, async () => {
    const r = await runWith(drivers + 'forward:\n  - from: [local/src\n');
    assert.equal(r.code, 1, r.stderr);
    const errs = fatal(r.stderr);
    assert.equal(errs.length, 1, r.stderr);
    assert.match(errs[0] as string, /^\[error\] Fatal error: Failed to parse YAML config: fwd\.yaml:\d+:\d+: /);
  });

  test('unreadable configuration file', T, async () => {
    const s = await setup({ createTopics: false });
    try {
      const r = await runCtl(['forward', '--config', 'nope.yaml'], { cwd: s.dir });
      assert.equal(r.code, 1);
      assert.deepEqual(fatal(r.stderr), ['[error] Fatal error: Failed to parse YAML config: cannot read nope.yaml: No such file or directory']);
    } finally {
      s.cleanup();
    }
  });

  test('missing --config → PARSE ERROR', T, async () => {
    const s = await setup({ createTopics: false });
    try {
      const r = await runCtl(['forward'], { cwd: s.dir });
      assert.equal(r.code, 1);
      assert.ok(r.stderr.startsWith('PARSE ERROR: '), r.stderr);
      assert.match(r.stderr.split('\n')[0] as string, /--config/);
    } finally {
      s.cleanup();
    }
  });

  test("missing drivers → Config missing 'drivers' section", T, async () => {
    const r = await runWith('forward: []\n');
    assert.equal(r.code, 1);
    assert.deepEqual(fatal(r.stderr), ["[error] Fatal error: Config missing 'drivers' section"]);
  });

  test('config errors of §8.1: type, forward, from/to, topic reference, unknown driver', T, async () => {
    const cases: [string, string][] = [
      ['drivers:\n  local: { options: {} }\nforward: []\n', "Driver 'local' missing required 'type' field"],
      [drivers, "Config missing 'forward' entries"],
      [`${drivers}forward:\n  - from: local/src\n`, "forward entry missing 'from' or 'to' field"],
      [`${drivers}forward:\n  - from: localsrc\n    to: local/dst\n`, "Invalid topic reference 'localsrc': expected 'driver/topic'"],
      [`${drivers}forward:\n  - from: other/src\n    to: local/dst\n`, "Unknown driver 'other'"],
    ];
    for (const [yaml, message] of cases) {
      const r = await runWith(yaml);
      assert.equal(r.code, 1, message);
      assert.deepEqual(fatal(r.stderr), [`[error] Fatal error: ${message}`]);
    }
  });

  test("an empty name or consumer_name → Fatal error, exit 1, at start and under --check (no anonymous source consumer)", T, async () => {
    const cases: [string, string][] = [
      [policy('    name: ""\n'), "forward[0]: 'name' must not be empty (an anonymous consumer keeps no positions)"],
      [policy('    consumer_name: ""\n'), "Policy local/src->local/dst: 'consumer_name' must not be empty (an anonymous consumer keeps no positions)"],
    ];
    for (const [yaml, message] of cases) {
      for (const extra of [['--stop-at-end'], ['--check']]) {
        const r = await runWith(yaml, {}, extra);
        assert.equal(r.code, 1, r.stderr);
        assert.deepEqual(fatal(r.stderr), [`[error] Fatal error: ${message}`]);
      }
    }
  });

  test('plugin spec errors: bad spec, native plugin, missing module, missing export', T, async () => {
    const cases: [string, Record<string, string>, string | RegExp][] = [
      [policy('    data_selector: x\n'), {}, "Invalid plugin spec 'x': expected 'module.js:exportName'"],
      [policy('    data_selector: "lib.so:sym"\n'), {}, "Native plugins are not supported: 'lib.so:sym'"],
      [policy('    data_allocator: "./nope.js:make"\n'), {}, /^Cannot load plugin module '\.\/nope\.js': ./],
      [policy('    data_selector: "./sel.mjs:make"\n'), { 'sel.mjs': 'export function other() { return () => undefined; }\n' }, "Plugin export 'make' not found in './sel.mjs'"],
      [policy('    filters: [ { module: ./f.mjs, export: missing } ]\n'), { 'f.mjs': 'export default () => ({ allow: () => true });\n' }, "Plugin export 'missing' not found in './f.mjs'"],
    ];
    for (const [yaml, files, message] of cases) {
      const r = await runWith(yaml, files);
      assert.equal(r.code, 1, String(message));
      const errs = fatal(r.stderr);
      assert.equal(errs.length, 1, r.stderr);
      if (typeof message === 'string') assert.equal(errs[0], `[error] Fatal error: ${message}`);
      else assert.match((errs[0] as string).slice('[error] Fatal error: '.length), message, r.stderr);
      assert.ok((errs[0] as string).startsWith('[error] Fatal error: '), r.stderr);
    }
  });

  test('missing source topic → [error] Diaspora error: Topic directory does not exist: …, exit 1', T, async () => {
    const r = await runWith(policy(''), {}, [], false);
    assert.equal(r.code, 1, r.stderr);
    const errs = fatal(r.stderr);
    assert.equal(errs.length, 1, r.stderr);
    assert.ok((errs[0] as string).startsWith('[error] Diaspora error: Topic directory does not exist: '), r.stderr);
  });

  test('--check: exit 0 on a valid configuration (nothing forwarded), 1 with unknown keys', T, async () => {
    const s = await setup();
    try {
      await produce(s.root, 'src', events(0, 5));
      let r = await runCtl(['forward', '--config', s.config, '--check'], { cwd: s.dir });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(logLines(r.stderr).includes(`[info] Created forward policy: ${LABEL}`), r.stderr);
      assert.ok(!logLines(r.stderr).includes(RUNNING), r.stderr);
      assert.equal(await countEvents(s.root, 'dst'), 0);

      writeConfig(s.config, s.root, [['- from: local/src', '  to: local/dst', '  batchsize: 3']]);
      r = await runCtl(['forward', '--config', s.config, '--check'], { cwd: s.dir });
      assert.equal(r.code, 1);
      assert.ok(logLines(r.stderr).includes("[error] Unknown key 'forward[0].batchsize' in config"), r.stderr);
      // without --check: a warning only
      r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(logLines(r.stderr).includes("[warning] Unknown key 'forward[0].batchsize' in config"), r.stderr);
      assert.equal(await countEvents(s.root, 'dst'), 5);
    } finally {
      s.cleanup();
    }
  });

  test('--check: unknown keys inside retry and checkpoint → exit 1; a scalar checkpoint → Fatal error', T, async () => {
    let r = await runWith(policy('    retry: { mn: 1s }\n    checkpoint: { intervall: 10ms }\n'), {}, ['--check']);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(fatal(r.stderr), [
      "[error] Unknown key 'forward[0].retry.mn' in config",
      "[error] Unknown key 'forward[0].checkpoint.intervall' in config",
      '[error] Fatal error: 2 unknown key(s) in config',
    ]);
    r = await runWith(policy('    checkpoint: 5s\n'), {}, ['--check']);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(fatal(r.stderr), ["[error] Fatal error: Policy local/src->local/dst: 'checkpoint' must be a mapping"]);
  });

  test('a duration above 2147483647 ms (batch_linger: 600h, shutdown_timeout: 600h) → Fatal error naming it, exit 1', T, async () => {
    let r = await runWith(policy('    batch_linger: 600h\n'), {}, ['--stop-at-end']);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(fatal(r.stderr), ["[error] Fatal error: Invalid duration for Policy local/src->local/dst: 'batch_linger': 600h (at most 2147483647 ms)"]);
    r = await runWith(`shutdown_timeout: 600h\n${policy('')}`, {}, ['--check']);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(fatal(r.stderr), ["[error] Fatal error: Invalid duration for 'shutdown_timeout': 600h (at most 2147483647 ms)"]);
    assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/);
  });

  test('forward: [] → exit 0 at once', T, async () => {
    const r = await runWith(drivers + 'forward: []\n');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(logLines(r.stderr).includes('[info] Loaded 1 driver(s) and 0 forwarding policy(ies)'), r.stderr);
  });
});

// ---------------------------------------------------------------------------------------------
// Compatibility checklist and behaviour

describe('forward: behaviour', { concurrency: 3 }, () => {
  test('events produced before AND during the run are forwarded continuously, byte for byte; SIGTERM → exit 0', T, async () => {
    const s = await setup();
    let daemon: CtlProcess | undefined;
    try {
      // before the run, with source headers (copied; diaspora-* replaced)
      const before = events(0, 200, { partitions: 2 }).map((e, i) => (i % 10 === 0 ? { ...e, headers: { 'x-app': `h${i}`, 'diaspora-policy': 'stale' } } : e));
      await produce(s.root, 'src', before);
      const d = (daemon = startDaemon(s));
      await d.waitForLog(RUNNING);
      for (const l of [
        '[info] Loaded 1 driver(s) and 1 forwarding policy(ies)',
        "[info] Creating driver 'local' (type=files)",
        `[info] Created forward policy: ${LABEL}`,
        `[info] Forward worker started: ${LABEL}`,
      ]) {
        assert.equal(d.count(l), 1, `${l}\n${d.stderr}`);
      }
      // continuously: the destination fills while the daemon runs (not only at shutdown)
      assert.ok(await waitFor(async () => (await countEvents(s.root, 'dst')) >= 200, 15_000, 50), `before-run events not forwarded\n${d.stderr}`);
      assert.ok(d.running, d.stderr);
      // during the run, in several bursts
      for (let k = 0; k < 3; k++) {
        await produce(s.root, 'src', events(200 + k * 100, 100, { partitions: 2 }));
        const want = 300 + k * 100;
        assert.ok(await waitFor(async () => (await countEvents(s.root, 'dst')) >= want, 15_000, 50), `${want} events not forwarded while running\n${d.stderr}`);
        assert.ok(d.running, d.stderr);
      }
      const { code, signal } = await d.stop(10_000);
      assert.equal(signal, null, d.stderr);
      assert.equal(code, 0, d.stderr);
      const lines = d.logLines;
      for (const l of ['[info] Received shutdown signal...', '[info] Flushing producer for local/dst...', `[info] Forward worker stopped: ${LABEL}`, STOPPED]) {
        assert.equal(lines.filter((x) => x === l).length, 1, `${l}\n${d.stderr}`);
      }
      assert.ok(lines.indexOf('[info] Received shutdown signal...') < lines.indexOf(STOPPED));
      assert.equal(lines.at(-1), STOPPED, d.stderr);
      assert.equal(d.stdout, '', 'nothing on stdout');

      // byte for byte: metadata (canonical text and stored bytes) and data, same partition, same order
      const src = await readAll(s.root, 'src');
      const dst = await readAll(s.root, 'dst');
      assert.equal(src.length, 500);
      assert.equal(dst.length, 500);
      const srcId = s.srcId();
      for (let i = 0; i < src.length; i++) {
        const a = src[i] as ReadEvent;
        const b = dst[i] as ReadEvent;
        assert.equal(b.partition, a.partition);
        assert.equal(b.id, a.id);
        assert.equal(b.dump, a.dump);
        assert.ok(a.stored !== undefined && b.stored !== undefined && b.stored.equals(a.stored), `stored metadata bytes of ${a.partition}@${a.id}`);
        assert.ok(b.data.equals(a.data), `data of ${a.partition}@${a.id}`);
        assert.equal(b.headers['diaspora-src'], `${srcId}#${a.partition}@${a.id}`);
        assert.equal(b.headers['diaspora-policy'], POLICY);
        assert.match(b.headers['diaspora-ts'] ?? '', /^\d{19}$/);
        if (a.headers['x-app'] !== undefined) assert.equal(b.headers['x-app'], a.headers['x-app']);
      }
      assert.deepEqual(verify(srcId, src, dst), { lost: 0, duplicates: 0, outOfOrder: 0, mismatched: 0, maxCopies: 1 });
    } finally {
      daemon?.kill();
      s.cleanup();
    }
  });

  test('restart: --stop-at-end forwards 1000, then 500 more → exactly 1500, no duplicates, order kept', T, async (t: TestContext) => {
    const s = await setup();
    try {
      await produce(s.root, 'src', events(0, 1000, { partitions: 2 }));
      let r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(logLines(r.stderr).includes(STOPPED), r.stderr);
      assert.equal(await countEvents(s.root, 'dst'), 1000);

      await produce(s.root, 'src', events(1000, 500, { partitions: 2 }));
      r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const src = await readAll(s.root, 'src');
      const dst = await readAll(s.root, 'dst');
      assert.equal(dst.length, 1500);
      const v = verify(s.srcId(), src, dst);
      t.diagnostic(`restart: ${JSON.stringify(v)}`);
      assert.deepEqual(v, { lost: 0, duplicates: 0, outOfOrder: 0, mismatched: 0, maxCopies: 1 });

      // nothing new: a third run stops at once and writes nothing
      r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await countEvents(s.root, 'dst'), 1500);
    } finally {
      s.cleanup();
    }
  });

  for (const fault of ['files.after_data:3', 'files.mid_index:5', 'files.after_headers:8']) {
    test(`crash safety: fault ${fault} (SIGKILL), restart → 0 lost, 0 out of order, duplicates ≤ in-flight window`, T, async (t: TestContext) => {
      const BATCH = 100;
      const s = await setup({ policyExtra: [`batch_size: ${BATCH}`, 'checkpoint: { interval: 0ms }'], driverOptions: ['flush_behavior: buffered'] });
      try {
        const { crashed, visible, committed, atCrash, src, dst, v } = await crashAndRestart(s, fault);
        assert.ok(!crashed.includes(STOPPED));
        t.diagnostic(
          `fault ${fault}: visible at crash ${atCrash}, committed ${JSON.stringify(Object.fromEntries([...committed].map(([p, c]) => [p, Number(c)])))}, after restart ${dst.length}: ${JSON.stringify(v)}`,
        );
        assert.equal(v.lost, 0);
        assert.equal(v.outOfOrder, 0);
        assert.equal(v.mismatched, 0);
        assert.ok(v.maxCopies <= 2, JSON.stringify(v));
        // at-least-once: the re-forwarded events are exactly those confirmed whose position was not durable yet
        assertCrashAccounting(visible, committed, v);
        if (fault === 'files.after_data:3') {
          // two appends (one batch over two partitions) completed before the crash: at most the events of one batch
          // were confirmed without a durable acknowledgement
          assert.ok(v.duplicates <= BATCH, `duplicates ${v.duplicates} > one batch of ${BATCH}`);
        }
        assert.equal(dst.length, src.length + v.duplicates);
      } finally {
        s.cleanup();
      }
    });
  }

  // delivery no_duplicates (forwarding.md §5): the destination's tail is scanned at start, so a crash leaves no duplicate
  for (const [fault, mapping] of [
    ['files.after_data:3', 'same'],
    ['files.mid_index:5', 'auto'],
    ['files.after_headers:8', 'same'],
    ['files.after_metadata:4', 'auto'],
  ] as const) {
    test(`no_duplicates: fault ${fault} (SIGKILL), partitions ${mapping}, restart → 0 lost, 0 duplicated, 0 out of order`, T, async (t: TestContext) => {
      const s = await setup({ srcPartitions: 2, dstPartitions: 2, policyExtra: ['batch_size: 100', 'checkpoint: { interval: 5s }', 'delivery: no_duplicates', `partitions: ${mapping}`] });
      try {
        const { atCrash, r, dst, v } = await crashAndRestart(s, fault);
        const resume = logLines(r.stderr).find((l) => l.includes('No-duplicates resume')) ?? '';
        t.diagnostic(`fault ${fault}: visible at crash ${atCrash}; ${resume}; after restart ${dst.length}: ${JSON.stringify(v)}`);
        assert.deepEqual(v, { lost: 0, duplicates: 0, outOfOrder: 0, mismatched: 0, maxCopies: 1 }, r.stderr);
        assert.ok(atCrash > 0, 'the crash came after some events were written (else the test proves nothing)');
      } finally {
        s.cleanup();
      }
    });
  }

  test('no_duplicates: SIGKILL at a random moment mid-run (3 → 2 partitions, auto), restart → 0 lost, 0 duplicated', T, async (t: TestContext) => {
    const s = await setup({ srcPartitions: 3, dstPartitions: 2, policyExtra: ['batch_size: 200', 'checkpoint: { interval: 2s }', 'delivery: no_duplicates', 'partitions: auto'] });
    let d: CtlProcess | undefined;
    try {
      await produce(s.root, 'src', events(0, 3000, { partitions: 3 }));
      d = startDaemon(s);
      const { delay } = await feedAndKillMidRun(s, d);
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const src = await readAll(s.root, 'src');
      const dst = await readAll(s.root, 'dst');
      assert.equal(src.length, 7000);
      const v = verify(s.srcId(), src, dst);
      t.diagnostic(`SIGKILL after ${delay} ms; ${logLines(r.stderr).find((l) => l.includes('No-duplicates resume')) ?? ''}; ${JSON.stringify(v)}`);
      assert.equal(v.lost, 0);
      assert.equal(v.duplicates, 0, r.stderr);
      assert.equal(v.mismatched, 0);
      assert.equal(dst.length, 7000);
    } finally {
      d?.kill();
      s.cleanup();
    }
  });

  test('exactly_once into a files topic (flush_behavior on_flush): fault after_data:3, restart → 0 lost, 0 duplicated; the destination lease refuses a daemon with another state_dir', T, async (t: TestContext) => {
    const s = await setup({ policyExtra: ['batch_size: 100', 'checkpoint: { interval: 5s }', 'delivery: exactly_once'], driverOptions: ['flush_behavior: on_flush'] });
    let d: CtlProcess | undefined;
    try {
      await produce(s.root, 'src', events(0, 2000, { partitions: 2 }));
      d = startDaemon(s, [], { DIASPORA_FAULT_INJECTION: '1', DIASPORA_FAULT: 'files.after_data:3' });
      const info = await d.exit(20_000);
      assert.equal(info.signal, 'SIGKILL', d.stderr);
      // while a daemon runs the policy, one with another state_dir is refused by the lease in the destination topic
      d = startDaemon(s);
      await d.waitForLog(RUNNING);
      const other = join(s.dir, 'other.yaml');
      writeConfig(other, s.root, [['- from: local/src', '  to: local/dst', '  delivery: exactly_once']], ['state_dir: ./other-state'], ['flush_behavior: on_flush']);
      const r2 = await runCtl(['forward', '--config', other, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r2.code, 1, r2.stderr);
      assert.match(r2.stderr, /Policy local\/src->local\/dst is already running \(lock .*[/]dst[/]\.forward-local%2Fsrc-%3Elocal%2Fdst\.lock\)/);
      const stop = await d.stop();
      assert.equal(stop.code, 0, d.stderr);
      // whatever the stopped daemon had not reached yet
      const r3 = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r3.code, 0, r3.stderr);
      const src = await readAll(s.root, 'src');
      const dst = await readAll(s.root, 'dst');
      const v = verify(s.srcId(), src, dst);
      t.diagnostic(JSON.stringify(v));
      assert.deepEqual(v, { lost: 0, duplicates: 0, outOfOrder: 0, mismatched: 0, maxCopies: 1 }, d.stderr);
    } finally {
      d?.kill();
      s.cleanup();
    }
  });

  test('no_duplicates: a second daemon with the same policy is refused (lease), exit 1; headers: false is refused', T, async () => {
    const s = await setup({ policyExtra: ['delivery: no_duplicates'] });
    let d: CtlProcess | undefined;
    try {
      d = startDaemon(s);
      await d.waitForLog(RUNNING);
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Policy local\/src->local\/dst is already running \(lock .*\.lock\)/);
      const stop = await d.stop();
      assert.equal(stop.code, 0, d.stderr);
      // the lease went with the daemon: a new run may start
      const again = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(again.code, 0, again.stderr);
      writeConfig(s.config, s.root, [['- from: local/src', '  to: local/dst', '  delivery: no_duplicates', '  headers: false']]);
      const bad = await runCtl(['forward', '--config', s.config, '--check'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /delivery 'no_duplicates' needs the provenance headers \(headers: true\)/);
    } finally {
      d?.kill();
      s.cleanup();
    }
  });

  test('crash safety: SIGKILL at a random moment mid-run, restart → 0 lost, 0 out of order', T, async (t: TestContext) => {
    const s = await setup({ srcPartitions: 3, dstPartitions: 3, policyExtra: ['batch_size: 200'] });
    let d: CtlProcess | undefined;
    try {
      await produce(s.root, 'src', events(0, 3000, { partitions: 3 }));
      d = startDaemon(s);
      const { delay, info } = await feedAndKillMidRun(s, d);
      assert.equal(info.signal, 'SIGKILL');
      const { visible, committed, atCrash: atKill, src, dst, v } = await restartAfterCrash(s);
      assert.equal(src.length, 7000);
      t.diagnostic(
        `SIGKILL after ${delay} ms: visible at kill ${atKill}, committed ${JSON.stringify(Object.fromEntries([...committed].map(([p, c]) => [p, Number(c)])))}, after restart ${dst.length}: ${JSON.stringify(v)}`,
      );
      assert.equal(v.lost, 0);
      assert.equal(v.outOfOrder, 0);
      assert.equal(v.mismatched, 0);
      assertCrashAccounting(visible, committed, v);
      assert.ok(v.maxCopies <= 2, JSON.stringify(v));
    } finally {
      d?.kill();
      s.cleanup();
    }
  });

  /**
   * A driver plugin wrapping the files driver whose appends wait 5 ms (so batches queue up behind them) and fail:
   * those numbered in FLAKY_FAIL (before writing anything), or with probability FLAKY_RATE from a seeded generator,
   * half of those after the batch was written (the producer then re-sends stored events: duplicates).
   */
  const FLAKY_PLUGIN = `const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let appends = 0;
const FAIL = new Set((process.env.FLAKY_FAIL ?? '').split(',').filter(Boolean).map(Number));
const RATE = Number(process.env.FLAKY_RATE ?? 0);
let x = Number(process.env.FLAKY_SEED ?? 1) >>> 0 || 1;
const random = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
const wrap = (inner, name, fn) => new Proxy(inner, { get: (o, k) => (k === name ? fn(o) : typeof o[k] === 'function' ? o[k].bind(o) : o[k]) });
export function register(r) {
  r.registerDriver('flaky', async (options) =>
    wrap(await r.drivers.get('files')(options), 'openTopic', (d) => async (...a) => {
      const topic = await d.openTopic(...a);
      return topic && wrap(topic, 'createWriter', (tp) => async (...b) =>
        wrap(await tp.createWriter(...b), 'append', (w) => async (partition, batch) => {
          const n = ++appends;
          await sleep(5);
          const fail = FAIL.has(n) || random() < RATE;
          if (fail && (FAIL.has(n) || random() < 0.5)) throw new Error('injected write failure (append ' + n + ')');
          const ids = await w.append(partition, batch);
          if (fail) throw new Error('injected write failure after writing (append ' + n + ')');
          return ids;
        }));
    }));
}
`;

  const flakyCases: { name: string; partitions: number; n: number; batch: number; env: Record<string, string>; afterWrite: boolean }[] = [
    { name: 'appends 3, 4 and 9 fail before writing', partitions: 2, n: 3000, batch: 100, env: { FLAKY_FAIL: '3,4,9' }, afterWrite: false },
    { name: '15 % of appends fail at random, half of them after writing', partitions: 3, n: 6000, batch: 50, env: { FLAKY_RATE: '0.15', FLAKY_SEED: String(1 + Math.floor(Math.random() * 1e6)) }, afterWrite: true },
  ];
  for (const c of flakyCases) {
    test(`destination appends fail while 4 batches are in flight (${c.name}): retried, 0 lost, first copies in source order`, T, async (t: TestContext) => {
      const s = await setup({ srcPartitions: c.partitions, dstPartitions: c.partitions });
      try {
        writeFileSync(join(s.dir, 'flaky.mjs'), FLAKY_PLUGIN);
        writeConfig(s.config, s.root, [['- from: local/src', '  to: flaky/dst', `  batch_size: ${c.batch}`, '  max_in_flight: 4', '  retry: { min: 5ms, max: 50ms }']]);
        writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('forward:\n', `  flaky:\n    type: flaky:./flaky.mjs\n    options:\n      root_path: ${JSON.stringify(s.root)}\nforward:\n`));
        await produce(s.root, 'src', events(0, c.n, { partitions: c.partitions }));
        const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 45_000, env: c.env });
        assert.equal(r.code, 0, r.stderr);
        const failures = logLines(r.stderr).filter((l) => l.includes('Error in forward worker local/src -> flaky/dst: injected write failure'));
        assert.ok(failures.length >= 1, r.stderr);
        const v = verify(s.srcId(), await readAll(s.root, 'src'), await readAll(s.root, 'dst'));
        t.diagnostic(`${JSON.stringify(c.env)}: ${failures.length} failure(s) logged; ${JSON.stringify(v)}`);
        assert.equal(v.lost, 0);
        assert.equal(v.outOfOrder, 0);
        assert.equal(v.mismatched, 0);
        // failures before writing: what is re-sent was never stored, so nothing is stored twice (only the
        // unconfirmed events are re-sent, not those confirmed in other partitions)
        if (!c.afterWrite) assert.equal(v.duplicates, 0);
      } finally {
        s.cleanup();
      }
    });
  }

  test('a failing destination is retried with exponential back-off (min 100 ms, doubling, max 400 ms), not in a tight loop', T, async (t: TestContext) => {
    const s = await setup({ srcPartitions: 1, dstPartitions: 1 });
    try {
      writeFileSync(join(s.dir, 'flaky.mjs'), FLAKY_PLUGIN);
      // one batch, one append at a time: every append after the first is a retry of the same batch
      writeConfig(s.config, s.root, [['- from: local/src', '  to: flaky/dst', '  batch_size: 1000', '  max_in_flight: 1', '  retry: { min: 100ms, max: 400ms, jitter: 0.2 }']]);
      writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('forward:\n', `  flaky:\n    type: flaky:./flaky.mjs\n    options:\n      root_path: ${JSON.stringify(s.root)}\nforward:\n`));
      await produce(s.root, 'src', events(0, 50));
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000, env: { FLAKY_FAIL: '1,2,3,4,5' } });
      assert.equal(r.code, 0, r.stderr);
      // "[2026-11-21 19:40:54.318] [error] Error in forward worker …": when each failed append was reported
      const at = r.stderr
        .split('\n')
        .filter((l) => l.includes('[error] Error in forward worker local/src -> flaky/dst: injected write failure'))
        .map((l) => Date.parse((/^\[([0-9-]+ [0-9:.]+)\]/.exec(l) as RegExpExecArray)[1]!.replace(' ', 'T')));
      assert.equal(at.length, 5, r.stderr);
      const gaps = at.slice(1).map((x, k) => x - (at[k] as number));
      t.diagnostic(`gaps between attempts (ms): ${gaps.join(', ')}`);
      // attempt k+1 starts after back-off(k) = min(400, 100 * 2^k) ms, less 20 % jitter (plus the plugin's 5 ms)
      for (const [k, gap] of gaps.entries()) assert.ok(gap >= 0.8 * Math.min(400, 100 * 2 ** k) - 2, `gap ${k}: ${gap} ms (${gaps.join(', ')})`);
      const v = verify(s.srcId(), await readAll(s.root, 'src'), await readAll(s.root, 'dst'));
      assert.deepEqual([v.lost, v.duplicates, v.outOfOrder, v.mismatched], [0, 0, 0, 0]);
    } finally {
      s.cleanup();
    }
  });

  test('SIGTERM under load: exit 0 within 10 s, then a restart forwards the rest with no loss and no duplicate', T, async (t: TestContext) => {
    const s = await setup({ policyExtra: ['batch_size: 100'] });
    let d: CtlProcess | undefined;
    try {
      const N = 20_000;
      await produce(s.root, 'src', events(0, N, { partitions: 2, data: false }));
      d = startDaemon(s);
      await d.waitForLog(RUNNING);
      assert.ok(await waitFor(async () => (await countEvents(s.root, 'dst')) > 0, 15_000, 5), d.stderr);
      const { code, signal } = await d.stop(10_000);
      assert.equal(signal, null, d.stderr);
      assert.equal(code, 0, d.stderr);
      assert.equal(d.count(STOPPED), 1, d.stderr);
      const atStop = await countEvents(s.root, 'dst');
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const v = verify(s.srcId(), await readAll(s.root, 'src'), await readAll(s.root, 'dst'));
      t.diagnostic(`SIGTERM with ${atStop} of ${N} forwarded: ${JSON.stringify(v)}`);
      assert.equal(v.lost, 0);
      assert.equal(v.outOfOrder, 0);
      assert.equal(v.mismatched, 0);
      // a graceful stop acknowledges and checkpoints everything confirmed (forwarding.md §10)
      assert.equal(v.duplicates, 0, d.stderr);
    } finally {
      d?.kill();
      s.cleanup();
    }
  });

  test('a filter that keeps throwing halts its policy only (filter_errors: halt); filter_errors: drop drops the events', T, async () => {
    const s = await setup();
    try {
      for (const name of ['halted', 'dropped']) await createTopic(s.root, name, { num_partitions: 2 });
      writeFileSync(join(s.dir, 'bad.mjs'), "export default () => ({ id: 'bad', allow: (e) => { if (e.metadata.json.n === 3) throw new Error('boom'); return true; } })\n");
      writeConfig(s.config, s.root, [
        ['- from: local/src', '  to: local/dst'],
        ['- from: local/src', '  to: local/halted', '  filters: [ { module: ./bad.mjs } ]', '  retry: { min: 10ms, max: 20ms }'],
        ['- from: local/src', '  to: local/dropped', '  filters: [ { module: ./bad.mjs } ]', '  filter_errors: drop', '  retry: { min: 10ms, max: 20ms }'],
      ]);
      await produce(s.root, 'src', events(0, 10, { partitions: 1 }));
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 1, r.stderr);
      const lines = logLines(r.stderr);
      assert.ok(
        lines.some((l) => l.startsWith('[error] Forward worker halted: local/src -> local/halted: ') && l.includes('boom')),
        r.stderr,
      );
      assert.equal(await countEvents(s.root, 'dst'), 10);
      assert.deepEqual(
        (await readAll(s.root, 'dropped')).map((e) => (e.json as { n: number }).n),
        [0, 1, 2, 4, 5, 6, 7, 8, 9],
      );
      // nothing after the failing event was written by the halted policy
      assert.deepEqual(
        (await readAll(s.root, 'halted')).map((e) => (e.json as { n: number }).n).filter((n) => n >= 3),
        [],
      );
    } finally {
      s.cleanup();
    }
  });

  test('a transform returning no event is a filter error (filter_errors: drop); JSON metadata is accepted; a filter whose close() throws is logged, exit 0', T, async () => {
    const s = await setup();
    try {
      for (const name of ['xformed', 'closed']) await createTopic(s.root, name, { num_partitions: 1 });
      writeFileSync(
        join(s.dir, 'xform.mjs'),
        "export default () => ({ id: 'xform', transform: (e) => (e.metadata.json.n === 3 ? undefined : e.metadata.json.n === 4 ? { ...e, metadata: { n: 40 } } : e) })\n",
      );
      writeFileSync(join(s.dir, 'closer.mjs'), "export default () => ({ id: 'closer', allow: () => true, close: () => { throw new Error('close boom'); } })\n");
      writeConfig(s.config, s.root, [
        ['- from: local/src', '  to: local/xformed', '  filters: [ { module: ./xform.mjs } ]', '  filter_errors: drop', '  retry: { min: 10ms, max: 20ms }'],
        ['- from: local/src', '  to: local/closed', '  filters: [ { module: ./closer.mjs } ]'],
      ]);
      await produce(s.root, 'src', events(0, 10, { partitions: 1 }));
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const lines = logLines(r.stderr);
      assert.ok(lines.some((l) => l.includes("Filter 'xform' transform must return an event (an object with metadata) or null, not undefined")), r.stderr);
      assert.ok(lines.some((l) => l.startsWith("[warning] Filter 'closer' of local/src -> local/closed failed to close: close boom")), r.stderr);
      assert.ok(lines.includes('[info] Forwarding daemon stopped.'), r.stderr);
      assert.deepEqual(
        (await readAll(s.root, 'xformed')).map((e) => (e.json as { n: number }).n),
        [0, 1, 2, 40, 5, 6, 7, 8, 9],
      );
      assert.equal(await countEvents(s.root, 'closed'), 10);
    } finally {
      s.cleanup();
    }
  });

  test('events copied as stored (fast path) and through a filter (general path) reach the destination alike: own-origin dropped, own headers kept, diaspora-* replaced, data, same and fixed mapping', T, async () => {
    const s = await setup({ srcPartitions: 3, dstPartitions: 3 });
    try {
      await createTopic(s.root, 'viafilter', { num_partitions: 3 });
      await createTopic(s.root, 'fixed', { num_partitions: 2 });
      writeFileSync(join(s.dir, 'pass.mjs'), "export default () => ({ id: 'pass', allow: () => true })\n");
      const idOf = (t: string): string => `files:${realpathSync(join(s.root, t))}`;
      writeConfig(s.config, s.root, [
        ['- from: local/src', '  to: local/dst', '  batch_size: 7'],
        ['- from: local/src', '  to: local/viafilter', '  batch_size: 7', '  filters: [ { module: ./pass.mjs } ]'],
        ['- from: local/src', '  to: local/fixed', '  batch_size: 7', '  partitions: fixed:1'],
      ]);
      // every 5th event has headers of its own; some of them came from one of the destinations (loop prevention)
      const targets = ['dst', 'viafilter', 'fixed'];
      const evs = events(0, 300, { partitions: 3 }).map((e, i) => {
        if (i % 5 !== 0) return e;
        const h: Record<string, string> = { app: `a${i}`, 'diaspora-policy': 'an earlier hop' };
        if (i % 15 === 0) h['diaspora-src'] = `${idOf(targets[(i / 15) % 3] as string)}#0@${i}`;
        return { ...e, headers: h };
      });
      await produce(s.root, 'src', evs);
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end', '--logging', 'debug'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const lines = logLines(r.stderr);
      const fast = (t: string): boolean => lines.includes(`[debug] Forward worker local/src -> local/${t}: events are copied as stored (no decoding)`);
      assert.deepEqual(targets.map(fast), [true, false, true], r.stderr);
      const src = await readAll(s.root, 'src');
      interface Row {
        partition: number;
        stored: string | undefined;
        data: string;
        headers: Record<string, string>;
      }
      for (const t of targets) {
        const policy = `local/src->local/${t}`;
        const want: Row[] = src
          .filter((e) => !(e.headers['diaspora-src'] ?? '').startsWith(idOf(t) + '#'))
          .map((e) => {
            const own = Object.fromEntries(Object.entries(e.headers).filter(([k]) => !k.startsWith('diaspora-')));
            const headers = { ...own, 'diaspora-policy': policy, 'diaspora-src': `${s.srcId()}#${e.partition}@${e.id}` };
            return { partition: t === 'fixed' ? 1 : e.partition, stored: e.stored?.toString('hex'), data: e.data.toString('hex'), headers };
          });
        const got: Row[] = (await readAll(s.root, t)).map((e) => {
          const { ['diaspora-ts']: ts, ...headers } = e.headers;
          assert.match(ts ?? '', /^\d{19}$/, `${t}: diaspora-ts`);
          return { partition: e.partition, stored: e.stored?.toString('hex'), data: e.data.toString('hex'), headers };
        });
        const key = (x: Row): string => x.headers['diaspora-src'] as string;
        // the order of each source partition within each destination partition; interleavings may differ
        const srcPartition = (x: Row): number => Number(/#(\d+)@/.exec(key(x))?.[1]);
        const order = (xs: Row[]): Row[] => [...xs].sort((a, b) => a.partition - b.partition || srcPartition(a) - srcPartition(b));
        assert.equal(got.length, want.length, `${t}: ${got.length} events, expected ${want.length}`);
        assert.deepEqual(order(got), order(want), `${t}: events differ`);
        assert.equal(new Set(got.map(key)).size, got.length, `${t}: duplicates`);
      }
    } finally {
      s.cleanup();
    }
  });

  for (const [how, code] of [
    ['an exception thrown from a timer', "setTimeout(() => { throw new Error('plugin stray boom'); }, 5)"],
    ['a rejection nobody handles', "void Promise.reject(new Error('plugin stray boom'))"],
  ] as const) {
    test(`a plugin's stray error (${how}) shuts the daemon down in order: [critical] with the stack, flushed, exit 1`, T, async () => {
      const s = await setup();
      try {
        writeFileSync(join(s.dir, 'stray.mjs'), `export default () => ({ id: 'stray', allow: (e) => { if (e.metadata.json.n === 5) ${code}; return true; } })\n`);
        writeConfig(s.config, s.root, [['- from: local/src', '  to: local/dst', '  filters: [ { module: ./stray.mjs } ]']]);
        await produce(s.root, 'src', events(0, 10, { partitions: 1 }));
        // no --stop-at-end: only the stray error ends this run
        const r = await runCtl(['forward', '--config', s.config], { cwd: s.dir, timeoutMs: 30_000 });
        assert.equal(r.code, 1, r.stderr);
        const lines = logLines(r.stderr);
        assert.ok(lines.some((l) => l.startsWith('[critical] Uncaught error, shutting down: Error: plugin stray boom')), r.stderr);
        assert.ok(lines.includes('[info] Forwarding daemon stopped.'), r.stderr);
        assert.equal(await countEvents(s.root, 'dst'), 10);
      } finally {
        s.cleanup();
      }
    });
  }

  test('log_format: json writes one JSON object per log line', T, async () => {
    const s = await setup({ topLevel: ['log_format: json'] });
    try {
      await produce(s.root, 'src', events(0, 3));
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir });
      assert.equal(r.code, 0, r.stderr);
      const objs = r.stderr
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { level: string; message: string; time: string });
      assert.ok(objs.length > 0);
      for (const o of objs) {
        assert.match(o.time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
        assert.ok(['trace', 'debug', 'info', 'warning', 'error', 'critical'].includes(o.level));
      }
      assert.ok(objs.some((o) => o.level === 'info' && o.message === 'Forwarding daemon stopped.'), r.stderr);
    } finally {
      s.cleanup();
    }
  });

  test('several policies: filter module (even only), fixed:1, forward_data: false, headers: false', T, async () => {
    const s = await setup();
    try {
      for (const name of ['even', 'fixed', 'nodata', 'nohdr']) await createTopic(s.root, name, { num_partitions: 2 });
      writeFileSync(join(s.dir, 'even.js'), "export default (config) => ({ id: 'even', allow: (e) => e.metadata.json.n % 2 === 0 })\n");
      writeConfig(s.config, s.root, [
        ['- from: local/src', '  to: local/even', '  filters: [ { module: ./even.js } ]'],
        ['- from: local/src', '  to: local/fixed', '  partitions: "fixed:1"'],
        ['- from: local/src', '  to: local/nodata', '  forward_data: false'],
        ['- from: local/src', '  to: local/nohdr', '  headers: false'],
      ]);
      const N = 300;
      await produce(s.root, 'src', events(0, N, { partitions: 2 }));
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const lines = logLines(r.stderr);
      assert.ok(lines.includes('[info] Loaded 1 driver(s) and 4 forwarding policy(ies)'), r.stderr);
      for (const to of ['even', 'fixed', 'nodata', 'nohdr']) {
        assert.ok(lines.includes(`[info] Forward worker started: local/src -> local/${to}`), r.stderr);
        assert.ok(lines.includes(`[info] Forward worker stopped: local/src -> local/${to}`), r.stderr);
      }
      const src = await readAll(s.root, 'src');
      const srcId = s.srcId();

      const even = await readAll(s.root, 'even');
      assert.deepEqual(
        even.map((e) => (e.json as { n: number }).n).sort((a, b) => a - b),
        Array.from({ length: N / 2 }, (_, i) => 2 * i),
      );
      assert.ok(even.every((e) => e.headers['diaspora-policy'] === 'local/src->local/even'));

      const fixed = await readAll(s.root, 'fixed');
      assert.equal(fixed.length, N);
      assert.ok(fixed.every((e) => e.partition === 1));
      assert.deepEqual(verify(srcId, src, fixed), { lost: 0, duplicates: 0, outOfOrder: 0, mismatched: 0, maxCopies: 1 });

      const nodata = await readAll(s.root, 'nodata');
      assert.equal(nodata.length, N);
      assert.ok(nodata.every((e) => e.data.length === 0));
      assert.ok(src.some((e) => e.data.length > 0));
      assert.deepEqual(
        nodata.map((e) => e.dump),
        src.map((e) => e.dump),
      );

      const nohdr = await readAll(s.root, 'nohdr');
      assert.equal(nohdr.length, N);
      assert.ok(nohdr.every((e) => !Object.keys(e.headers).some((k) => k.startsWith('diaspora-'))), JSON.stringify(nohdr[0]?.headers));
      assert.deepEqual(
        nohdr.map((e) => e.dump),
        src.map((e) => e.dump),
      );
    } finally {
      s.cleanup();
    }
  });

  test('http: /healthz, /readyz, /metrics with events_sent_total', T, async () => {
    const port = await freePort();
    const s = await setup({ topLevel: ['http:', `  listen: "127.0.0.1:${port}"`] });
    let d: CtlProcess | undefined;
    try {
      await produce(s.root, 'src', events(0, 50, { partitions: 2 }));
      d = startDaemon(s);
      await d.waitForLog(RUNNING);
      assert.ok(await waitFor(async () => (await countEvents(s.root, 'dst')) >= 50, 15_000, 50), d.stderr);
      const health = await httpGet(port, '/healthz');
      assert.equal(health.status, 200);
      assert.equal(health.body, '{"status":"ok"}');
      const ready = await httpGet(port, '/readyz');
      assert.equal(ready.status, 200, ready.body);
      // the counter is updated once the destination confirmed the events
      let metrics = '';
      assert.ok(
        await waitFor(async () => {
          metrics = (await httpGet(port, '/metrics')).body;
          return new RegExp(`^diaspora_forward_events_sent_total\\{policy="${POLICY.replaceAll('/', '\\/')}"[^}]*\\} \\d+`, 'm').test(metrics);
        }, 10_000, 100),
        metrics,
      );
      const sent = [...metrics.matchAll(/^diaspora_forward_events_sent_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      assert.equal(sent, 50, metrics);
      assert.equal((await httpGet(port, '/nope')).status, 404);
      const { code } = await d.stop(10_000);
      assert.equal(code, 0, d.stderr);
    } finally {
      d?.kill();
      s.cleanup();
    }
  });
});
