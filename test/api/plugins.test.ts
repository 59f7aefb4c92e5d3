/**
 * Plugin loading through "name:module" factory keys (api.md §5.1): drivers, validators,
 * serializers and partition selectors from JavaScript modules; relative and bare specifiers
 * resolved against the CWD (checked in child processes started with another CWD); the
 * `diaspora-stream-<name>` package lookup; native libraries refused; error texts; the registry
 * shared through globalThis (also with a second copy of the registry module).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  Driver,
  InvalidMetadata,
  PartitionSelector,
  Serializer,
  Validator,
  getRegistry,
  registerValidator,
  DefaultValidator,
  type Json,
} from '../../src/index.js';
import { resolveFactory } from '../../src/api/registry.js';
import { Child, opsResults, readIndex, rmDir, tempDir } from '../drivers/files/mp-helpers.js';

const INDEX_URL = new URL('../../src/index.js', import.meta.url).href;
const REGISTRY_JS = new URL('../../src/api/registry.js', import.meta.url);
const ERRORS_JS = new URL('../../src/api/errors.js', import.meta.url);

let dir: string;
const mod = (name: string): string => join(dir, name);

function write(path: string, text: string): void {
  fs.mkdirSync(join(path, '..'), { recursive: true });
  fs.writeFileSync(path, text);
}

function evenValidatorSource(name: string): string {
  return `import { Metadata, InvalidMetadata } from ${JSON.stringify(INDEX_URL)};
export function register(r) {
  r.registerValidator(${JSON.stringify(name)}, () => ({
    validate(md) { if (md.json.n % 2 !== 0) throw new InvalidMetadata('odd: ' + md.json.n); },
    metadata() { return new Metadata({ type: ${JSON.stringify(name)} }); },
  }));
}
`;
}

async function rejectsWith(p: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: Error) => {
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

/** Runs the `ops` child with `cwd`; returns its per-step results. */
async function opsIn(cwd: string, steps: Json[]): Promise<Record<string, unknown>[]> {
  const c = new Child('ops', [JSON.stringify(steps)], { cwd });
  try {
    assert.deepEqual(await c.waitExit(20_000), { code: 0, signal: null }, c.stderr);
    return opsResults(c);
  } finally {
    c.kill();
  }
}

before(() => {
  dir = tempDir('ds-plugins-');
  write(mod('package.json'), '{"type": "module"}');
  write(
    mod('drv.js'),
    `export function register(r) {
  // a driver plugin wrapping the built-in memory driver
  r.registerDriver('mydrv', (o) => r.drivers.get('memory')(o));
}
`,
  );
  write(mod('even.js'), evenValidatorSource('even'));
  write(mod('sub/even-rel.js'), evenValidatorSource('evenrel'));
  write(
    mod('ser.js'),
    `import { Metadata } from ${JSON.stringify(INDEX_URL)};
export function register(r) {
  // record: u32 LE length + the canonical JSON reversed
  r.registerSerializer('rev', () => ({
    serialize(out, md) {
      const body = Buffer.from(md.dump(), 'utf8').reverse();
      const len = Buffer.alloc(4);
      len.writeUInt32LE(body.length);
      out.write(len);
      out.write(body);
    },
    deserialize(input) {
      const len = Buffer.from(input.read(4)).readUInt32LE(0);
      return Metadata.parse(Buffer.from(input.read(len)).reverse().toString('utf8'));
    },
    metadata() { return new Metadata({ type: 'rev' }); },
  }));
}
`,
  );
  write(
    mod('sel.js'),
    `import { Metadata } from ${JSON.stringify(INDEX_URL)};
export function register(r) {
  r.registerPartitionSelector('last', () => {
    let n = 0;
    return {
      setPartitions(p) { n = p.length; },
      selectPartitionFor() { return n - 1; },
      metadata() { return new Metadata({ type: 'last' }); },
    };
  });
}
`,
  );
  write(
    mod('glob.js'),
    `// no register export: registers through the global registry directly
import { Metadata } from ${JSON.stringify(INDEX_URL)};
globalThis[Symbol.for('diaspora-stream.registry')].registerValidator('glob', () => ({
  validate() {},
  metadata() { return new Metadata({ type: 'glob' }); },
}));
`,
  );
  // a plugin bundling its own copy of the registry module (a different module instance)
  fs.mkdirSync(mod('bundled'), { recursive: true });
  fs.copyFileSync(REGISTRY_JS, mod('bundled/registry.js'));
  fs.copyFileSync(ERRORS_JS, mod('bundled/errors.js'));
  write(
    mod('bundled-plugin.js'),
    `import { registerValidator, getRegistry } from './bundled/registry.js';
import { Metadata } from ${JSON.stringify(INDEX_URL)};
export const registryOfCopy = getRegistry();
registerValidator('bundled', () => ({ validate() {}, metadata() { return new Metadata({ type: 'bundled' }); } }));
`,
  );
  write(mod('nothing.js'), 'export const nothing = 1;\n');
  write(mod('throws.js'), "throw new Error('boom at import');\n");
  // packages for bare specifiers and for the diaspora-stream-<name> lookup
  write(mod('node_modules/my-plugin/package.json'), '{"name": "my-plugin", "type": "module", "main": "index.js"}');
  write(mod('node_modules/my-plugin/index.js'), evenValidatorSource('bare'));
  write(mod('node_modules/diaspora-stream-pkgval/package.json'), '{"name": "diaspora-stream-pkgval", "type": "module", "main": "index.js"}');
  write(mod('node_modules/diaspora-stream-pkgval/index.js'), evenValidatorSource('pkgval'));
  // an ESM-only package: `exports` has only the `import` condition (require.resolve cannot see it)
  write(mod('node_modules/diaspora-stream-esmonly/package.json'), '{"name": "diaspora-stream-esmonly", "type": "module", "exports": {"import": "./lib/entry.js"}}');
  write(mod('node_modules/diaspora-stream-esmonly/lib/entry.js'), evenValidatorSource('esmonly'));
});

after(() => rmDir(dir));

describe('plugins: name:module keys', () => {
  it('a driver from a JS module (absolute path), then by name once registered', { timeout: 10_000 }, async () => {
    const d = await Driver.create(`mydrv:${mod('drv.js')}`, {});
    try {
      await d.createTopic('t');
      const h = await d.openTopic('t');
      const p = await h.producer();
      assert.equal(await p.push({ n: 1 }), 0n);
      await p.close();
      const c = await h.consumer('');
      assert.deepEqual((await c.pull().wait(2000))?.metadata.json, { n: 1 });
      await c.close();
      await h.close();
    } finally {
      await d.close();
    }
    const again = await Driver.create('mydrv', {});
    await again.close();
  });

  it('a validator from a JS module: used by the producer, its metadata persisted', { timeout: 10_000 }, async () => {
    const root = tempDir('ds-plugins-files-');
    const d = await Driver.create('files', { root_path: root });
    try {
      await d.createTopic('even', { validator: { type: `even:${mod('even.js')}` } });
      assert.equal(fs.readFileSync(join(root, 'even', 'validator.json'), 'utf8'), '{\n  "type": "even"\n}');
      const h = await d.openTopic('even');
      const p = await h.producer();
      assert.equal(await p.push({ n: 2 }), 0n);
      await assert.rejects(Promise.resolve(p.push({ n: 3 })), (err: Error) => {
        assert.ok(err instanceof InvalidMetadata);
        assert.equal(err.message, 'odd: 3');
        return true;
      });
      await p.close();
      await h.close();
    } finally {
      await d.close();
      rmDir(root);
    }
  });

  it('a serializer from a JS module: records written in its format and read back', { timeout: 10_000 }, async () => {
    const root = tempDir('ds-plugins-files-');
    const d = await Driver.create('files', { root_path: root });
    try {
      await d.createTopic('rev', { serializer: { type: `rev:${mod('ser.js')}` } });
      assert.equal(fs.readFileSync(join(root, 'rev', 'serializer.json'), 'utf8'), '{\n  "type": "rev"\n}');
      const h = await d.openTopic('rev');
      const p = await h.producer();
      await p.push({ b: 'x', a: 1 }, Buffer.from('DATA'));
      await p.push({ n: 2 });
      await p.close();
      const part = join(root, 'rev', 'partitions', '00000000');
      const meta = fs.readFileSync(join(part, 'metadata'));
      const rec0 = Buffer.from('{"a":1,"b":"x"}').reverse();
      assert.equal(meta.readUInt32LE(0), rec0.length);
      assert.ok(meta.subarray(4, 4 + rec0.length).equals(rec0));
      assert.deepEqual(readIndex(join(part, 'index'))[0], { mo: 0, ms: 4 + rec0.length, dof: 0, ds: 4 });
      const c = await h.consumer('', { startFrom: 'earliest' });
      const e0 = await c.pull().wait(2000);
      const e1 = await c.pull().wait(2000);
      assert.deepEqual(e0?.metadata.json, { a: 1, b: 'x' });
      assert.equal(e0?.data.toBuffer().toString(), 'DATA');
      assert.deepEqual(e1?.metadata.json, { n: 2 });
      await c.close();
      await h.close();
    } finally {
      await d.close();
      rmDir(root);
    }
  });

  it('a partition selector from a JS module', { timeout: 10_000 }, async () => {
    const root = tempDir('ds-plugins-files-');
    const d = await Driver.create('files', { root_path: root });
    try {
      await d.createTopic('sel', { options: { num_partitions: 3 }, partitionSelector: { type: `last:${mod('sel.js')}` } });
      assert.equal(fs.readFileSync(join(root, 'sel', 'partition-selector.json'), 'utf8'), '{\n  "type": "last"\n}');
      const h = await d.openTopic('sel');
      const p = await h.producer();
      for (let i = 0; i < 4; i++) await p.push({ i });
      await p.close();
      const c = await h.consumer('', { startFrom: 'earliest' });
      for (let i = 0; i < 4; i++) {
        const e = await c.pull().wait(2000);
        assert.equal(e?.partitionIndex, 2);
        assert.equal(e?.id, BigInt(i));
      }
      await c.close();
      await h.close();
    } finally {
      await d.close();
      rmDir(root);
    }
  });

  it('a registered name wins: the module part is ignored (default:libx.so)', { timeout: 10_000 }, async () => {
    const v = await Validator.fromMetadata({ type: 'default:libx.so' });
    assert.ok(v.impl instanceof DefaultValidator);
    const root = tempDir('ds-plugins-files-');
    const d = await Driver.create('files', { root_path: root });
    try {
      await d.createTopic('dflt', { validator: { type: 'default:libx.so' } });
      assert.equal(fs.readFileSync(join(root, 'dflt', 'validator.json'), 'utf8'), '{\n  "type": "default"\n}');
    } finally {
      await d.close();
      rmDir(root);
    }
  });

  it('octopus:liboctopus.so resolves to the built-in Kafka driver when registered, else is a refused native module', { timeout: 10_000 }, async () => {
    await (await Driver.create('memory', {})).close();
    if (getRegistry().drivers.has('octopus')) {
      // the built-in factory is used, the module part ignored (resolved without creating a driver: no broker needed)
      assert.equal(await resolveFactory('drivers', 'octopus:liboctopus.so'), getRegistry().drivers.get('octopus'));
      assert.equal(await resolveFactory('drivers', 'octopus'), getRegistry().drivers.get('octopus'));
    } else {
      await rejectsWith(
        Driver.create('octopus:liboctopus.so', {}),
        'Could not load module liboctopus.so: native plugins are not supported (use a JavaScript module)',
      );
    }
  });
});

describe('plugins: resolution against the CWD (child processes)', () => {
  it('relative (./, ../) and bare specifiers, and diaspora-stream-<name> packages, resolve from the CWD', { timeout: 30_000 }, async () => {
    const sub = mod('sub');
    const res = await opsIn(dir, [
      { op: 'component', kind: 'validator', config: { type: 'even:./even.js' } },
      { op: 'component', kind: 'validator', config: { type: 'bare:my-plugin' } },
      { op: 'component', kind: 'validator', config: { type: 'pkgval' } },
      { op: 'component', kind: 'validator', config: { type: 'esmonly' } },
      { op: 'driver', type: 'mydrv:./drv.js', options: {} },
      { op: 'createTopic', name: 't', create: {} },
      { op: 'push', name: 't', events: [{ metadata: { n: 1 } }] },
      { op: 'registry' },
    ]);
    assert.deepEqual(res[0], { step: 0, ok: true, key: 'even:./even.js', metadata: { type: 'even' } });
    assert.deepEqual(res[1], { step: 1, ok: true, key: 'bare:my-plugin', metadata: { type: 'bare' } });
    assert.deepEqual(res[2], { step: 2, ok: true, key: 'pkgval', metadata: { type: 'pkgval' } });
    assert.deepEqual(res[3], { step: 3, ok: true, key: 'esmonly', metadata: { type: 'esmonly' } });
    assert.deepEqual(res.slice(4, 7).map((r) => r['ok']), [true, true, true], JSON.stringify(res));
    const reg = res[7] as { shared: boolean; drivers: string[]; validators: string[] };
    assert.equal(reg.shared, true);
    assert.ok(reg.drivers.includes('mydrv'));
    for (const v of ['even', 'bare', 'pkgval', 'default', 'schema', 'eventbridge']) assert.ok(reg.validators.includes(v), v);

    const res2 = await opsIn(sub, [
      { op: 'component', kind: 'validator', config: { type: 'even:../even.js' } },
      { op: 'component', kind: 'validator', config: { type: 'evenrel:./even-rel.js' } },
      // from sub/, ./even.js does not exist
      { op: 'component', kind: 'validator', config: { type: 'even2:./even.js' } },
    ]);
    assert.equal(res2[0]?.['ok'], true, JSON.stringify(res2[0]));
    assert.equal(res2[1]?.['ok'], true, JSON.stringify(res2[1]));
    assert.equal(res2[2]?.['ok'], false);
    assert.ok((res2[2]?.['message'] as string).startsWith('Could not load module ./even.js: '), res2[2]?.['message'] as string);
  });

  it('outside that CWD the same bare specifier and package names are not found', { timeout: 10_000 }, async () => {
    // this process's CWD is not the plugin directory
    assert.notEqual(process.cwd(), dir);
    await rejectsWith(Validator.fromMetadata({ type: 'bare:my-plugin' }), /^Could not load module my-plugin: /);
    await rejectsWith(Validator.fromMetadata({ type: 'pkgval' }), /^Trying to load diaspora-stream-pkgval failed: /);
    // the message names where the package was looked for, not a file of this library
    await rejectsWith(Validator.fromMetadata({ type: 'esmonly' }), `Trying to load diaspora-stream-esmonly failed: cannot find package 'diaspora-stream-esmonly' from ${process.cwd()}`);
  });
});

describe('plugins: errors', () => {
  it('native libraries are refused for every kind', { timeout: 10_000 }, async () => {
    const native = (m: string): string => `Could not load module ${m}: native plugins are not supported (use a JavaScript module)`;
    await rejectsWith(Driver.create('x:lib.so', {}), native('lib.so'));
    await rejectsWith(Validator.fromMetadata({ type: 'x:lib.so' }), native('lib.so'));
    await rejectsWith(Serializer.fromMetadata({ type: 'x:libfoo.so.1' }), native('libfoo.so.1'));
    await rejectsWith(PartitionSelector.fromMetadata({ type: 'x:/opt/lib/libsel.dylib' }), native('/opt/lib/libsel.dylib'));
  });

  it('a missing or failing module: "Could not load module <module>: <reason>"', { timeout: 10_000 }, async () => {
    await rejectsWith(Validator.fromMetadata({ type: 'x:./nope.js' }), /^Could not load module \.\/nope\.js: \S/);
    await rejectsWith(Driver.create('x:./nope.js', {}), /^Could not load module \.\/nope\.js: \S/);
    await rejectsWith(Serializer.fromMetadata({ type: `x:${mod('throws.js')}` }), `Could not load module ${mod('throws.js')}: boom at import`);
  });

  it('no module part and no package: "Trying to load diaspora-stream-<name> failed: <reason>"', { timeout: 10_000 }, async () => {
    await rejectsWith(Validator.fromMetadata({ type: 'zzznope' }), /^Trying to load diaspora-stream-zzznope failed: \S/);
    await rejectsWith(Driver.create('zzznope', {}), /^Trying to load diaspora-stream-zzznope failed: \S/);
    await rejectsWith(PartitionSelector.fromMetadata({ type: 'zzznope' }), /^Trying to load diaspora-stream-zzznope failed: \S/);
  });

  it('a module that does not register the name: "Factory method not found for type <name>"', { timeout: 10_000 }, async () => {
    await rejectsWith(Validator.fromMetadata({ type: `x:${mod('nothing.js')}` }), 'Factory method not found for type x');
    await rejectsWith(Driver.create(`x:${mod('nothing.js')}`, {}), 'Factory method not found for type x');
    // registers "even", not "odd"
    await rejectsWith(Validator.fromMetadata({ type: `odd:${mod('even.js')}` }), 'Factory method not found for type odd');
    // a validator module does not provide a serializer of the same name
    await rejectsWith(Serializer.fromMetadata({ type: `even:${mod('even.js')}` }), 'Factory method not found for type even');
  });
});

describe('plugins: the shared registry', () => {
  it('lives on globalThis[Symbol.for("diaspora-stream.registry")]', { timeout: 10_000 }, async () => {
    const g = (globalThis as unknown as Record<symbol, unknown>)[Symbol.for('diaspora-stream.registry')];
    assert.equal(g, getRegistry());
    registerValidator('viaexport', () => new DefaultValidator());
    assert.ok(getRegistry().validators.has('viaexport'));
    // a module registering through the global object directly (no register export)
    const v = await Validator.fromMetadata({ type: `glob:${mod('glob.js')}` });
    assert.deepEqual(v.impl.metadata().json, { type: 'glob' });
  });

  it('a plugin bundling its own copy of the registry module registers into the host', { timeout: 10_000 }, async () => {
    const v = await Validator.fromMetadata({ type: `bundled:${mod('bundled-plugin.js')}` });
    assert.deepEqual(v.impl.metadata().json, { type: 'bundled' });
    const copy = (await import(pathToFileURL(mod('bundled-plugin.js')).href)) as { registryOfCopy: unknown };
    assert.equal(copy.registryOfCopy, getRegistry(), 'the copy found the host registry');
    const copyModule = (await import(pathToFileURL(mod('bundled/registry.js')).href)) as { getRegistry: unknown };
    assert.notEqual(copyModule.getRegistry, getRegistry, 'really a second module instance');
  });
});
