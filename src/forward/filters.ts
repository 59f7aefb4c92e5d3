/**
 * Forwarding filters and transforms (forwarding.md §8): JavaScript modules whose factory returns
 * `{ id, allow?, transform?, close? }`. They see metadata, data, headers and source coordinates.
 */
import { DataSegments, type DataLike } from '../api/data-segments.js';
import { errorMessage } from '../api/errors.js';
import type { Json } from '../api/json.js';
import { Metadata } from '../api/metadata.js';
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
      cur = checkedEvent(f.id, t);
    }
  }
  return cur;
}

/**
 * What a transform returned, as a ForwardEvent: metadata given as plain JSON and data as a Buffer (or a list of
 * segments) are converted; anything else is an error naming the filter, which goes through the policy's
 * `filter_errors` handling like an exception of the filter itself.
 */
function checkedEvent(id: string, t: unknown): ForwardEvent {
  if (typeof t !== 'object' || t === null || Array.isArray(t) || !('metadata' in t)) {
    throw new Error(`Filter '${id}' transform must return an event (an object with metadata) or null, not ${t === null ? 'null' : Array.isArray(t) ? 'an array' : typeof t}`);
  }
  const e = t as { metadata: unknown; data?: unknown; headers?: unknown; source?: unknown };
  if (e.headers !== undefined && (typeof e.headers !== 'object' || e.headers === null || Object.values(e.headers).some((v) => typeof v !== 'string'))) {
    throw new Error(`Filter '${id}' transform returned headers that are not an object of strings`);
  }
  const metadata = e.metadata instanceof Metadata ? e.metadata : Metadata.from(e.metadata as Json);
  const data = e.data instanceof DataSegments ? e.data : e.data === undefined || e.data === null ? DataSegments.EMPTY : DataSegments.from(e.data as DataLike);
  return { ...(t as ForwardEvent), metadata, data, headers: (e.headers as Record<string, string> | undefined) ?? {} };
}
