/**
 * Topic creation and opening of the files driver (files-driver.md §2, §3, §6, §12, §13.6–7):
 * atomic creation (two processes race, exactly one wins, no temporary left), stale temporary
 * directories removed, listTopics filtering, component types persisted for custom plugins,
 * unknown types rejected, num_partitions validation, partition directory gaps and odd names.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Driver, ErrorCodes, dumpPretty, parseJson, type DiasporaError, type Json } from '../../../src/index.js';
import { within } from '../../helpers/within.js';
import { Child, opsResults, rmDir, tempDir } from './mp-helpers.js';

const INDEX_URL = new URL('../../../src/index.js', import.meta.url).href;

/** A validator plugin whose metadata() has no `type`; rejects events with energy > max. */
function writeEnergyPlugin(dir: string): string {
  const path = join(dir, 'energy-validator.js');
  fs.writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
  fs.writeFileSync(
    path,
    `import { Metadata, InvalidMetadata } from ${JSON.stringify(INDEX_URL)};
export function register(registry) {
  registry.registerValidator('energy', (config) => {
    const max = config.json.max ?? 10;
    return {
      validate(md) { if (md.json.energy > max) throw new InvalidMetadata('too much energy: ' + md.json.energy); },
      metadata() { return new Metadata({ max }); },
    };
  });
}
`,
  );
  return path;
}

async function withRoot<T>(fn: (root: string, d: Driver) => Promise<T>): Promise<T> {
  const root = tempDir('ds-topics-');
  const d = await Driver.create('files', { root_path: root });
  try {
    return await fn(root, d);
  } finally {
    await d.close();
    rmDir(root);
  }
}

async function rejectsWith(p: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: Error) => {
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

function dotEntries(root: string): string[] {
  return fs.readdirSync(root).filter((n) => n.startsWith('.'));
}

describe('files driver: topics', () => {
  it('after deleteTopic, handles of the deleted topic fail with TOPIC_NOT_FOUND, also once a topic of the same name exists again', { timeout: 10_000 }, async () => {
    await withRoot(async (_root, d) => {
      await d.createTopic('t');
      const h = await d.openTopic('t');
      const p = await h.producer();
      await p.push({ old: 0 }, Buffer.from('old'));
      const c = await h.consumer('', { startFrom: 'earliest' });
      assert.deepEqual((await c.pull().wait(2000))?.metadata.json, { old: 0 });
      const notFound = (err: unknown): boolean => {
        assert.equal((err as DiasporaError).code, ErrorCodes.TOPIC_NOT_FOUND, String(err));
        assert.equal((err as Error).message, 'Topic t does not exist');
        return true;
      };
      await d.deleteTopic('t');
      await assert.rejects(within(p.push({ old: 1 }, Buffer.from('old')), 5000, 'push after delete'), notFound);

      await d.createTopic('t');
      await assert.rejects(within(p.push({ old: 2 }, Buffer.from('old')), 5000, 'push after re-creation'), notFound);
      await assert.rejects(c.pull().wait(2000), notFound);
      await c.close();

      // the new topic holds only its own events
      const h2 = await d.openTopic('t');
      const p2 = await h2.producer();
      assert.equal(await p2.push({ fresh: 0 }, Buffer.from('new')), 0n);
      await p2.close();
      const c2 = await h2.consumer('', { startFrom: 'earliest' });
      assert.deepEqual((await c2.pull().wait(2000))?.metadata.json, { fresh: 0 });
      assert.equal(await c2.pull().wait(200), undefined);
      await c2.close();
      await h2.close();
      await p.close().catch(() => undefined);
      await h.close();
    });
  });

  it('a topic deleted by another process, then re-created: a consumer delivers what it had not read, then rejects with TOPIC_NOT_FOUND instead of waiting forever on the removed files', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      await d.createTopic('t', { options: { num_partitions: 2 } });
      const h = await d.openTopic('t');
      const p = await h.producer();
      await p.push({ old: 0 }, Buffer.from('old'), { partition: 0 });
      await p.push({ old: 1 }, Buffer.from('old'), { partition: 1 });
      await p.flush();
      await p.close();
      const c = await h.consumer('', { startFrom: 'earliest' });
      assert.deepEqual((await c.pull().wait(2000))?.metadata.json, { old: 0 }, 'its files are open from here on');
      // "another process": the directory removed without this driver's knowledge, and a topic of the same name made
      fs.rmSync(join(root, 't'), { recursive: true });
      const other = await Driver.create('files', { root_path: root });
      try {
        await other.createTopic('t', { options: { num_partitions: 2 } });
        const p2 = await (await other.openTopic('t')).producer();
        await p2.push({ fresh: 0 }, Buffer.from('new'), { partition: 0 });
        await p2.close();
      } finally {
        await other.close();
      }
      assert.deepEqual((await c.pull().wait(2000))?.metadata.json, { old: 1 }, 'read before the removal was noticed');
      await assert.rejects(within(c.pull().wait(5000), 6000, 'pull after the removal'), (err: unknown) => {
        assert.equal((err as DiasporaError).code, ErrorCodes.TOPIC_NOT_FOUND, String(err));
        assert.equal((err as Error).message, 'Topic t was deleted');
        return true;
      });
      await c.close();
      await h.close();
    });
  });

  it('deleteTopic removes only topics: a directory without partitions/ is TOPIC_NOT_FOUND and left alone', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      fs.mkdirSync(join(root, 'Documents', 'sub'), { recursive: true });
      fs.writeFileSync(join(root, 'Documents', 'thesis.txt'), 'keep me');
      fs.writeFileSync(join(root, 'Documents', 'sub', 'notes.txt'), 'me too');
      await assert.rejects(d.deleteTopic('Documents'), (err: unknown) => {
        assert.equal((err as DiasporaError).code, ErrorCodes.TOPIC_NOT_FOUND, String(err));
        assert.equal((err as Error).message, 'Topic Documents does not exist');
        return true;
      });
      assert.equal(fs.readFileSync(join(root, 'Documents', 'thesis.txt'), 'utf8'), 'keep me');
      assert.equal(fs.readFileSync(join(root, 'Documents', 'sub', 'notes.txt'), 'utf8'), 'me too');
      assert.equal(await d.topicExists('Documents'), false, 'topicExists follows the same rule');
      assert.deepEqual(dotEntries(root), [], 'nothing renamed');
    });
  });

  it('a topic directory removed by another process: the first push fails with TOPIC_NOT_FOUND, not ENOENT', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      await d.createTopic('t');
      const h = await d.openTopic('t');
      const p = await h.producer();
      fs.rmSync(join(root, 't'), { recursive: true });
      await assert.rejects(within(p.push({ x: 0 }, Buffer.from('x')), 5000, 'push'), (err: unknown) => {
        assert.equal((err as DiasporaError).code, ErrorCodes.TOPIC_NOT_FOUND, String(err));
        assert.equal((err as Error).message, 'Topic t does not exist');
        return true;
      });
      await p.close().catch(() => undefined);
      await h.close();
    });
  });

  it('two processes creating the same topic concurrently: exactly one succeeds, no temporary left', { timeout: 40_000 }, async () => {
    const root = tempDir('ds-topics-race-');
    const rounds = 4;
    const steps: Json[] = [{ op: 'driver', type: 'files', options: { root_path: root } }];
    for (let r = 0; r < rounds; r++) {
      steps.push({ op: 'go' }, { op: 'createTopic', name: `race${r}`, create: { options: { num_partitions: 3 }, validator: { type: 'default' } } });
    }
    const children = [0, 1].map(() => new Child('ops', [JSON.stringify(steps)]));
    try {
      for (let r = 0; r < rounds; r++) {
        const goStep = 1 + 2 * r;
        await Promise.all(children.map((c) => c.waitLine((l) => l.startsWith('{') && (JSON.parse(l) as { ready?: number }).ready === goStep, 20_000)));
        for (const c of children) c.send('go');
      }
      for (const c of children) assert.deepEqual(await c.waitExit(20_000), { code: 0, signal: null }, c.stderr);
      const results = children.map((c) => opsResults(c));
      for (let r = 0; r < rounds; r++) {
        const step = 2 + 2 * r;
        const outcomes = results.map((rs) => rs.find((x) => x['step'] === step) as { ok: boolean; message?: string });
        assert.equal(outcomes.filter((o) => o.ok).length, 1, `round ${r}: exactly one creator wins: ${JSON.stringify(outcomes)}`);
        const loser = outcomes.find((o) => !o.ok);
        assert.equal(loser?.message, `Topic already exists: race${r}`);
      }
      assert.deepEqual(dotEntries(root), [], 'no temporary directory left');
      const d = await Driver.create('files', { root_path: root });
      try {
        assert.deepEqual([...(await d.listTopics()).keys()], Array.from({ length: rounds }, (_, r) => `race${r}`));
        for (let r = 0; r < rounds; r++) {
          const h = await d.openTopic(`race${r}`);
          assert.equal(h.partitions.length, 3);
          await h.close();
          assert.equal(fs.readFileSync(join(root, `race${r}`, 'options.json'), 'utf8'), '{\n  "num_partitions": 3\n}');
          assert.equal(fs.readFileSync(join(root, `race${r}`, 'validator.json'), 'utf8'), '{\n  "type": "default"\n}');
        }
      } finally {
        await d.close();
      }
    } finally {
      for (const c of children) c.kill();
      rmDir(root);
    }
  });

  it('createTopic removes temporary directories older than one hour, and only those', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      const old = Date.now() / 1000 - 2 * 3600;
      const stale = join(root, '.x.tmp-1-abcd');
      const fresh = join(root, '.y.tmp-2-beef');
      const other = join(root, '.keep');
      for (const dir of [stale, fresh, other]) fs.mkdirSync(join(dir, 'partitions', '00000000'), { recursive: true });
      fs.utimesSync(stale, old, old);
      fs.utimesSync(other, old, old);
      assert.deepEqual([...(await d.listTopics()).keys()], [], 'listTopics ignores dot names (even with partitions/)');
      await d.createTopic('new');
      assert.equal(fs.existsSync(stale), false, 'stale temporary removed');
      assert.equal(fs.existsSync(fresh), true, 'recent temporary kept (its creator may still be working)');
      assert.equal(fs.existsSync(other), true, 'other dot directories untouched');
      assert.deepEqual(dotEntries(root).sort(), ['.keep', '.y.tmp-2-beef']);
      assert.deepEqual([...(await d.listTopics()).keys()], ['new']);
    });
  });

  it('listTopics: dot names and directories without partitions/ are skipped; entries describe the topic', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      await d.createTopic('real', { options: { num_partitions: 2 } });
      await d.createTopic('b-second');
      fs.mkdirSync(join(root, 'nopart'));
      fs.writeFileSync(join(root, 'nopart', 'validator.json'), '{}');
      fs.mkdirSync(join(root, '.hidden', 'partitions', '00000000'), { recursive: true });
      fs.writeFileSync(join(root, 'afile'), 'x');
      fs.mkdirSync(join(root, 'real', 'partitions', '12abc'));
      const topics = await d.listTopics();
      assert.deepEqual([...topics.keys()], ['b-second', 'real']);
      assert.deepEqual(topics.get('real'), {
        name: 'real',
        path: root + '/real',
        num_partitions: 2,
        validator: { type: 'default' },
        serializer: { type: 'default' },
        partition_selector: { type: 'default' },
      });
      // root_path given with a trailing slash: no extra "/" in the path
      const d2 = await Driver.create('files', { root_path: root + '/' });
      try {
        assert.equal(((await d2.listTopics()).get('real') as { path: string }).path, root + '/real');
      } finally {
        await d2.close();
      }
      // an unreadable component file is omitted from the entry
      fs.writeFileSync(join(root, 'b-second', 'serializer.json'), '{oops');
      const entry = (await d.listTopics()).get('b-second') as Record<string, Json>;
      assert.deepEqual(Object.keys(entry).sort(), ['name', 'num_partitions', 'partition_selector', 'path', 'validator']);
    });
  });

  it('opening and consuming a fresh topic creates no file', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      await d.createTopic('fresh', { options: { num_partitions: 2 } });
      const before = [...fs.readdirSync(join(root, 'fresh', 'partitions', '00000000'))];
      assert.deepEqual(before, [], 'partition files are created lazily by the first writer');
      const h = await d.openTopic('fresh');
      const c = await h.consumer('');
      assert.equal(await c.pull().wait(200), undefined);
      await c.close();
      const named = await h.consumer('someone');
      assert.equal(await named.pull().wait(100), undefined);
      await named.close();
      await h.close();
      for (const p of ['00000000', '00000001']) assert.deepEqual(fs.readdirSync(join(root, 'fresh', 'partitions', p)), []);
      assert.deepEqual(fs.readdirSync(join(root, 'fresh')).sort(), ['options.json', 'partition-selector.json', 'partitions', 'serializer.json', 'validator.json']);
    });
  });

  it('a custom validator whose metadata() lacks "type" gets the creation key persisted (absolute module path)', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      const plugin = writeEnergyPlugin(root);
      const key = `energy:${plugin}`;
      await d.createTopic('energy', { validator: { type: key, max: 5 } });
      const text = fs.readFileSync(join(root, 'energy', 'validator.json'), 'utf8');
      assert.equal(text, dumpPretty({ max: 5, type: key }));
      const h = await d.openTopic('energy');
      assert.deepEqual(h.validator.metadata().json, { max: 5 });
      const p = await h.producer();
      assert.equal(await p.push({ energy: 3 }), 0n);
      await assert.rejects(Promise.resolve(p.push({ energy: 7 })), (err: Error) => {
        assert.equal(err.name, 'InvalidMetadata');
        assert.equal(err.message, 'too much energy: 7');
        return true;
      });
      await p.close();
      await h.close();
    });
  });

  it('relative plugin keys are persisted as given and resolved against the CWD of the opening process', { timeout: 30_000 }, async () => {
    const cwd = tempDir('ds-topics-cwd-');
    const other = tempDir('ds-topics-othercwd-');
    const children: Child[] = [];
    try {
      writeEnergyPlugin(cwd);
      const create = new Child(
        'ops',
        [
          JSON.stringify([
            { op: 'driver', type: 'files', options: { root_path: './data' } },
            { op: 'createTopic', name: 'rel', create: { validator: { type: 'energy:./energy-validator.js', max: 2 } } },
            { op: 'push', name: 'rel', events: [{ metadata: { energy: 1 } }, { metadata: { energy: 3 } }] },
          ]),
        ],
        { cwd },
      );
      children.push(create);
      assert.deepEqual(await create.waitExit(20_000), { code: 0, signal: null }, create.stderr);
      const r1 = opsResults(create);
      assert.deepEqual(r1.map((r) => r['ok']), [true, true, true], JSON.stringify(r1));
      assert.deepEqual((r1[2] as { results: Json[] }).results, [
        { ok: true, id: 0 },
        { ok: false, message: 'too much energy: 3', name: 'InvalidMetadata' },
      ]);
      const vtext = fs.readFileSync(join(cwd, 'data', 'rel', 'validator.json'), 'utf8');
      assert.deepEqual(parseJson(vtext), { max: 2, type: 'energy:./energy-validator.js' });

      // another process with the same CWD reopens the topic with the plugin
      const reopen = new Child('ops', [JSON.stringify([{ op: 'driver', type: 'files', options: { root_path: './data' } }, { op: 'openTopic', name: 'rel' }])], { cwd });
      children.push(reopen);
      assert.deepEqual(await reopen.waitExit(20_000), { code: 0, signal: null }, reopen.stderr);
      const r2 = opsResults(reopen);
      assert.deepEqual(r2[1], { step: 1, ok: true, partitions: 1, validator: { max: 2 }, serializer: { type: 'default' }, selector: { type: 'default' } });

      // from another CWD the relative module is not found: an explicit error, never a silent default
      const elsewhere = new Child(
        'ops',
        [JSON.stringify([{ op: 'driver', type: 'files', options: { root_path: join(cwd, 'data') } }, { op: 'openTopic', name: 'rel' }])],
        { cwd: other },
      );
      children.push(elsewhere);
      assert.deepEqual(await elsewhere.waitExit(20_000), { code: 0, signal: null }, elsewhere.stderr);
      const r3 = opsResults(elsewhere)[1] as { ok: boolean; message: string };
      assert.equal(r3.ok, false);
      assert.ok(r3.message.startsWith('Could not load module ./energy-validator.js: '), r3.message);
    } finally {
      for (const c of children) c.kill();
      rmDir(cwd);
      rmDir(other);
    }
  });

  it('a component file with an unknown type fails to open with an explicit error', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      const empty = join(root, 'empty-module.js');
      fs.writeFileSync(empty, 'export const nothing = 1;\n');
      const cases: [string, string, string | RegExp][] = [
        // no module part: the package diaspora-stream-nosuch is tried (api.md §5.1 step 4)
        ['validator.json', '{"type": "nosuch"}', /^Trying to load diaspora-stream-nosuch failed: .*diaspora-stream-nosuch/],
        ['serializer.json', '{"type": "nosuch"}', /^Trying to load diaspora-stream-nosuch failed: /],
        ['partition-selector.json', '{"type": "nosuch"}', /^Trying to load diaspora-stream-nosuch failed: /],
        ['validator.json', '{"type": "nosuch:./definitely-missing.js"}', /^Could not load module \.\/definitely-missing\.js: /],
        // a module that registers nothing
        ['validator.json', JSON.stringify({ type: `nosuch:${empty}` }), 'Factory method not found for type nosuch'],
        ['validator.json', '{"type": 3}', 'Cannot create Validator from Metadata: invalid "type" field in Metadata (expected string)'],
        ['validator.json', '[]', 'Failed to load validator: expected a JSON object'],
        ['validator.json', '{"type": ', /^Failed to load validator: /],
      ];
      for (const [i, [file, content, message]] of cases.entries()) {
        const name = `unknown${i}`;
        await d.createTopic(name);
        fs.writeFileSync(join(root, name, file), content);
        await rejectsWith(d.openTopic(name), message);
      }
      // an empty object is the default component
      await d.createTopic('emptyobj');
      fs.writeFileSync(join(root, 'emptyobj', 'validator.json'), '{}');
      const h = await d.openTopic('emptyobj');
      assert.deepEqual(h.validator.metadata().json, { type: 'default' });
      await h.close();
      // a missing component file
      fs.rmSync(join(root, 'emptyobj', 'serializer.json'));
      await rejectsWith(d.openTopic('emptyobj'), `Serializer file does not exist: ${join(root, 'emptyobj', 'serializer.json')}`);
    });
  });

  it('num_partitions must be an integer >= 1; nothing is left behind by a rejected creation', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      for (const v of [0, '2', -1, 1.5, true, null] as Json[]) {
        await rejectsWith(d.createTopic('np', { options: { num_partitions: v } }), 'Invalid value for "num_partitions" option');
      }
      assert.deepEqual(fs.readdirSync(root), []);
      await d.createTopic('np', { options: { num_partitions: 2 } });
      const np = await d.openTopic('np');
      assert.equal(np.partitions.length, 2);
      await np.close();
      for (const name of ['', '.', '..', 'a/b', 'a\\b', '.x', 'x'.repeat(256)]) {
        await rejectsWith(d.createTopic(name), `Invalid topic name: ${name}`);
      }
      await rejectsWith(d.createTopic('np'), 'Topic already exists: np');
      fs.writeFileSync(join(root, 'plainfile'), '');
      await rejectsWith(d.createTopic('plainfile'), 'Topic already exists: plainfile');
      assert.deepEqual(dotEntries(root), []);
    });
  });

  it('partition directories: a gap is an error, non-digit names (12abc) are ignored', { timeout: 10_000 }, async () => {
    await withRoot(async (root, d) => {
      await d.createTopic('gap', { options: { num_partitions: 3 } });
      fs.rmdirSync(join(root, 'gap', 'partitions', '00000001'));
      await rejectsWith(d.openTopic('gap'), 'Missing partition directory 00000001 for topic: gap');

      await d.createTopic('odd');
      fs.mkdirSync(join(root, 'odd', 'partitions', '12abc'));
      fs.mkdirSync(join(root, 'odd', 'partitions', '00000005x'));
      const h = await d.openTopic('odd');
      assert.equal(h.partitions.length, 1);
      await h.close();
      assert.equal((await d.listTopics()).get('odd') !== undefined && ((await d.listTopics()).get('odd') as { num_partitions: number }).num_partitions, 1);

      await d.createTopic('none');
      fs.rmdirSync(join(root, 'none', 'partitions', '00000000'));
      await rejectsWith(d.openTopic('none'), 'No valid partitions found for topic: none');
      fs.rmdirSync(join(root, 'none', 'partitions'));
      await rejectsWith(d.openTopic('none'), 'Partitions directory not found for topic: none');
      await rejectsWith(d.openTopic('absent'), `Topic directory does not exist: ${join(root, 'absent')}`);
    });
  });
});
