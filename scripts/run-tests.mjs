#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's built-in runner (Node 20's `--test`
// does not expand globs, so the files are listed here).
//
// Kafka: when Kafka tests are selected and DIASPORA_KAFKA_BOOTSTRAP is not set, a real broker is
// started with scripts/kafka.sh (secure mode: PLAINTEXT, SASL_SSL, SASL_PLAINTEXT and SSL
// listeners) and stopped afterwards. Without Java or Maven the Kafka tests skip with a printed
// reason — except under CI=true, where that is an error.
//
// Skip reasons are printed once per run: the test processes get DIASPORA_TEST_ANNOUNCE_DIR, a
// directory where the first process to print a message creates its marker file (see
// test/helpers/kafka.ts); when this script printed why the Kafka tests skip, it creates the
// `kafka-skip` marker itself, so the test files stay quiet.
//
// Usage: node scripts/run-tests.mjs [substring-filter ...]
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const repo = new URL('..', import.meta.url).pathname;
const root = join(repo, 'dist', 'test');
const filters = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = walk(root).filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}

const ci = process.env.CI === 'true';
const env = { ...process.env };
let broker; // { dataDir }
let kafkaSkipPrinted = false;

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function startBroker() {
  const dataDir = mkdtempSync(join(tmpdir(), 'diaspora-kafka-'));
  console.log(`# starting a Kafka broker for the integration tests (scripts/kafka.sh, data in ${dataDir})`);
  const r = spawnSync('bash', [join(repo, 'scripts', 'kafka.sh'), 'start', '--mode', 'secure'], {
    env: { ...process.env, KAFKA_DATA_DIR: dataDir },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000, // the first run downloads the broker jars from Maven Central
  });
  const lines = (r.stdout ?? '').trim().split('\n');
  const bootstrap = lines[lines.length - 1];
  if (r.status !== 0 || !/^127\.0\.0\.1:\d+$/.test(bootstrap ?? '')) {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}.lock`, { force: true });
    throw new Error(`scripts/kafka.sh start failed (exit ${r.status})`);
  }
  broker = { dataDir };
  env.DIASPORA_KAFKA_BOOTSTRAP = bootstrap;
  env.DIASPORA_KAFKA_ENDPOINTS = join(dataDir, 'endpoints.json');
  console.log(`# Kafka broker ready at ${bootstrap}`);
}

function stopBroker() {
  if (broker === undefined) return;
  const { dataDir } = broker;
  broker = undefined;
  spawnSync('bash', [join(repo, 'scripts', 'kafka.sh'), 'stop', '--mode', 'secure'], {
    env: { ...process.env, KAFKA_DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 60_000,
  });
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${dataDir}.lock`, { force: true }); // scripts/kafka.sh serialises starts with this lock file
}

const wantsKafka = files.some((f) => /kafka/.test(relative(root, f)));
if (wantsKafka && env.DIASPORA_KAFKA_BOOTSTRAP === undefined) {
  const missing = ['java', 'mvn'].filter((c) => !have(c));
  if (missing.length > 0) {
    const reason = `Kafka integration tests skipped: ${missing.join(' and ')} not installed (install openjdk-17-jre-headless and maven)`;
    if (ci) {
      console.error(`${reason} — not allowed under CI=true`);
      process.exit(1);
    }
    console.log(`# ${reason}`);
    kafkaSkipPrinted = true;
  } else {
    try {
      startBroker();
    } catch (err) {
      console.error(`# ${err.message}`);
      if (ci) process.exit(1);
      console.log('# Kafka integration tests skipped: the broker did not start');
      kafkaSkipPrinted = true;
    }
  }
}

const announceDir = mkdtempSync(join(tmpdir(), 'diaspora-test-announce-'));
env.DIASPORA_TEST_ANNOUNCE_DIR = announceDir;
if (kafkaSkipPrinted) writeFileSync(join(announceDir, 'kafka-skip'), '');

// --test-timeout also bounds each file (node runs a file as one test): the longest, connection-resets
// (its own broker's start ≤ 120 s, then tests bounded at 150 s and 60 s), must fit with room to spare
const args = ['--test', '--test-reporter=spec', '--test-timeout=600000', '--test-concurrency=2', ...files];
const child = spawn(process.execPath, args, { stdio: 'inherit', env });
const forward = (sig) => child.kill(sig);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
child.on('exit', (code, signal) => {
  stopBroker();
  rmSync(announceDir, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
