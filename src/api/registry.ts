/**
 * Factories by name and `name:module` plugin loading (api.md §5.1).
 *
 * The registry lives on `globalThis` under a well-known symbol so that a plugin which bundles its
 * own copy of this package still registers into the host's registry.
 */
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DiasporaError, ErrorCodes, errorMessage } from './errors.js';
import type { Metadata } from './metadata.js';
import type { PartitionSelectorImpl, SerializerImpl, ValidatorImpl } from './components.js';
import type { DriverImpl } from './driver-spi.js';

export type DriverFactory = (options: Metadata) => DriverImpl | Promise<DriverImpl>;
export type ValidatorFactory = (config: Metadata) => ValidatorImpl | Promise<ValidatorImpl>;
export type SerializerFactory = (config: Metadata) => SerializerImpl | Promise<SerializerImpl>;
export type PartitionSelectorFactory = (config: Metadata) => PartitionSelectorImpl | Promise<PartitionSelectorImpl>;

export interface Registry {
  readonly drivers: Map<string, DriverFactory>;
  readonly validators: Map<string, ValidatorFactory>;
  readonly serializers: Map<string, SerializerFactory>;
  readonly partitionSelectors: Map<string, PartitionSelectorFactory>;
  registerDriver(name: string, factory: DriverFactory): void;
  registerValidator(name: string, factory: ValidatorFactory): void;
  registerSerializer(name: string, factory: SerializerFactory): void;
  registerPartitionSelector(name: string, factory: PartitionSelectorFactory): void;
}

const REGISTRY_KEY = Symbol.for('diaspora-stream.registry');

function makeRegistry(): Registry {
  const r: Registry = {
    drivers: new Map(),
    validators: new Map(),
    serializers: new Map(),
    partitionSelectors: new Map(),
    registerDriver: (n, f) => void r.drivers.set(n, f),
    registerValidator: (n, f) => void r.validators.set(n, f),
    registerSerializer: (n, f) => void r.serializers.set(n, f),
    registerPartitionSelector: (n, f) => void r.partitionSelectors.set(n, f),
  };
  return r;
}

export function getRegistry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  return (g[REGISTRY_KEY] ??= makeRegistry());
}

export const registerDriver = (name: string, f: DriverFactory): void => getRegistry().registerDriver(name, f);
export const registerValidator = (name: string, f: ValidatorFactory): void => getRegistry().registerValidator(name, f);
export const registerSerializer = (name: string, f: SerializerFactory): void => getRegistry().registerSerializer(name, f);
export const registerPartitionSelector = (name: string, f: PartitionSelectorFactory): void =>
  getRegistry().registerPartitionSelector(name, f);

export type FactoryKind = 'drivers' | 'validators' | 'serializers' | 'partitionSelectors';

const NATIVE_LIBRARY = /\.(so(\.\d+)*|dylib|dll)$/;

/** True for a module path naming a native shared library. */
export function isNativeLibrary(module: string): boolean {
  return NATIVE_LIBRARY.test(module);
}

/**
 * Imports a JS module: `./`, `../` and absolute specifiers are resolved against `baseDir`, bare
 * specifiers as if imported from a file in `baseDir`, with Node's ESM resolution (package
 * `exports` with the `import` condition, then `main`): a plain `import(specifier)` would resolve
 * from this library's folder instead, and `require.resolve` misses import-only exports.
 */
export async function importModule(specifier: string, baseDir: string = process.cwd()): Promise<Record<string, unknown>> {
  let target: string;
  if (specifier.startsWith('./') || specifier.startsWith('../') || isAbsolute(specifier)) {
    target = pathToFileURL(resolvePath(baseDir, specifier)).href;
  } else if (specifier.startsWith('file:') || specifier.startsWith('node:')) {
    target = specifier;
  } else {
    // loaded on first use: most processes load no package plugin, and a plugin bundling its own
    // copy of this module (see above) never calls this
    const { resolve: resolveImport } = await import('import-meta-resolve');
    try {
      target = resolveImport(specifier, pathToFileURL(join(baseDir, 'noop.js')).href);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_MODULE_NOT_FOUND') throw new Error(`cannot find package '${specifier}' from ${baseDir}`, { cause: err });
      throw err;
    }
  }
  return (await import(target)) as Record<string, unknown>;
}

/** Splits a factory key `name[:module]` at the first colon. */
export function splitFactoryKey(key: string): { name: string; module: string | undefined } {
  const i = key.indexOf(':');
  return i < 0 ? { name: key, module: undefined } : { name: key.slice(0, i), module: key.slice(i + 1) };
}

/** Resolves a factory key to a registered factory, importing plugins as needed. */
export async function resolveFactory<K extends FactoryKind>(kind: K, key: string): Promise<Registry[K] extends Map<string, infer F> ? F : never> {
  type F = Registry[K] extends Map<string, infer G> ? G : never;
  const reg = getRegistry();
  const { name, module } = splitFactoryKey(key);
  const map = reg[kind] as unknown as Map<string, F>;
  const known = map.get(name);
  if (known !== undefined) return known;
  let mod: Record<string, unknown>;
  if (module !== undefined && module !== '') {
    if (isNativeLibrary(module)) {
      throw new DiasporaError(`Could not load module ${module}: native plugins are not supported (use a JavaScript module)`, {
        code: ErrorCodes.FACTORY,
      });
    }
    try {
      mod = await importModule(module);
    } catch (err) {
      throw new DiasporaError(`Could not load module ${module}: ${errorMessage(err)}`, { code: ErrorCodes.FACTORY, cause: err });
    }
  } else {
    try {
      mod = await importModule(`diaspora-stream-${name}`);
    } catch (err) {
      throw new DiasporaError(`Trying to load diaspora-stream-${name} failed: ${errorMessage(err)}`, {
        code: ErrorCodes.FACTORY,
        cause: err,
      });
    }
  }
  const register = mod['register'] ?? (mod['default'] as Record<string, unknown> | undefined)?.['register'];
  if (typeof register === 'function') await (register as (r: Registry) => unknown)(reg);
  const found = map.get(name);
  if (found === undefined) throw new DiasporaError(`Factory method not found for type ${name}`, { code: ErrorCodes.FACTORY });
  return found;
}
