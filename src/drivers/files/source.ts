/**
 * Reading a files topic (files-driver.md §8): bulk reads of index entries, metadata and data,
 * the visibility rule for entries of concurrent writers, headers, round-robin fairness, and
 * waiting for new data through this process's writers, fs.watch and a fallback poll.
 */
import { DefaultSerializer, deserializeRecordAt, isDefaultRecord } from '../../api/components.js';
import { FullDataSelector, NoDataSelector, allocateSelection, planSelection } from '../../api/data-selection.js';
import type { DataDescriptor } from '../../api/data-descriptor.js';
import type { Metadata } from '../../api/metadata.js';
import { EventRecord } from '../../api/event.js';
import { DataSegments } from '../../api/data-segments.js';
import type { ConsumerSource, EventID, Headers, SourceEvent, SourceOptions, StoredRun } from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes, errorMessage } from '../../api/errors.js';
import { preadFull, preadvFull, readBuffer } from '../common/fs-util.js';
import { Wakeup } from '../common/notifier.js';
import { interleave } from '../common/round-robin.js';
import { decodeHeadersRecords, readU64, type HeadersRecord } from './headers-file.js';
import { INDEX_RECORD_SIZE, partitionDirName } from './layout.js';
import type { PartitionFiles } from './partition.js';
import type { PositionsStore } from './positions.js';

/** Entries older than this that still point past the file ends are reported as corrupted. */
const VISIBILITY_GRACE_MS = 2000;
/** Upper bound of the metadata and of the data (bulk or selected) one read of a partition spans, but for its first event. */
const MAX_SPAN = 16 * 1024 * 1024;

/**
 * Reads `buf.length` bytes at `position` as parallel 2 MiB preads: libuv's pool threads then
 * copy (and fault in the fresh buffer's pages) concurrently.
 */
async function readParallel(fd: number, buf: Buffer, position: number): Promise<void> {
  const CHUNK = 2 << 20;
  if (buf.length <= CHUNK) {
    await preadFull(fd, buf, 0, buf.length, position);
    return;
  }
  const reads: Promise<number>[] = [];
  for (let off = 0; off < buf.length; off += CHUNK) reads.push(preadFull(fd, buf, off, Math.min(CHUNK, buf.length - off), position + off));
  await Promise.all(reads);
}

/** A selected range of the data file and the memory it is read into. */
interface Piece {
  src: number;
  dst: Uint8Array;
}

/** One scatter read: `length` file bytes from `position` into `bufs`. */
interface ScatterRead {
  position: number;
  length: number;
  bufs: Uint8Array[];
}

/** Gaps up to this size between selected ranges are read through (into {@link GAP_SCRATCH}) rather than skipped. */
const MAX_GAP = 64 * 1024;
/** Where the bytes of gaps go: shared by concurrent reads, since nobody reads it. */
const GAP_SCRATCH = Buffer.allocUnsafeSlow(MAX_GAP);
/** Bounds of one scatter read: bytes (parallel reads keep the pool threads copying together) and buffers (IOV_MAX). */
const MAX_READ = 2 << 20;
const MAX_BUFS = 1024;

/**
 * Groups the pieces, sorted by file position, into scatter reads. Destinations that are adjacent in memory as well as
 * in the file (an allocator carving consecutive slices of one buffer) are merged into one buffer: the native side of a
 * scatter read costs ~0.2 µs per buffer.
 */
function scatterReads(pieces: Piece[]): ScatterRead[] {
  for (let i = 1; i < pieces.length; i++) {
    if ((pieces[i] as Piece).src < (pieces[i - 1] as Piece).src) {
      pieces.sort((a, b) => a.src - b.src);
      break;
    }
  }
  const reads: ScatterRead[] = [];
  let r: ScatterRead | undefined;
  // the destination being extended: [runStart, runEnd) of runMem's memory
  let runMem: ArrayBufferLike | undefined;
  let runStart = 0;
  let runEnd = 0;
  const endRun = (): void => {
    if (runMem !== undefined) (r as ScatterRead).bufs.push(new Uint8Array(runMem, runStart, runEnd - runStart));
    runMem = undefined;
  };
  for (const p of pieces) {
    const d = p.dst;
    const size = d.length;
    const gap = r === undefined ? -1 : p.src - (r.position + r.length);
    if (r !== undefined && gap >= 0 && gap <= MAX_GAP && r.length + gap + size <= MAX_READ && r.bufs.length + 3 <= MAX_BUFS) {
      r.length += gap + size;
      if (gap === 0 && d.buffer === runMem && d.byteOffset === runEnd) {
        runEnd += size;
        continue;
      }
      endRun();
      if (gap > 0) r.bufs.push(GAP_SCRATCH.subarray(0, gap));
    } else {
      endRun();
      r = { position: p.src, length: size, bufs: [] };
      reads.push(r);
    }
    runMem = d.buffer;
    runStart = d.byteOffset;
    runEnd = runStart + size;
  }
  endRun();
  return reads;
}

/**
 * Field `f` of index entry `i` (0 metadata offset, 1 metadata size, 2 data offset, 3 data size): a u64 as its two
 * little-endian u32 words, lo + hi·2^32 (offsets and sizes stay below 2^53).
 */
function entryField(words: Uint32Array, i: number, f: number): number {
  const w = i * 8 + f * 2;
  return (words[w] as number) + (words[w + 1] as number) * 0x1_0000_0000;
}

/** The visible entries of a partition read at its cursor, with the bytes they point to. */
interface RawRead {
  visible: number;
  /** The index entries as u32 words (8 per entry). */
  words: Uint32Array;
  /** Metadata bytes from file offset metaLo. */
  meta: Buffer;
  metaLo: number;
  /** Data bytes from file offset dataLo (undefined unless the whole data is read in bulk). */
  data: Buffer | undefined;
  dataLo: number;
  headers: Map<number, HeadersRecord> | undefined;
}

/** An event whose selected data is read after the whole fetch was planned. */
interface Plan {
  slot: number;
  metadata: Metadata;
  ds: number;
  dof: number;
  selected: DataDescriptor;
}

class PartitionCursor {
  next: number;
  invisibleSince: number | undefined;
  headersPos = 0;
  /** The last headers record read (to notice a rewritten tail). */
  lastHeaders: { start: number; eventId: number; metadataOffset: number } | undefined;
  readonly headers = new Map<number, HeadersRecord>();
  constructor(
    readonly index: number,
    readonly files: PartitionFiles,
    readonly start: number,
  ) {
    this.next = start;
  }
}

/**
 * Reads the pieces as scatter reads (see {@link scatterReads}), all of them even when some fail; returns the failed
 * read with the lowest file position, if any.
 */
async function readPieces(fd: number, pieces: Piece[]): Promise<{ position: number; err: unknown } | undefined> {
  const reads = scatterReads(pieces);
  const results = await Promise.allSettled(
    reads.map(async (r) => {
      if ((await preadvFull(fd, r.bufs, r.position)) < r.length) {
        throw new DiasporaError(`Corrupted data file: it ends before byte ${r.position + r.length}`, { code: ErrorCodes.CORRUPTED });
      }
    }),
  );
  let failed: { position: number; err: unknown } | undefined;
  results.forEach((res, k) => {
    const position = (reads[k] as ScatterRead).position;
    if (res.status === 'rejected' && (failed === undefined || position < failed.position)) failed = { position, err: res.reason };
  });
  return failed;
}

/** The error of an event whose metadata record does not decode. */
function corruptedRecord(c: PartitionCursor, id: number, cause: unknown): DiasporaError {
  return new DiasporaError(`Corrupted metadata record of event ${id} in partition ${c.index}: ${errorMessage(cause)}`, { code: ErrorCodes.CORRUPTED, cause });
}

export class FilesSource implements ConsumerSource {
  private readonly cursors: PartitionCursor[];
  private rr = 0;
  private readonly bulkData: boolean;
  private readonly noData: boolean;
  /** A partition's read error held back while the events other partitions gave the same fetch are delivered. */
  private heldError: { err: unknown } | undefined;

  constructor(
    private readonly o: SourceOptions,
    files: PartitionFiles[],
    starts: number[],
    private readonly pollIntervalMs: number,
    private readonly positions: PositionsStore | undefined,
  ) {
    this.cursors = o.partitions.map((p, i) => new PartitionCursor(p, files[i] as PartitionFiles, starts[i] as number));
    this.noData = o.dataSelector === NoDataSelector;
    this.bulkData = (o.dataSelector === undefined || o.dataSelector === FullDataSelector) && o.dataAllocator === undefined;
  }

  fetch(max: number, signal: AbortSignal, wait: boolean): Promise<SourceEvent[]> {
    return this.available(() => this.readAvailable(max), signal, wait);
  }

  /**
   * {@link ConsumerSource.fetchStored}: the same events as fetch() would deliver, as runs of consecutive events of one
   * partition in their stored form, for copying to another files topic without decoding anything.
   */
  fetchStored(max: number, signal: AbortSignal, wait: boolean): Promise<StoredRun[]> {
    return this.available(() => this.readAvailableStored(max), signal, wait);
  }

  /** Calls `read` until it returns something, waiting without spinning between attempts when `wait`. */
  private async available<T>(read: () => Promise<T[]>, signal: AbortSignal, wait: boolean): Promise<T[]> {
    let watching = false;
    try {
      for (;;) {
        let out = await read();
        if (out.length > 0 || !wait || signal.aborted) return out;
        // subscribe to this process's writers and (fs.watch, for the whole wait) to other
        // processes' writes, then check again, so no append slips in between; the poll is a
        // fallback (watch events can be lost, e.g. on NFS)
        const wakeup = new Wakeup(this.cursors.map((c) => c.files.notifier));
        if (!watching) {
          for (const c of this.cursors) c.files.watch();
          watching = true;
        }
        out = await read();
        if (out.length > 0) {
          wakeup.cancel();
          return out;
        }
        await wakeup.wait(signal, this.pollIntervalMs);
        if (signal.aborted) return [];
      }
    } finally {
      if (watching) for (const c of this.cursors) c.files.unwatch();
    }
  }

  private async readAvailable(max: number): Promise<SourceEvent[]> {
    const lists: SourceEvent[][] = this.cursors.map(() => []);
    await this.fill(max, (c, i, limit) => this.readPartition(c, limit, lists[i] as SourceEvent[]));
    if (lists.every((l) => l.length === 0)) return [];
    const { events, next } = interleave(lists, this.rr);
    this.rr = next;
    return events;
  }

  private async readAvailableStored(max: number): Promise<StoredRun[]> {
    const runs: StoredRun[] = [];
    let lastServed = -1;
    await this.fill(max, async (c, i, limit) => {
      const raw = await this.readRaw(c, limit);
      if (raw === undefined) return 0;
      const run = this.storedRun(c, raw, this.storedCount(c, raw));
      runs.push(run);
      c.next += run.batch.count;
      lastServed = i;
      return run.batch.count;
    });
    // the next read starts after the last partition served, as readAvailable's interleave does: a read smaller than
    // the partition count would otherwise always serve the same partitions first and starve the others
    if (lastServed >= 0) this.rr = (lastServed + 1) % this.cursors.length;
    return runs;
  }

  /**
   * Reads up to `max` events, a fair share of each partition first, then what idle partitions left to busy ones.
   * `read` takes up to `limit` events of a cursor and returns how many it took, advancing the cursor only when it
   * succeeds (a read error must not skip events). A partition whose read fails does not hold back the others: the
   * fetch returns their events and the next fetch throws the error; only a fetch with nothing else throws at once.
   */
  private async fill(max: number, read: (c: PartitionCursor, i: number, limit: number) => Promise<number>): Promise<void> {
    const held = this.heldError;
    this.heldError = undefined;
    if (held !== undefined) throw held.err;
    const saved = this.cursors.map((c) => c.next);
    const n = this.cursors.length;
    let total = 0;
    let failure: { err: unknown } | undefined;
    const quota = Math.max(1, Math.ceil(max / n));
    const taken = new Array<number>(n).fill(0);
    const failed = new Array<boolean>(n).fill(false);
    for (const share of [quota, max]) {
      for (let k = 0; k < n && total < max; k++) {
        const i = (this.rr + k) % n;
        if (failed[i]) continue;
        try {
          const got = await read(this.cursors[i] as PartitionCursor, i, Math.min(share - (taken[i] as number), max - total));
          taken[i] = (taken[i] as number) + got;
          total += got;
        } catch (err) {
          failed[i] = true;
          failure ??= { err };
        }
      }
    }
    if (failure !== undefined) {
      if (total === 0) throw failure.err;
      this.heldError = failure;
    }
    for (const [i, c] of this.cursors.entries()) for (let id = saved[i] as number; id < c.next; id++) c.headers.delete(id);
  }

  /** Reads the visible entries among the next `limit` of a partition, with their metadata, data and headers. */
  private async readRaw(c: PartitionCursor, limit: number): Promise<RawRead | undefined> {
    if (limit <= 0) return undefined;
    const files = c.files;
    let n = 0;
    let words: Uint32Array = new Uint32Array(0);
    let visible = 0;
    let metaLo = Infinity;
    let metaHi = 0;
    let dataLo = Infinity;
    let dataHi = 0;
    for (let attempt = 0; ; attempt++) {
      // The file sizes are taken BEFORE the index is read, and an entry is taken only if its bytes
      // lie within them. Writers append data before the index entry that points to it, so a new
      // entry is covered by the sizes of the next attempt; but an entry that a crashed writer left
      // dangling, and that a repairing writer then cut off and replaced, could be read just before
      // the cut and look valid against sizes taken after the repair's appends: never with these.
      // (Sizes cached from an earlier fetch would save these two fstats, but a repairing writer may
      // have truncated the files since, which would make a dangling entry look valid.)
      const metaSize = files.size('metadata');
      const dataSize = files.size('data');
      const indexFd = files.readFd('index');
      if (indexFd === undefined) {
        files.checkNotRemoved();
        return undefined;
      }
      // up to `limit` entries: the read returns those that exist (no fstat of the index either);
      // at a multiple of 32 bytes, so the Uint32Array view below is aligned
      const idx = readBuffer(limit * INDEX_RECORD_SIZE, c.next * INDEX_RECORD_SIZE);
      n = Math.floor((await preadFull(indexFd, idx, 0, limit * INDEX_RECORD_SIZE, c.next * INDEX_RECORD_SIZE)) / INDEX_RECORD_SIZE);
      if (n <= 0) {
        // nothing new: maybe because the files were removed (the topic deleted)
        files.checkNotRemoved();
        return undefined;
      }
      // the entries as u32 words (see entryField)
      words = new Uint32Array(idx.buffer, idx.byteOffset, n * 8);

      // visible prefix, bounded spans
      visible = 0;
      metaLo = Infinity;
      metaHi = 0;
      dataLo = Infinity;
      dataHi = 0;
      let beyond: 'metadata' | 'data' | undefined;
      for (let i = 0; i < n; i++) {
        const mo = entryField(words, i, 0);
        const me = mo + entryField(words, i, 1);
        const dof = entryField(words, i, 2);
        const de = dof + entryField(words, i, 3);
        if (me > metaSize || de > dataSize) {
          if (i === 0) beyond = me > metaSize ? 'metadata' : 'data';
          break; // later entries: the next fetch, with fresh sizes
        }
        const nMetaLo = Math.min(metaLo, mo);
        const nMetaHi = Math.max(metaHi, me);
        const nDataLo = de > dof ? Math.min(dataLo, dof) : dataLo;
        const nDataHi = Math.max(dataHi, de);
        // the data span bounds selective reads too: their memory is allocated for the whole fetch at once
        if (i > 0 && (nMetaHi - nMetaLo > MAX_SPAN || (!this.noData && nDataHi - Math.min(nDataLo, nDataHi) > MAX_SPAN))) break;
        metaLo = nMetaLo;
        metaHi = nMetaHi;
        dataLo = nDataLo;
        dataHi = nDataHi;
        visible++;
      }
      if (beyond === undefined) break;
      // the first entry points past the sizes: written since (read again at once), or dangling
      // (reported as corrupted once the grace period is over)
      if (attempt < 2 && (files.size('metadata') > metaSize || files.size('data') > dataSize)) continue;
      this.checkGrace(c, beyond);
      return undefined;
    }
    if (visible === 0) return undefined;
    c.invisibleSince = undefined;

    // metadata, data and headers are read concurrently (each on its own libuv pool thread)
    const meta = readBuffer(metaHi - metaLo, metaLo);
    const data = this.bulkData && dataHi > dataLo ? readBuffer(dataHi - dataLo, dataLo) : undefined;
    const [, , headers] = await Promise.all([
      preadFull(files.readFd('metadata') as number, meta, 0, meta.length, metaLo),
      data !== undefined ? readParallel(files.readFd('data') as number, data, dataLo) : undefined,
      this.loadHeaders(c),
    ]);
    return { visible, words, meta, metaLo, data, dataLo, headers };
  }

  /**
   * Decodes the next events of a partition (up to `limit`) into `out`; returns how many. An event that fails (a
   * corrupt record, a selector or allocator that throws, a failed read) ends the read before it: the events before
   * it are delivered, and the next read starts at it and throws, so the pull that reaches it rejects without
   * advancing (api.md §9).
   */
  private async readPartition(c: PartitionCursor, limit: number, out: SourceEvent[]): Promise<number> {
    const raw = await this.readRaw(c, limit);
    if (raw === undefined) return 0;
    const events: SourceEvent[] = [];
    const plans: Plan[] = [];
    const decodeError = this.decodeEvents(c, raw, events, plans);
    const readError = plans.length > 0 ? await this.readSelected(c.files, plans, events) : undefined;
    if (events.length === 0) throw readError ?? decodeError;
    for (const e of events) out.push(e);
    c.next += events.length;
    return events.length;
  }

  /**
   * The events of a raw read, into `out` (selected data is planned into `plans`, read by readSelected), up to the
   * first that fails; returns that event's error.
   */
  private decodeEvents(c: PartitionCursor, raw: RawRead, out: SourceEvent[], plans: Plan[]): unknown {
    const { visible, words, meta, metaLo, data, dataLo, headers } = raw;
    try {
      for (let i = 0; i < visible; i++) {
        const mo = entryField(words, i, 0);
        const ms = entryField(words, i, 1);
        const dof = entryField(words, i, 2);
        const ds = entryField(words, i, 3);
        const id = c.next + i;
        const metadata = this.metadataAt(c, id, meta, mo - metaLo, ms);
        let segs: DataSegments;
        if (this.noData || ds === 0) segs = DataSegments.EMPTY;
        // full data, default allocator: a zero-copy view of the bulk read
        else if (data !== undefined) segs = new DataSegments(data.subarray(dof - dataLo, dof - dataLo + ds));
        else {
          segs = DataSegments.EMPTY; // filled by readSelected from the coalesced reads of the selected ranges
          const selected = planSelection(metadata, ds, '', this.o.dataSelector);
          if (selected !== undefined) plans.push({ slot: out.length, metadata, ds, dof, selected });
        }
        let h: Headers | undefined;
        if (headers !== undefined) {
          const rec = headers.get(id);
          if (rec !== undefined && rec.metadataOffset === mo) h = rec.headers;
        }
        out.push(new EventRecord(c.index, id, metadata, segs, h));
      }
    } catch (err) {
      return err;
    }
    return undefined;
  }

  /** The metadata record of event `id`; one that does not deserialize is reported as corrupted. */
  private metadataAt(c: PartitionCursor, id: number, meta: Buffer, start: number, size: number): Metadata {
    try {
      return deserializeRecordAt(this.o.serializer, meta, start, size);
    } catch (err) {
      throw corruptedRecord(c, id, err);
    }
  }

  /**
   * How many events of a raw read are copied as stored: up to the first whose record the default serializer could not
   * decode (throws when it is the first), like readPartition, so a corrupt record is never copied to another topic.
   * Other serializers' records are not looked at (stored runs are only used with default serializers).
   */
  private storedCount(c: PartitionCursor, raw: RawRead): number {
    if (!(this.o.serializer instanceof DefaultSerializer)) return raw.visible;
    const { visible, words, meta, metaLo } = raw;
    for (let i = 0; i < visible; i++) {
      const mo = entryField(words, i, 0);
      const ms = entryField(words, i, 1);
      if (isDefaultRecord(meta, mo - metaLo, ms)) continue;
      // the first: the same error as the decoding read (deserializing an invalid record throws)
      if (i === 0) this.metadataAt(c, c.next, meta, mo - metaLo, ms);
      return i;
    }
    return visible;
  }

  /** The first `visible` events of a raw read as stored: metadata records as runs of the read buffer, data as views of it. */
  private storedRun(c: PartitionCursor, raw: RawRead, visible: number): StoredRun {
    const { words, meta, metaLo, data, dataLo, headers } = raw;
    const chunks: Buffer[] = [];
    const metadataEnds = new Array<number>(visible);
    const dataOut = new Array<DataSegments>(visible);
    let hs: (Headers | undefined)[] | undefined;
    let runStart = -1;
    let runEnd = -1;
    let size = 0;
    for (let i = 0; i < visible; i++) {
      const mo = entryField(words, i, 0);
      const ms = entryField(words, i, 1);
      const dof = entryField(words, i, 2);
      const ds = entryField(words, i, 3);
      // adjacent records (one writer's batches) stay one chunk
      if (mo !== runEnd) {
        if (runStart >= 0) chunks.push(meta.subarray(runStart - metaLo, runEnd - metaLo));
        runStart = mo;
      }
      runEnd = mo + ms;
      size += ms;
      metadataEnds[i] = size;
      dataOut[i] = this.noData || ds === 0 || data === undefined ? DataSegments.EMPTY : new DataSegments(data.subarray(dof - dataLo, dof - dataLo + ds));
      if (headers !== undefined) {
        const rec = headers.get(c.next + i);
        if (rec !== undefined && rec.metadataOffset === mo) (hs ??= new Array<Headers | undefined>(visible).fill(undefined))[i] = rec.headers;
      }
    }
    if (runStart >= 0) chunks.push(meta.subarray(runStart - metaLo, runEnd - metaLo));
    return { partitionIndex: c.index, first: c.next, batch: { count: visible, metadata: chunks, metadataSize: size, metadataEnds, data: dataOut, headers: hs } };
  }

  /**
   * Custom selectors and allocators: every planned event's memory is allocated first, then the selected ranges of the
   * whole fetch are read straight into it (one copy, out of the page cache), as scatter reads of up to 2 MiB run in
   * parallel. Gaps of up to 64 KiB between ranges are read through, into a scratch buffer, rather than paying
   * another read. An allocation or read that fails cuts `events` before the first event it concerns (whose error is
   * returned); the memory of the events cut is released.
   */
  private async readSelected(files: PartitionFiles, plans: Plan[], events: SourceEvent[]): Promise<unknown> {
    const { pieces, mems, ends, error: allocError } = this.allocatePlans(plans);
    let cut = mems.length < plans.length ? (plans[mems.length] as Plan).slot : events.length;
    let error = allocError;
    const failedAt = await readPieces(files.readFd('data') as number, pieces);
    if (failedAt !== undefined) {
      // the events whose bytes all lie before the failed read (the lowest that failed) were read whole
      const k = ends.findIndex((end) => end > failedAt.position);
      const slot = k < 0 ? cut : (plans[k] as Plan).slot;
      if (slot < cut) {
        cut = slot;
        error = failedAt.err;
      }
    }
    mems.forEach((m, k) => {
      const slot = (plans[k] as Plan).slot;
      const e = events[slot] as SourceEvent;
      if (slot < cut) events[slot] = new EventRecord(e.partitionIndex, e.idNumber ?? e.id, e.metadata, m, e.headers);
      else m.release();
    });
    events.length = cut;
    return error;
  }

  /**
   * The memory of each plan, up to the first whose selection or allocation fails, with the pieces to read into it and
   * where each plan's bytes end in the data file.
   */
  private allocatePlans(plans: Plan[]): { pieces: Piece[]; mems: DataSegments[]; ends: number[]; error: unknown } {
    const pieces: Piece[] = [];
    const mems: DataSegments[] = [];
    const ends: number[] = [];
    for (const p of plans) {
      const own: Piece[] = [];
      let end = 0;
      try {
        mems.push(
          allocateSelection(p.metadata, p.ds, p.selected, this.o.dataAllocator, (off, size, dst, dstOffset) => {
            own.push({ src: p.dof + off, dst: dstOffset === 0 && size === dst.length ? dst : dst.subarray(dstOffset, dstOffset + size) });
            end = Math.max(end, p.dof + off + size);
          }),
        );
      } catch (error) {
        return { pieces, mems, ends, error };
      }
      for (const x of own) pieces.push(x);
      ends.push(end);
    }
    return { pieces, mems, ends, error: undefined };
  }

  private checkGrace(c: PartitionCursor, which: 'metadata' | 'data'): void {
    const now = performance.now();
    if (c.invisibleSince === undefined) c.invisibleSince = now;
    else if (now - c.invisibleSince > VISIBILITY_GRACE_MS) {
      c.invisibleSince = undefined;
      throw new DiasporaError(`Corrupted ${which} index: entry points beyond end of file (event ${c.next} of partition ${c.index}, ${c.files.dir})`, {
        code: ErrorCodes.CORRUPTED,
      });
    }
  }

  /**
   * Reads new headers records; returns the id → record map (undefined when the partition has none). Only records of
   * ids the index had before the file is read are taken: no writer makes an id visible before cutting a crashed
   * writer's stale records of it (writer.ts), so those records are final. A record past them may be stale, and a
   * repairing writer may rewrite it with one of the same size, which the file size would not show: it stays unread
   * (read again next time), so the file is only read again while it holds records beyond the index.
   */
  private async loadHeaders(c: PartitionCursor): Promise<Map<number, HeadersRecord> | undefined> {
    const size = c.files.size('headers');
    if (size === c.headersPos) return c.headers.size > 0 ? c.headers : undefined;
    const count = Math.floor(c.files.size('index') / INDEX_RECORD_SIZE);
    const fd = c.files.readFd('headers') as number;
    // a writer's tail repair may have cut and rewritten records we already read: the file then
    // shrank, or the last record we read is no longer where it was
    if (size < c.headersPos || (c.lastHeaders !== undefined && !(await this.sameRecord(fd, c.lastHeaders)))) {
      c.headersPos = 0;
      c.lastHeaders = undefined;
      c.headers.clear();
    }
    if (size > c.headersPos) {
      const buf = readBuffer(size - c.headersPos, c.headersPos);
      await preadFull(fd, buf, 0, buf.length, c.headersPos);
      let start = c.headersPos;
      for (const rec of decodeHeadersRecords(buf, c.headersPos)) {
        if (rec.eventId >= count) break;
        if (rec.eventId >= c.next) c.headers.set(rec.eventId, rec);
        c.lastHeaders = { start, eventId: rec.eventId, metadataOffset: rec.metadataOffset };
        start = rec.end;
        c.headersPos = rec.end;
      }
    }
    return c.headers.size > 0 ? c.headers : undefined;
  }

  private async sameRecord(fd: number, r: { start: number; eventId: number; metadataOffset: number }): Promise<boolean> {
    const b = Buffer.allocUnsafe(16);
    if ((await preadFull(fd, b, 0, 16, r.start)) < 16) return false;
    return readU64(b, 0) === r.eventId && readU64(b, 8) === r.metadataOffset;
  }

  async commit(positions: ReadonlyMap<number, EventID>): Promise<void> {
    if (this.positions === undefined) return;
    const m = new Map<string, number>();
    for (const [p, id] of positions) m.set(partitionDirName(p), Number(id));
    await this.positions.save(m);
  }

  async endPositions(): Promise<Map<number, EventID>> {
    return new Map(this.cursors.map((c) => [c.index, BigInt(Math.floor(c.files.size('index') / INDEX_RECORD_SIZE))]));
  }

  async startPositions(): Promise<Map<number, EventID>> {
    return new Map(this.cursors.map((c) => [c.index, BigInt(c.start)]));
  }

  async close(): Promise<void> {}
}
