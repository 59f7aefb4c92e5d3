/**
 * `diaspora-ctl topic …`, `produce` and `consume` against a real Kafka broker (diaspora-ctl.md §5–§7 with the kafka
 * driver and its `octopus` alias, kafka-octopus.md §1, §3, §4): create with partitions and replication factor, list
 * (with `-v` descriptions), duplicate create, a produce / consume round trip, a closed bootstrap port, delete.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Driver } from '../../src/api/driver.js';
import { freePort, logLines, runCtl, tempDir } from '../helpers/cli.js';
import { kafkaSuite, uniqueName, writeCommittedTransaction, type KafkaEnv } from '../helpers/kafka.js';

/** Each step runs diaspora-ctl (about 1 s alone, several on a loaded 2-core machine: these tests took 30-50 s in CI runs), up to 8 steps per test, 4 tests at once. */
const T = { timeout: 150_000 };

kafkaSuite('diaspora-ctl with the kafka driver', (env: KafkaEnv) => {
  const { dir, cleanup } = tempDir('diaspora-kafka-cli-');
  const cfg = join(dir, 'cfg.json');
  writeFileSync(cfg, JSON.stringify({ kafka: { 'bootstrap.servers': env.bootstrap } }));
  /** Topics to delete (best effort) when the suite ends, whatever happened. */
  const created: string[] = [];

  after(async () => {
    try {
      const d = await Driver.create('kafka', { kafka: { 'bootstrap.servers': env.bootstrap } });
      for (const name of created) await d.deleteTopic(name).catch(() => undefined);
      await d.close();
    } finally {
      cleanup();
    }
  });

  const ctl = (args: string[], input?: string, timeoutMs = 30_000) => runCtl(args, { cwd: dir, timeoutMs, ...(input !== undefined ? { input } : {}) });
  const errors = (stderr: string): string[] => logLines(stderr).filter((l) => l.startsWith('[error] '));

  /** `topic list` lines (plain and -v) for `name`. */
  async function listed(driver: string, name: string): Promise<{ plain: string[]; verbose: string[] }> {
    const plain = await ctl(['topic', 'list', '--driver', driver, '--driver-config', 'cfg.json']);
    assert.equal(plain.code, 0, plain.stderr);
    const verbose = await ctl(['topic', 'list', '--driver', driver, '--driver-config', 'cfg.json', '-v']);
    assert.equal(verbose.code, 0, verbose.stderr);
    return {
      plain: plain.stdout.split('\n').filter((l) => l === name),
      verbose: verbose.stdout.split('\n').filter((l) => l.startsWith(name + ' ')),
    };
  }

  describe('commands', { concurrency: 4 }, () => {
    for (const driver of ['kafka', 'octopus']) {
      test(`--driver ${driver}: topic create / list / list -v / create again / delete`, T, async () => {
        const name = uniqueName(`cli-${driver}`);
        created.push(name);
        const create = ['topic', 'create', '--driver', driver, '--driver-config', 'cfg.json', '--name', name, '--topic.num_partitions', '3', '--topic.replication_factor', '1'];
        let r = await ctl(create);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(logLines(r.stderr).includes(`[info] Topic '${name}' created successfully`), r.stderr);

        const l = await listed(driver, name);
        assert.deepEqual(l.plain, [name]);
        assert.equal(l.verbose.length, 1, `topic list -v has no line for ${name}`);
        const desc = JSON.parse((l.verbose[0] as string).slice(name.length + 1)) as Record<string, unknown>;
        const def = { type: 'default' };
        assert.deepEqual(desc, { name, num_partitions: 3, validator: def, selector: def, partition_selector: def, serializer: def });

        r = await ctl(create);
        assert.equal(r.code, 1, r.stderr);
        assert.deepEqual(errors(r.stderr), [`[error] Error: Topic already exists: ${name}`]);

        // the partition count and replication factor really reached the broker
        const d = await Driver.create('kafka', { kafka: { 'bootstrap.servers': env.bootstrap } });
        try {
          const t = await d.openTopic(name);
          assert.equal(t.partitions.length, 3);
          await t.close();
        } finally {
          await d.close();
        }

        r = await ctl(['topic', 'delete', '--driver', driver, '--driver-config', 'cfg.json', '--name', name]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(logLines(r.stderr).includes(`[info] Topic '${name}' deleted`), r.stderr);
        const after = await listed(driver, name);
        assert.deepEqual(after, { plain: [], verbose: [] });
      });
    }

    test('consume (no --follow) of a topic ending with a transaction marker: every event, exit 0 without waiting for the idle limit', T, async () => {
      const name = uniqueName('cli-tx');
      created.push(name);
      const r0 = await ctl(['topic', 'create', '--driver', 'kafka', '--driver-config', 'cfg.json', '--name', name, '--topic.num_partitions', '1', '--topic.replication_factor', '1']);
      assert.equal(r0.code, 0, r0.stderr);
      // another client's committed transaction: 2 records, then its commit marker (the partition's end is past it)
      await writeCommittedTransaction(env.bootstrap, name, [0, 1]);
      const started = Date.now();
      const r = await ctl(['consume', '--driver', 'kafka', '--driver-config', 'cfg.json', '--name', name, '--from-beginning', '--no-data']);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        r.stdout
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => (JSON.parse(l) as { metadata: unknown }).metadata),
        [{ seq: 0 }, { seq: 1 }],
      );
      // the end is known at once past the marker (the idle limit is 30 s)
      assert.ok(seconds < 20, `consume took ${seconds} s`);
    });

    test('produce / consume --from-beginning round trip through Kafka (kafka and octopus)', T, async () => {
      const name = uniqueName('cli-rt');
      created.push(name);
      let r = await ctl(['topic', 'create', '--driver', 'kafka', '--driver-config', 'cfg.json', '--name', name, '--topic.num_partitions', '3', '--topic.replication_factor', '1']);
      assert.equal(r.code, 0, r.stderr);

      const sent = Array.from({ length: 30 }, (_, i) => ({ i, s: `line "${i}" é✓`, nested: { a: [i, null, true] } }));
      r = await ctl(['produce', '--driver', 'octopus', '--driver-config', 'cfg.json', '--name', name, '--format', 'json'], sent.map((m) => JSON.stringify(m)).join('\n') + '\n');
      assert.equal(r.code, 0, r.stderr);
      assert.ok(logLines(r.stderr).includes(`[info] Produced 30 event(s) to ${name}`), r.stderr);
      // events with data (raw format: the line is the metadata string)
      writeFileSync(join(dir, 'payload.bin'), Buffer.from([0, 1, 2, 255, 254]));
      r = await ctl(['produce', '--driver', 'kafka', '--driver-config', 'cfg.json', '--name', name, '--data-file', 'payload.bin', '--partition', '2'], 'with data\n');
      assert.equal(r.code, 0, r.stderr);

      for (const driver of ['kafka', 'octopus']) {
        r = await ctl(['consume', '--driver', driver, '--driver-config', 'cfg.json', '--name', name, '--from-beginning']);
        assert.equal(r.code, 0, r.stderr);
        const recs = r.stdout
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as { partition: number; id: number; metadata: unknown; data_size: number; data: string });
        assert.equal(recs.length, 31, r.stdout);
        // the default selector spreads the 30 pushes round-robin over the 3 partitions; per partition, in order
        const jsonRecs = recs.filter((x) => typeof x.metadata === 'object');
        assert.deepEqual(
          [...jsonRecs].sort((a, b) => (a.metadata as { i: number }).i - (b.metadata as { i: number }).i).map((x) => x.metadata),
          sent,
        );
        for (let p = 0; p < 3; p++) {
          const ofP = recs.filter((x) => x.partition === p);
          assert.deepEqual(
            ofP.map((x) => x.id),
            ofP.map((_, k) => k),
            `partition ${p}: ids`,
          );
          const seqs = ofP.filter((x) => typeof x.metadata === 'object').map((x) => (x.metadata as { i: number }).i);
          assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), `partition ${p}: order`);
          assert.equal(seqs.length, 10, `partition ${p}: round robin`);
        }
        for (const x of jsonRecs) assert.equal(x.data_size, 0);
        const withData = recs.filter((x) => x.metadata === 'with data');
        assert.equal(withData.length, 1);
        assert.equal(withData[0]?.partition, 2);
        assert.equal(withData[0]?.data_size, 5);
        assert.equal(withData[0]?.data, Buffer.from([0, 1, 2, 255, 254]).toString('base64'));
      }
    });

    test('bench produce / bench consume -d kafka (issue 3 §4): every event, the result lines, warm-up topics deleted', { timeout: 120_000 }, async () => {
      const name = uniqueName('cli-bench');
      created.push(name);
      // the default warm-up: 4 rounds, each on its own scratch topic <name>-warmup-<pid>-<k>, deleted after it
      let r = await ctl(
        ['bench', 'produce', '-d', 'kafka', '-c', 'cfg.json', '-t', name, '-n', '3000', '-m', '104', '-s', '24', '-b', '500', '-p', '0', '--warmup', '2000', '--topic.num_partitions', '1', '--topic.replication_factor', '1'],
        undefined,
        90_000,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Total events: 3000$/m);
      assert.match(r.stdout, /^Warm-up events: 2000$/m);
      assert.match(r.stdout, /^Throughput: \d+(\.\d+)? events\/s$/m);
      assert.match(r.stdout, /^Bandwidth: \d+(\.\d+)? MB\/s$/m);
      const list = await ctl(['topic', 'list', '--driver', 'kafka', '--driver-config', 'cfg.json']);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(
        list.stdout.split('\n').filter((l) => l.startsWith(`${name}-warmup-`)),
        [],
        'every warm-up topic deleted',
      );
      r = await ctl(['bench', 'consume', '-d', 'kafka', '-c', 'cfg.json', '-t', name, '-n', '3000', '--warmup', '1000'], undefined, 90_000);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Total events: 3000$/m);
      assert.match(r.stdout, /^Events with data: 3000$/m);
      assert.match(r.stdout, /^Data bytes read: 72000$/m);
      assert.match(r.stdout, /^Throughput: \d+(\.\d+)? events\/s$/m);
    });

    test('a closed bootstrap port: [error] Error: Kafka error: … exit 1, no hang', T, async () => {
      const port = await freePort();
      writeFileSync(join(dir, 'closed.json'), JSON.stringify({ kafka: { 'bootstrap.servers': `127.0.0.1:${port}` } }));
      const expected = `[error] Error: Kafka error: Cannot reach the Kafka cluster (connect ECONNREFUSED 127.0.0.1:${port})`;
      const name = uniqueName('cli-closed');
      const cases: string[][] = [
        ['topic', 'list', '--driver', 'kafka', '--driver-config', 'closed.json'],
        ['topic', 'create', '--driver', 'octopus', '--driver-config', 'closed.json', '--name', name, '--topic.num_partitions', '3', '--topic.replication_factor', '1'],
        ['topic', 'delete', '--driver', 'kafka', '--driver-config', 'closed.json', '--name', name],
        ['consume', '--driver', 'kafka', '--driver-config', 'closed.json', '--name', name, '--from-beginning'],
        ['produce', '--driver', 'kafka', '--driver-config', 'closed.json', '--name', name],
      ];
      await Promise.all(
        cases.map(async (args) => {
          const t0 = Date.now();
          const r = await ctl(args, '{"a":1}\n', 30_000);
          const ms = Date.now() - t0;
          assert.equal(r.code, 1, `${args.join(' ')}\n${r.stderr}`);
          assert.deepEqual(errors(r.stderr), [expected], args.join(' '));
          assert.ok(ms < 30_000, `${args.join(' ')} took ${ms} ms`);
        }),
      );
    });
  });
});
