/**
 * Forwarding filters and transforms (forwarding.md §8): JavaScript modules whose factory returns
 * `{ id, allow?, transform?, close? }`. They see metadata, data, headers and source coordinates.
 */
import type { DataSegments } from '../api/data-segments.js';
import { errorMessage } from '../api/errors.js';
import type { Json } from '../api/json.js';
import type { Metadata } from '../api/metadata.js';
import type { FilterConfig } from './config.js';
import { ForwardConfigError } from './config.js';
import { loadPluginExport } from './plugins.js';

export interface ForwardEvent {
  metadata: Metadata;
  data: DataSegments;
  headers: Record<string, string>;
  source: { id: string; partition: number; eventId: bigint; timestamp?: bigint };
}

export interface Filter {
  id: string;
  allow?(e: ForwardEvent): boolean | Promise<boolean>;
  transform?(e: ForwardEvent): ForwardEvent | null | Promise<ForwardEvent | null>;
  close?(): void | Promise<void>;
}

export interface FilterContext {
  policy: string;
  log: { info(m: string): void; warn(m: string): void; error(m: string): void; debug(m: string): void };
}

export async function loadFilters(configs: readonly FilterConfig[], baseDir: string, ctx: FilterContext): Promise<Filter[]> {
  const out: Filter[] = [];
  for (const c of configs) {
    const spec = `${c.module}:${c.export}`;
    const factory = await loadPluginExport(c.module, c.export, baseDir, spec);
    let f: unknown;
    try {
      f = await factory(c.config as Json, ctx);
    } catch (err) {
      throw new ForwardConfigError(`Filter '${spec}' failed to start: ${errorMessage(err)}`);
    }
    if (typeof f !== 'object' || f === null || (typeof (f as Filter).allow !== 'function' && typeof (f as Filter).transform !== 'function')) {
      throw new ForwardConfigError(`Filter '${spec}' must return an object with allow() or transform()`);
    }
    const filter = f as Filter;
    if (typeof filter.id !== 'string') filter.id = spec;
    out.push(filter);
  }
  return out;
}

/** Runs the filters in order: the (possibly transformed) event, or the id of the filter that dropped it. */
export async function applyFilters(filters: readonly Filter[], e: ForwardEvent): Promise<ForwardEvent | { droppedBy: string }> {
  let cur = e;
  for (const f of filters) {
    if (f.allow !== undefined && !(await f.allow(cur))) return { droppedBy: f.id };
    if (f.transform !== undefined) {
      const t = await f.transform(cur);
      if (t === null) return { droppedBy: f.id };
      cur = t;
    }
  }
  return cur;
}
