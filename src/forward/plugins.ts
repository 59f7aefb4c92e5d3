/**
 * `<module>:<export>` plugin specs of the forward configuration (diaspora-ctl.md §8.1): modules
 * resolve relative to the configuration file's directory, bare names as packages; the export is
 * a factory called once per policy.
 */
import { importModule, isNativeLibrary } from '../api/registry.js';
import { errorMessage } from '../api/errors.js';
import { ForwardConfigError } from './config.js';

export function splitPluginSpec(spec: string): { module: string; name: string } {
  const i = spec.lastIndexOf(':');
  if (i <= 0 || i === spec.length - 1) throw new ForwardConfigError(`Invalid plugin spec '${spec}': expected 'module.js:exportName'`);
  return { module: spec.slice(0, i), name: spec.slice(i + 1) };
}

/** Loads the export `name` of `module` (must be a function). */
export async function loadPluginExport(module: string, name: string, baseDir: string, spec: string): Promise<(...args: unknown[]) => unknown> {
  if (isNativeLibrary(module)) throw new ForwardConfigError(`Native plugins are not supported: '${spec}'`);
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(module.startsWith('.') || module.startsWith('/') ? module : module, baseDir);
  } catch (err) {
    throw new ForwardConfigError(`Cannot load plugin module '${module}': ${errorMessage(err)}`);
  }
  const fn = mod[name];
  if (typeof fn !== 'function') throw new ForwardConfigError(`Plugin export '${name}' not found in '${module}'`);
  return fn as (...args: unknown[]) => unknown;
}

/** Loads a plugin spec and calls its factory once; the result must be a function (selector/allocator). */
export async function loadPluginFunction<T>(spec: string, baseDir: string, kind: string): Promise<T> {
  const { module, name } = splitPluginSpec(spec);
  const factory = await loadPluginExport(module, name, baseDir, spec);
  const made = await factory();
  if (typeof made !== 'function') throw new ForwardConfigError(`Plugin '${spec}' did not return a ${kind} function`);
  return made as T;
}
