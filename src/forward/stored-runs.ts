/**
 * The forwarding fast path's per-batch work (see ForwardPolicy.runStored): a source's stored runs become the
 * destination's batches with the provenance headers added and own-origin events dropped, without an object per
 * event beyond its headers.
 */
import type { DataSegments } from '../api/data-segments.js';
import type { EventBatch, Headers, StoredRun } from '../api/driver-spi.js';
import { NO_HEADERS } from '../api/event.js';
import type { ProvenanceHeaders } from './provenance.js';

export interface StoredHeaders {
  /** Provenance headers to add (the policy's `headers`), or undefined to keep the events' own headers as they are. */
  provenance: ProvenanceHeaders | undefined;
  /** Events whose `diaspora-src` starts with this came from the destination (drop_own_origin); undefined: keep all. */
  ownOriginPrefix: string | undefined;
}

export interface OutgoingRun {
  /** The events to append (undefined when every event was dropped). */
  batch: EventBatch | undefined;
  /** Events dropped as own-origin. */
  dropped: number;
  /** Metadata + data bytes of the events appended. */
  bytes: number;
}

/** The destination batch of a run: headers per event, own-origin events left out. */
export function outgoingRun(run: StoredRun, o: StoredHeaders): OutgoingRun {
  const b = run.batch;
  const n = b.count;
  const own = b.headers;
  const headers: readonly (Headers | undefined)[] | undefined = o.provenance !== undefined ? new Array<Headers | undefined>(n) : own;
  let keep: boolean[] | undefined;
  let dataBytes = 0;
  for (let i = 0; i < n; i++) {
    const h = own?.[i];
    if (o.ownOriginPrefix !== undefined && h?.['diaspora-src']?.startsWith(o.ownOriginPrefix) === true) {
      (keep ??= new Array<boolean>(n).fill(true))[i] = false;
      continue;
    }
    dataBytes += (b.data[i] as DataSegments).size;
    if (o.provenance !== undefined) (headers as (Headers | undefined)[])[i] = o.provenance.build(h ?? NO_HEADERS, run.partitionIndex, String(run.first + i));
  }
  if (keep === undefined) return { batch: headers === own ? b : { ...b, headers }, dropped: 0, bytes: b.metadataSize + dataBytes };
  const kept = selectEvents(b, keep, headers);
  return { batch: kept.count > 0 ? kept : undefined, dropped: n - kept.count, bytes: kept.metadataSize + dataBytes };
}

/** The events of `batch` for which `keep[i]`, with `headers` (per event of `batch`) in place of its own. */
function selectEvents(batch: EventBatch, keep: readonly boolean[], headers: readonly (Headers | undefined)[] | undefined): EventBatch {
  const chunks: Buffer[] = [];
  const ends: number[] = [];
  const data: DataSegments[] = [];
  const hs: (Headers | undefined)[] | undefined = headers !== undefined ? [] : undefined;
  // the record of event i spans [start, end) of the concatenated chunks; kept adjacent records stay one piece
  let chunk = 0;
  let chunkStart = 0;
  let start = 0;
  let size = 0;
  let piece: { buf: Buffer; from: number; to: number } | undefined;
  for (let i = 0; i < batch.count; i++) {
    const end = batch.metadataEnds[i] as number;
    if (keep[i] === true) {
      while (start >= chunkStart + (batch.metadata[chunk] as Buffer).length) {
        chunkStart += (batch.metadata[chunk] as Buffer).length;
        chunk++;
      }
      const buf = batch.metadata[chunk] as Buffer;
      const from = start - chunkStart;
      const to = end - chunkStart;
      if (piece !== undefined && piece.buf === buf && piece.to === from) piece.to = to;
      else {
        if (piece !== undefined) chunks.push(piece.buf.subarray(piece.from, piece.to));
        piece = { buf, from, to };
      }
      size += end - start;
      ends.push(size);
      data.push(batch.data[i] as DataSegments);
      hs?.push(headers?.[i]);
    }
    start = end;
  }
  if (piece !== undefined) chunks.push(piece.buf.subarray(piece.from, piece.to));
  return { count: ends.length, metadata: chunks, metadataSize: size, metadataEnds: ends, data, headers: hs };
}

/**
 * The runs of one read cut into destination batches of up to `batchSize` events, like the general path's batches: each
 * takes an equal share from every partition that has events left, in source order (runs are cut where needed; the
 * pieces are views of the same memory).
 */
export function cutBatches(runs: readonly StoredRun[], batchSize: number): StoredRun[][] {
  const queues = new Map<number, StoredRun[]>();
  for (const r of runs) {
    const q = queues.get(r.partitionIndex);
    if (q === undefined) queues.set(r.partitionIndex, [r]);
    else q.push(r);
  }
  const batches: StoredRun[][] = [];
  while (queues.size > 0) {
    const share = Math.max(1, Math.floor(batchSize / queues.size));
    const batch: StoredRun[] = [];
    for (const [p, q] of queues) {
      let want = share;
      while (want > 0 && q.length > 0) {
        const r = q[0] as StoredRun;
        const n = r.batch.count;
        if (n <= want) {
          batch.push(r);
          q.shift();
          want -= n;
        } else {
          batch.push({ partitionIndex: p, first: r.first, batch: sliceBatch(r.batch, 0, want) });
          q[0] = { partitionIndex: p, first: r.first + want, batch: sliceBatch(r.batch, want, n) };
          want = 0;
        }
      }
      if (q.length === 0) queues.delete(p);
    }
    batches.push(batch);
  }
  return batches;
}

/** Events [from, to) of a batch. */
function sliceBatch(b: EventBatch, from: number, to: number): EventBatch {
  const lo = from === 0 ? 0 : (b.metadataEnds[from - 1] as number);
  const hi = b.metadataEnds[to - 1] as number;
  const chunks: Buffer[] = [];
  let pos = 0;
  for (const c of b.metadata) {
    const end = pos + c.length;
    if (end > lo && pos < hi) chunks.push(c.subarray(Math.max(lo, pos) - pos, Math.min(hi, end) - pos));
    pos = end;
    if (pos >= hi) break;
  }
  const metadataEnds = new Array<number>(to - from);
  for (let i = from; i < to; i++) metadataEnds[i - from] = (b.metadataEnds[i] as number) - lo;
  return { count: to - from, metadata: chunks, metadataSize: hi - lo, metadataEnds, data: b.data.slice(from, to), headers: b.headers?.slice(from, to) };
}
