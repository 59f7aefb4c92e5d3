/**
 * `scripts/kafka.sh --mode multi`: three independent single-node clusters (for cross-cluster work). start prints one
 * bootstrap address per cluster, each a cluster of its own (a topic created on one is on no other), status reports
 * them, and stop ends every broker by pid.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Driver } from '../../../src/index.js';
import { ROOT } from '../../helpers/cli.js';
import { kafkaSuite, uniqueName } from '../../helpers/kafka.js';

const SCRIPT = join(ROOT, 'scripts', 'kafka.sh');

kafkaSuite('scripts/kafka.sh --mode multi: three independent clusters', () => {
  const dir = mkdtempSync(join(tmpdir(), 'diaspora-multi-'));
  const run = (cmd: string, timeout: number) =>
    spawnSync('bash', [SCRIPT, cmd, '--mode', 'multi'], { env: { ...process.env, KAFKA_DATA_DIR: dir }, encoding: 'utf8', timeout });
  const pids = (): number[] => [1, 2, 3].map((i) => Number(readFileSync(join(dir, `c${i}`, 'broker.pid'), 'utf8').trim()));
  // running, not a zombie: a broker whose parent (the script's shell) exited may wait to be reaped
  const alive = (pid: number): boolean => {
    try {
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[0];
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  };
  let started: ReturnType<typeof run> | undefined;
  let brokers: number[] = [];

  before(() => {
    started = run('start', 240_000);
    try {
      brokers = pids();
    } catch {
      brokers = [];
    }
  });

  after(() => {
    run('stop', 120_000);
    for (const pid of brokers) if (alive(pid)) process.kill(pid, 'SIGKILL'); // only if stop failed: ours, by pid
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.lock`, { force: true });
  });

  it('start prints 3 bootstraps; each is a cluster of its own; status; stop ends the 3 brokers', { timeout: 300_000 }, async () => {
    const r = started as ReturnType<typeof run>;
    assert.equal(r.status, 0, `start failed:\n${r.stderr}`);
    const bootstraps = r.stdout.trim().split('\n');
    assert.equal(bootstraps.length, 3, r.stdout);
    for (const b of bootstraps) assert.match(b, /^127\.0\.0\.1:\d+$/);
    assert.equal(new Set(bootstraps).size, 3, 'distinct addresses');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'endpoints.json'), 'utf8')), { mode: 'multi', bootstraps });
    assert.equal(brokers.length, 3);
    assert.ok(brokers.every(alive), `broker pids ${brokers.join(' ')}`);

    const status = run('status', 30_000);
    assert.equal(status.status, 0, status.stdout + status.stderr);
    assert.deepEqual(status.stdout.trim().split('\n').slice(-3), bootstraps);

    const drivers = await Promise.all(bootstraps.map((b) => Driver.create('kafka', { kafka: { 'bootstrap.servers': b } })));
    try {
      const names = bootstraps.map((_, i) => uniqueName(`only-on-c${i + 1}`));
      for (const [i, d] of drivers.entries()) await d.createTopic(names[i] as string, { options: { num_partitions: 1, replication_factor: 1 } });
      for (const [i, d] of drivers.entries()) {
        for (const [j, name] of names.entries()) assert.equal(await d.topicExists(name), i === j, `cluster ${i + 1} has ${name}: ${i === j}`);
        const t = await d.openTopic(names[i] as string);
        const p = await t.producer();
        for (let k = 0; k < 3; k++) void p.push({ cluster: i + 1, k });
        await p.close();
        const c = await t.consumer('', { startFrom: 'earliest' });
        const got = [];
        for (let k = 0; k < 3; k++) got.push((await c.pull().wait(20_000))?.metadata.json);
        assert.deepEqual(got, [0, 1, 2].map((k) => ({ cluster: i + 1, k })));
        await c.close();
        await t.close();
      }
    } finally {
      for (const d of drivers) await d.close();
    }

    const stop = run('stop', 120_000);
    assert.equal(stop.status, 0, stop.stderr);
    assert.deepEqual(brokers.filter(alive), [], 'every broker ended');
    assert.notEqual(run('status', 30_000).status, 0, 'status after stop');
  });
});
