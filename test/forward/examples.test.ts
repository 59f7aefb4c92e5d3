/**
 * Every `examples/*.yaml` of the repository passes `diaspora-ctl forward --config <file> --check`
 * (diaspora-ctl.md §8: validate the configuration, open every driver and topic, exit 0/1 without forwarding).
 *
 * Each example is run from a copy of the examples folder in a temporary directory (so module paths relative to the
 * configuration, e.g. filters, resolve), with absolute `root_path`s rewritten into that directory and every topic
 * the policies name created there. Files-only examples must pass (exit 0) — and fail with the missing-topic error
 * before the topics exist, which shows --check really opens them. An example with a Kafka driver has its
 * `bootstrap.servers` pointed at a closed local port: --check must fail with a Kafka connection error, exit 1.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadForwardConfig } from '../../src/forward/config.js';
import { ROOT, countEvents, createTopic, freePort, logLines, runCtl, tempDir, type RunResult } from '../helpers/cli.js';

const T = { timeout: 90_000 };
const EXAMPLES = join(ROOT, 'examples');
const OK = '[info] Configuration OK: every driver and topic opened.';
const KAFKA_TYPES = new Set(['kafka', 'octopus']);

const yamls = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();

function errorLines(r: RunResult): string[] {
  return logLines(r.stderr).filter((l) => l.startsWith('[error] '));
}

/**
 * Copies examples/ into `dir/examples` and rewrites `file` there: absolute `root_path` values become
 * `dir/abs-root-<n>`, every `bootstrap.servers` becomes `127.0.0.1:<closedPort>`. Returns the copy's path.
 */
function prepare(dir: string, file: string, closedPort: number): string {
  const copy = join(dir, 'examples');
  cpSync(EXAMPLES, copy, { recursive: true });
  const path = join(copy, file);
  let n = 0;
  const text = readFileSync(path, 'utf8')
    .replace(/(root_path:\s*)(["']?)(\/[^"'\s,}]*)\2/g, (_m, key: string) => `${key}${JSON.stringify(join(dir, `abs-root-${++n}`))}`)
    .replace(/(bootstrap\.servers["']?:\s*)(["']?)[^"'\s,}]+\2/g, (_m, key: string) => `${key}"127.0.0.1:${closedPort}"`);
  writeFileSync(path, text);
  return path;
}

describe('examples/*.yaml pass forward --check', { concurrency: 2 }, () => {
  test('the examples folder has files-only examples (this test cannot pass on an empty list)', () => {
    assert.ok(yamls.includes('files-to-files.yaml'), `examples: ${yamls.join(', ')}`);
    assert.ok(yamls.length >= 3, `examples: ${yamls.join(', ')}`);
  });

  for (const file of yamls) {
    test(`examples/${file}`, T, async () => {
      const { dir, cleanup } = tempDir('diaspora-examples-test-');
      try {
        const closedPort = await freePort();
        const config = prepare(dir, file, closedPort);
        const cfg = loadForwardConfig(config);
        assert.ok(cfg.policies.length > 0, `${file} has no forwarding policy`);
        const types = [...cfg.drivers.values()].map((d) => d.type);
        for (const t of types) assert.ok(t === 'files' || KAFKA_TYPES.has(t), `${file}: driver type ${t} is not covered by this test`);
        const filesOnly = types.every((t) => t === 'files');

        // the files topics every policy names, under the root_path of its driver (relative to the working directory)
        const topics: { root: string; topic: string }[] = [];
        for (const p of cfg.policies) {
          for (const end of [p.from, p.to]) {
            const d = cfg.drivers.get(end.driver);
            assert.ok(d !== undefined);
            if (d.type !== 'files') continue;
            const rootPath = d.options['root_path'];
            assert.equal(typeof rootPath, 'string', `${file}: driver ${end.driver} has no root_path`);
            const root = resolve(dir, rootPath as string);
            assert.ok(root.startsWith(dir + '/'), `${file}: root_path ${String(rootPath)} is outside the test directory`);
            if (!topics.some((x) => x.root === root && x.topic === end.topic)) topics.push({ root, topic: end.topic });
          }
        }
        assert.ok(topics.length > 0);

        if (filesOnly) {
          // before the topics exist: --check opens them and fails
          const missing = await runCtl(['forward', '--config', config, '--check'], { cwd: dir, timeoutMs: 60_000 });
          assert.equal(missing.code, 1, missing.stderr);
          assert.equal(missing.stdout, '');
          const errs = errorLines(missing);
          assert.equal(errs.length, 1, missing.stderr);
          assert.ok((errs[0] as string).startsWith('[error] Diaspora error: Topic directory does not exist: '), missing.stderr);
        }

        for (const t of topics) await createTopic(t.root, t.topic, { num_partitions: 2 });
        const r = await runCtl(['forward', '--config', config, '--check'], { cwd: dir, timeoutMs: 60_000 });
        assert.equal(r.stdout, '');
        if (filesOnly) {
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(errorLines(r), [], r.stderr);
          const lines = logLines(r.stderr);
          assert.ok(lines.includes(OK), r.stderr);
          for (const p of cfg.policies) assert.ok(lines.includes(`[info] Created forward policy: ${p.from.ref} -> ${p.to.ref}`), r.stderr);
          // --check does not start forwarding
          assert.ok(!lines.some((l) => l.startsWith('[info] Forwarding daemon running')), r.stderr);
          for (const t of topics) assert.equal(await countEvents(t.root, t.topic), 0);
        } else {
          // a Kafka driver whose broker cannot be reached
          assert.equal(r.code, 1, r.stderr);
          const errs = errorLines(r);
          assert.equal(errs.length, 1, r.stderr);
          assert.ok((errs[0] as string).startsWith('[error] Diaspora error: '), r.stderr);
          assert.match(errs[0] as string, /Kafka/, r.stderr);
          assert.ok((errs[0] as string).includes(`127.0.0.1:${closedPort}`), `the error names the unreachable broker\n${r.stderr}`);
          assert.ok(!logLines(r.stderr).includes(OK), r.stderr);
        }
      } finally {
        cleanup();
      }
    });
  }
});
