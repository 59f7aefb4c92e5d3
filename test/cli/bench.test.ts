/**
 * `diaspora-ctl bench produce` / `bench consume` through the CLI, with the files driver in a temporary root. Small runs
 * only, and no assertion on the measured speeds.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';
import { CtlProcess, waitFor } from '../helpers/cli.js';
import { DataDescriptor } from '../../src/api/data-descriptor.js';
import { Metadata } from '../../src/api/metadata.js';
import { makeMetadata, median, metadataRingSize, Random, warmupRounds } from '../../src/bench/common.js';
import { makeBenchSelector, stridedView } from '../../src/bench/selector.js';
import { NoDataSelector } from '../../src/api/data-selection.js';

const dir = mkdtempSync(join(tmpdir(), 'diaspora-bench-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const root = join(dir, 'data');
const CTL = join(repoRoot(), 'bin', 'diaspora-ctl');

function ctl(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CTL, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, DIASPORA_CTL_LOG_STDOUT: '' } });
}

/** The number after `<name>: ` on its line of stdout. */
function value(stdout: string, name: string): number {
  const m = new RegExp(`^${name}: (\\S+)`, 'm').exec(stdout);
  assert.ok(m, `no "${name}:" line in:\n${stdout}`);
  return Number(m[1]);
}

function assertResults(r: SpawnSyncReturns<string>, events: number): void {
  assert.equal(r.status, 0, `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  assert.match(r.stdout, /^--- Benchmark Options ---$/m);
  assert.match(r.stdout, /^--- Benchmark Results ---$/m);
  assert.match(r.stdout, /^Throughput: \d+(\.\d+)? events\/s$/m);
  assert.match(r.stdout, /^Bandwidth: \d+(\.\d+)? MB\/s$/m);
  assert.ok(value(r.stdout, 'Throughput') > 0);
  assert.ok(value(r.stdout, 'Bandwidth') > 0);
  assert.ok(value(r.stdout, 'Total time') > 0);
  assert.equal(value(r.stdout, 'Total events'), events);
  // ours: the process's CPU time during the timed part
  assert.match(r.stdout, /^CPU time: \d+\.\d{3} us\/event \(user \d+\.\d{3} s, system \d+\.\d{3} s\)$/m);
  assert.ok(value(r.stdout, 'CPU time') > 0);
}

const N = 2000;

test('bench produce (short flags, like diaspora-producer-benchmark) creates the topic and reports', () => {
  const r = ctl('bench', 'produce', '-d', 'files', '--driver.root_path', root, '-t', 'b1', '-n', String(N), '-m', '64', '-s', '256', '-b', '128', '-f', '500', '-p', '1');
  assertResults(r, N);
  assert.equal(value(r.stdout, 'Metadata size'), 64);
  assert.equal(value(r.stdout, 'Data size'), 256);
  assert.equal(value(r.stdout, 'Batch size'), 128);
  assert.equal(value(r.stdout, 'Flush interval'), 500);
  assert.equal(value(r.stdout, 'Number of threads'), 1);
  assert.match(r.stderr, /Creating topic: b1/);
  const part = join(root, 'b1', 'partitions', '00000000');
  assert.equal(statSync(join(part, 'index')).size, N * 32);
  assert.equal(statSync(join(part, 'data')).size, N * 256);
  // 64 bytes of JSON text + the 8-byte record header per event
  assert.equal(statSync(join(part, 'metadata')).size, N * (64 + 8));
});

test('bench produce (long flags) appends to an existing topic; --topic.* creates partitions', () => {
  let r = ctl(
    'bench', 'produce', '--driver', 'files', '--driver.root_path', root, '--topic', 'b2', '--topic.num_partitions', '2',
    '--num-events', '1000', '--metadata-size', '16', '--data-size', '0', '--batch-size', '64', '--num-threads', '0', '--flush-interval', '1000',
  );
  assertResults(r, 1000);
  assert.ok(existsSync(join(root, 'b2', 'partitions', '00000001')));
  r = ctl('bench', 'produce', '--driver', 'files', '--driver.root_path', root, '--topic', 'b2', '-n', '1000', '-b', 'adaptive');
  assertResults(r, 1000);
  assert.doesNotMatch(r.stderr, /Creating topic/);
  const sizes = ['00000000', '00000001'].map((p) => statSync(join(root, 'b2', 'partitions', p, 'index')).size / 32);
  assert.equal(sizes[0]! + sizes[1]!, 2000);
});

test('bench consume reads exactly n events with all their data', () => {
  const r = ctl('bench', 'consume', '-d', 'files', '--driver.root_path', root, '-t', 'b1', '-n', String(N));
  assertResults(r, N);
  assert.equal(value(r.stdout, 'Events with data'), N);
  assert.equal(value(r.stdout, 'Data bytes read'), N * 256);
  assert.equal(value(r.stdout, 'Data interest'), 1);
  assert.equal(value(r.stdout, 'Data selectivity'), 1);
});

test('bench consume reads fewer events than the topic holds, with any pool size', () => {
  for (const p of ['0', '1', '2']) {
    const r = ctl('bench', 'consume', '--driver', 'files', '--driver.root_path', root, '--topic', 'b1', '--num-events', '500', '--num-threads', p);
    assertResults(r, 500);
    assert.equal(value(r.stdout, 'Data bytes read'), 500 * 256);
  }
});

test('bench consume with data interest and selectivity reads only the selected bytes', () => {
  let r = ctl('bench', 'consume', '-d', 'files', '--driver.root_path', root, '-t', 'b1', '-n', String(N), '-i', '0.5', '-s', '0.25');
  assertResults(r, N);
  const withData = value(r.stdout, 'Events with data');
  assert.ok(withData > 0 && withData < N, `events with data: ${withData}`);
  assert.equal(value(r.stdout, 'Data bytes read'), withData * 64);

  r = ctl('bench', 'consume', '-d', 'files', '--driver.root_path', root, '-t', 'b1', '-n', String(N), '--data-interest', '1', '--data-selectivity', '0.5', '--selection', 'strided', '--block-size', '32');
  assertResults(r, N);
  assert.equal(value(r.stdout, 'Events with data'), N);
  assert.equal(value(r.stdout, 'Data bytes read'), N * 128);

  r = ctl('bench', 'consume', '-d', 'files', '--driver.root_path', root, '-t', 'b1', '-n', String(N), '-i', '0');
  assertResults(r, N);
  assert.equal(value(r.stdout, 'Events with data'), 0);
  assert.equal(value(r.stdout, 'Data bytes read'), 0);
});

test('bench consume stops at --timeout when the topic has fewer events', () => {
  const r = ctl('bench', 'consume', '-d', 'files', '--driver.root_path', root, '-t', 'b1', '-n', String(N + 1), '--timeout', '0.5');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\[error\] Error: Benchmark did not finish within 0\.5 s \(--timeout\): 2000\/2001 events received/);
  assert.doesNotMatch(r.stdout, /Throughput/);
});

test('--cpu-prof writes a profile of the timed loop', () => {
  const file = join(dir, 'loop.cpuprofile');
  const r = ctl('bench', 'consume', '-d', 'files', '--driver.root_path', root, '-t', 'b1', '-n', '100', '--cpu-prof', file);
  assertResults(r, 100);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: unknown[] };
  assert.ok(Array.isArray(profile.nodes) && profile.nodes.length > 0);
});

test('SIGINT / SIGTERM during the warm-up: the scratch topic <topic>-warmup-<pid>-<round> is deleted, exit 130 / 143', { timeout: 120_000 }, async () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    const sigRoot = join(dir, `sig-${signal}`);
    const p = new CtlProcess(['bench', 'produce', '-d', 'files', '--driver.root_path', sigRoot, '-t', 'sig', '-n', '10', '--warmup', '30000000'], dir);
    try {
      const scratch = join(sigRoot, `sig-warmup-${p.pid}-0`);
      assert.ok(await waitFor(() => existsSync(scratch) || !p.running, 30_000), p.stderr);
      assert.ok(p.running, `the warm-up ended before the signal:\n${p.stderr}`);
      p.signal(signal);
      const exit = await p.exit(30_000);
      assert.equal(exit.code, code, p.stderr);
      assert.ok(p.logLines.includes(`[warning] Interrupted by ${signal}`), p.stderr);
      assert.ok(!existsSync(scratch), 'the scratch topic is deleted');
      assert.deepEqual(
        readdirSync(sigRoot).filter((f) => f.startsWith('sig-warmup-')),
        [],
        'no later round started',
      );
      assert.ok(existsSync(join(sigRoot, 'sig')), "the benchmark's own topic stays");
    } finally {
      p.kill();
    }
  }
});

test('warm-up rounds: --warmup events split over --warmup-rounds, each on its own scratch topic (produce) or consumer', () => {
  assert.deepEqual(warmupRounds(10, 3), [4, 3, 3]);
  assert.deepEqual(warmupRounds(2, 4), [1, 1], 'no empty round');
  assert.deepEqual(warmupRounds(0, 4), []);
  assert.deepEqual(warmupRounds(1000, 4, 100), [100, 100, 100, 100], 'consume: at most -n per round');
  const wroot = join(dir, 'warmup-rounds');
  const p = ctl('bench', 'produce', '-d', 'files', '--driver.root_path', wroot, '-t', 'w', '-n', '50', '-m', '16', '--warmup', '1000', '--warmup-rounds', '3');
  assertResults(p, 50);
  assert.equal(value(p.stdout, 'Warm-up events'), 1000);
  assert.deepEqual(readdirSync(wroot).sort(), ['w'], 'every scratch topic deleted');
  const c = ctl('bench', 'consume', '-d', 'files', '--driver.root_path', wroot, '-t', 'w', '-n', '50', '--warmup', '1000', '--warmup-rounds', '3');
  assertResults(c, 50);
  assert.equal(value(c.stdout, 'Warm-up events'), 150, '3 rounds of at most -n events');
  const bad = ctl('bench', 'produce', '-d', 'files', '--driver.root_path', wroot, '-t', 'w', '--warmup-rounds', '0');
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /--warmup-rounds/);
});

test('parse errors: unknown flag, bad values, missing required options', () => {
  const cases: string[][] = [
    ['bench', 'produce', '-d', 'files', '-t', 'x', '--bogus'],
    ['bench', 'produce', '-d', 'files', '-t', 'x', '-n', 'many'],
    ['bench', 'produce', '-d', 'files', '-t', 'x', '-b', '0'],
    ['bench', 'produce', '-d', 'files', '-n', '10'],
    ['bench', 'produce', '-d', 'files', '-t', 'x', '--validator.x', '1'],
    ['bench', 'consume', '-d', 'files', '-t', 'x', '-i', '2'],
    ['bench', 'consume', '-d', 'files', '-t', 'x', '-s', '-0.5'],
    ['bench', 'consume', '-d', 'files', '-t', 'x', '--selection', 'random'],
    ['bench', 'consume', '-t', 'x'],
  ];
  for (const args of cases) {
    const r = ctl(...args, '--driver.root_path', root);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, /^PARSE ERROR: /, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});

test('bench produce -s / -m beyond their bounds (1 GiB, 16 MiB): PARSE ERROR naming the option and the bound; --help says them', () => {
  for (const [flag, value, expected] of [
    ['-s', '3000000000', "PARSE ERROR: option '-s, --data-size <bytes>' argument '3000000000' is invalid. Expected at most 1073741824 bytes (1 GiB)."],
    ['-m', '600000000', "PARSE ERROR: option '-m, --metadata-size <bytes>' argument '600000000' is invalid. Expected at most 16777216 bytes (16 MiB)."],
  ] as const) {
    const r = ctl('bench', 'produce', '-d', 'files', '--driver.root_path', root, '-t', 'bounds', flag, value);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.split('\n')[0], expected);
    assert.equal(r.stdout, '');
  }
  const help = ctl('bench', 'produce', '--help').stdout.replace(/\s+/g, ' ');
  assert.match(help, /-s, --data-size <bytes> size of the data in each event in bytes \(at most 1 GiB\)/);
  assert.match(help, /-m, --metadata-size <bytes> size of the metadata of each event in bytes \(JSON text; at least 2, at most 16 MiB\)/);
});

test('the metadata ring holds at most 64 MiB of text (16 MiB metadata: 4 objects), at least 1 object', () => {
  assert.equal(metadataRingSize(1000, 64), 1000);
  assert.equal(metadataRingSize(1_000_000, 64), 65536);
  assert.equal(metadataRingSize(1000, 16 << 20), 4);
  assert.equal(metadataRingSize(0, 0), 1);
});

test('bench consume of an unknown topic is a runtime error', () => {
  const r = ctl('bench', 'consume', '-d', 'files', '--driver.root_path', root, '-t', 'nosuch', '-n', '10');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\[error\] Error: Topic directory does not exist: /);
  assert.doesNotMatch(r.stdout, /Throughput/);
});

test('--help and --version', () => {
  let r = ctl('bench', 'produce', '--help');
  assert.equal(r.status, 0);
  for (const f of ['-d, --driver', '-c, --driver-config', '-t, --topic', '-n, --num-events', '-s, --data-size', '-m, --metadata-size', '-b, --batch-size', '-p, --num-threads', '-f, --flush-interval']) {
    assert.ok(r.stdout.includes(f), f);
  }
  r = ctl('bench', 'consume', '--help');
  assert.equal(r.status, 0);
  for (const f of ['-d, --driver', '-c, --driver-config', '-t, --topic', '-n, --num-events', '-p, --num-threads', '-s, --data-selectivity', '-i, --data-interest']) {
    assert.ok(r.stdout.includes(f), f);
  }
  r = ctl('bench', 'consume', '--version');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /consume {2}version: /);
});

// ---------------------------------------------------------------------------------------------
// Helpers (in-process)

test('benchmark metadata has exactly the requested size', () => {
  const rng = new Random(1);
  for (const size of [2, 3, 7, 8, 9, 64, 128, 1000]) {
    const md = makeMetadata(rng, size);
    assert.equal(Buffer.byteLength(md.dump()), size, String(size));
    assert.doesNotThrow(() => Metadata.parse(md.dump()));
  }
  assert.equal(makeMetadata(rng, 0).dump(), '{}');
  assert.match(makeMetadata(rng, 20).dump(), /^\{"p":"[0-9A-Za-z]{12}"\}$/);
});

test('bench selector: shortcuts, sub views and strided views', () => {
  assert.equal(makeBenchSelector({ interest: 1, selectivity: 1, mode: 'contiguous', blockSize: 512 }), undefined);
  assert.equal(makeBenchSelector({ interest: 0, selectivity: 1, mode: 'contiguous', blockSize: 512 }), NoDataSelector);
  assert.equal(makeBenchSelector({ interest: 1, selectivity: 0, mode: 'strided', blockSize: 512 }), NoDataSelector);
  const md = new Metadata({});
  const full = new DataDescriptor('', 4096);
  const sel = makeBenchSelector({ interest: 1, selectivity: 0.25, mode: 'contiguous', blockSize: 512 })!;
  assert.deepEqual(sel(md, full)!.flatten(), [{ offset: 0, size: 1024 }]);
  const half = makeBenchSelector({ interest: 0.5, selectivity: 0.25, mode: 'contiguous', blockSize: 512, seed: 7 })!;
  let picked = 0;
  for (let i = 0; i < 10000; i++) if (half(md, full) != null) picked++;
  assert.ok(picked > 4500 && picked < 5500, String(picked));
  // strided: 2 blocks of 512 bytes, one every 2048 bytes
  assert.deepEqual(stridedView(full, 0.25, 512).flatten(), [{ offset: 0, size: 512 }, { offset: 2048, size: 512 }]);
  for (const [size, s, b] of [[4096, 0.3, 100], [1000, 0.99, 7], [10, 0.5, 512], [4096, 1, 512]] as const) {
    const v = stridedView(new DataDescriptor('', size), s, b);
    const ranges = v.flatten();
    const total = ranges.reduce((n, r) => n + r.size, 0);
    assert.equal(total, v.size);
    const want = Math.floor(size * s);
    // k = max(1, ⌊want / b⌋) blocks of ⌊want / k⌋ bytes: less than k bytes lost to rounding
    assert.ok(total <= want && want - total < Math.max(1, Math.floor(want / b)), `${size} ${s} ${b}: ${total}`);
    assert.ok(ranges.every((r) => r.offset + r.size <= size));
  }
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});

test('progress bar: drawn on stderr only when it is a terminal, and erased at the end', { timeout: 120_000 }, () => {
  // a pipe: no bar
  const piped = ctl('bench', 'produce', '-d', 'files', '--driver.root_path', root, '-t', 'progress-pipe', '-n', '200000', '-b', '128', '-m', '16', '--warmup', '0');
  assert.equal(piped.status, 0, piped.stderr);
  assert.ok(!piped.stderr.includes('\r['), 'no progress bar on a pipe');
  // a terminal (script(1) gives the command a pseudo-terminal; its output comes back on our stdout)
  const cmd = [process.execPath, CTL, 'bench', 'produce', '-d', 'files', '--driver.root_path', root, '-t', 'progress-tty', '-n', '2000000', '-b', '128', '-m', '16', '--warmup', '0']
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, DIASPORA_CTL_LOG_STDOUT: '' } });
  assert.equal(tty.status, 0, tty.stdout + tty.stderr);
  assert.match(tty.stdout, /\r\[#*\.*\] +\d+% \d+\/2000000 events/, 'a progress bar line');
  assert.ok(tty.stdout.includes('\r\x1b[2K'), 'the bar is erased');
  assert.match(tty.stdout, /Throughput: /);
});
