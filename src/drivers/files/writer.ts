/**
 * Appending a batch to a partition (files-driver.md §9.1): in-process mutex, advisory locks on
 * data → metadata → index, ends re-read under the lock (so several writer processes stay
 * correct), tail recovery once per process, then metadata, data, headers and finally all index
 * records in one write, with the fsync points of §9.3.
 *
 * Locks are Linux open-file-description locks (fs-native-extensions): our writers in any process
 * exclude each other; reference writers (which use flock) are not excluded — mixing writers with
 * the reference is unsupported whatever we do, since the reference trusts cached file ends.
 */
import * as fs from 'node:fs';
import * as fsx from 'fs-native-extensions';
import type { EventBatch, EventIds, Headers } from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes, errorMessage } from '../../api/errors.js';
import { faultInjectionEnabled, faultPoint } from '../../api/fault.js';
import { fsyncFd as rawFsync, pwrite, pwritev } from '../common/fs-util.js';
import { encodeHeadersRecords } from './headers-file.js';
import { INDEX_RECORD_SIZE } from './layout.js';
import type { FlushBehavior } from './options.js';
import type { PartitionFiles } from './partition.js';
import { recoverTail, validHeadersPrefix } from './recovery.js';
import { log } from '../../api/logging.js';

/** A headers record to write. */
interface HeadersRecordIn {
  eventId: number;
  metadataOffset: number;
  headers: Headers;
}

export interface WriteOptions {
  useFileLocking: boolean;
  flushBehavior: FlushBehavior;
}

/** fsync, its failure reported as SYNC_FAILED (the events written may be lost: see ErrorCodes.SYNC_FAILED). */
async function fsyncFd(fd: number): Promise<void> {
  try {
    await rawFsync(fd);
  } catch (err) {
    throw new DiasporaError(`fsync failed: ${errorMessage(err)}`, { code: ErrorCodes.SYNC_FAILED, cause: err });
  }
}

async function lockFd(fd: number): Promise<void> {
  // tryLock is a non-blocking fcntl; only contention goes to the (blocking) thread-pool wait
  if (!fsx.tryLock(fd)) await fsx.waitForLock(fd);
}

/**
 * Appends up to this size are written synchronously: a positional write into the page cache is a
 * bounded memcpy (2 MiB: ~0.2-0.5 ms here), while a round trip through libuv's thread pool costs
 * ~70 µs, wakes a pool thread that competes with the event loop for the CPU, and dominated small
 * batches. Larger writes, and every fsync (which waits for the disk), go through the thread pool
 * so the event loop never stalls long on them. 2 MiB is the producer's largest merged append
 * (MERGE_MAX_BYTES). Measured in 6 paired runs against 256 KiB: producer with 4 KiB data
 * 814-992 -> 1032-1466 MB/s (6 of 6), producer of 128-byte metadata 869-1107 k -> 669-1158 k
 * events/s (median +4 %). 64 KiB was worse for both (forwarding's 1000-event batches gained
 * a little from overlapping, the producer benchmark lost 10-60 %).
 */
const SYNC_WRITE_MAX = 2 * 1024 * 1024;

function writeSome(fd: number, bufs: Uint8Array[], position: number, sync: boolean): number | Promise<number> {
  const list = bufs.length > 1024 ? bufs.slice(0, 1024) : bufs;
  if (sync) {
    return list.length === 1 ? fs.writeSync(fd, list[0] as Uint8Array, 0, (list[0] as Uint8Array).length, position) : fs.writevSync(fd, list as NodeJS.ArrayBufferView[], position);
  }
  return list.length === 1 ? pwrite(fd, list[0] as Uint8Array, position) : pwritev(fd, list, position);
}

async function writeAll(what: string, fd: number, bufs: Uint8Array[], position: number, expected: number): Promise<void> {
  let written = 0;
  let pending = bufs;
  const sync = expected <= SYNC_WRITE_MAX;
  while (written < expected) {
    const r = writeSome(fd, pending, position + written, sync);
    const n = typeof r === 'number' ? r : await r;
    if (n <= 0) {
      throw new DiasporaError(`Failed to write batch ${what}: wrote ${written} bytes, expected ${expected}`, { code: ErrorCodes.IO });
    }
    written += n;
    if (written < expected) pending = skipBytes(pending, n);
  }
}

/** The buffers that remain after dropping the first n bytes. */
function skipBytes(bufs: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

export async function appendBatch(part: PartitionFiles, batch: EventBatch, o: WriteOptions): Promise<EventIds> {
  const release = await part.lock();
  try {
    const fds = part.openWriteFds();
    const locked: number[] = [];
    try {
      if (o.useFileLocking) {
        for (const fd of [fds.data, fds.metadata, fds.index]) {
          await lockFd(fd);
          locked.push(fd);
        }
      }
      if (!part.recovered) {
        await recoverTail(part);
        part.recovered = true;
      }
      return await writeLocked(part, fds, batch, o);
    } finally {
      for (let i = locked.length - 1; i >= 0; i--) fsx.unlock(locked[i] as number);
    }
  } finally {
    release();
    part.notifier.notify();
  }
}

async function writeLocked(
  part: PartitionFiles,
  fds: { index: number; metadata: number; data: number },
  batch: EventBatch,
  o: WriteOptions,
): Promise<EventIds> {
  // Re-read the ends under the lock: another process may have appended since our last batch.
  // Any append by another writer that succeeded grew the index, and a crashed one left it torn
  // or as it was: so when the index ends where our last append left it, the metadata and data
  // ends we left are still valid places to write (past them there can only be a crashed
  // writer's orphan bytes, which no index entry references), and two of the three fstats go.
  const indexStat = fs.fstatSync(fds.index);
  if (indexStat.nlink === 0) {
    // the partition was deleted under us (e.g. the topic directory removed): appending to the unlinked files would
    // lose the events without a word
    throw new DiasporaError(`Partition ${part.dir} was deleted: the topic no longer exists`, { code: ErrorCodes.TOPIC_NOT_FOUND });
  }
  const indexSize = indexStat.size;
  const ends = part.lastAppendEnds;
  part.lastAppendEnds = undefined; // set again only when this append succeeds
  const cached = ends !== undefined && ends.index === indexSize;
  const metaBase = cached ? ends.metadata : fs.fstatSync(fds.metadata).size;
  const dataBase = cached ? ends.data : fs.fstatSync(fds.data).size;
  const first = Math.floor(indexSize / INDEX_RECORD_SIZE);
  const n = batch.count;

  // index records, built before any write so a failure leaves nothing half-described; the
  // Uint32Array view writes little-endian words directly (every supported host is little-endian)
  const index = Buffer.allocUnsafe(n * INDEX_RECORD_SIZE);
  const words = new Uint32Array(index.buffer, index.byteOffset, n * 8);
  const dataBufs: Uint8Array[] = [];
  let metaStart = 0;
  let dataPos = dataBase;
  for (let i = 0, w = 0; i < n; i++, w += 8) {
    const metaEnd = batch.metadataEnds[i] as number;
    const seg = batch.data[i];
    const dsize = seg === undefined ? 0 : seg.size;
    const mo = metaBase + metaStart;
    words[w] = mo >>> 0;
    words[w + 1] = mo > 0xffffffff ? Math.floor(mo / 0x1_0000_0000) : 0;
    words[w + 2] = metaEnd - metaStart;
    words[w + 3] = 0;
    words[w + 4] = dataPos >>> 0;
    words[w + 5] = dataPos > 0xffffffff ? Math.floor(dataPos / 0x1_0000_0000) : 0;
    words[w + 6] = dsize >>> 0;
    words[w + 7] = dsize > 0xffffffff ? Math.floor(dsize / 0x1_0000_0000) : 0;
    if (dsize > 0) for (const s of (seg as NonNullable<typeof seg>).segments) if (s.length > 0) dataBufs.push(s);
    dataPos += dsize;
    metaStart = metaEnd;
  }

  await writeAll('metadata', fds.metadata, batch.metadata as Buffer[], metaBase, batch.metadataSize);
  faultPoint('files.after_metadata');
  if (dataBufs.length > 0) await writeAll('data', fds.data, dataBufs, dataBase, dataPos - dataBase);
  faultPoint('files.after_data');

  const recs = headersRecords(batch, first, metaBase);
  const headers = await headersTail(part, fds.index, first, recs.length > 0);
  // our records: their descriptor and the end past them
  let written: { fd: number; end: number } | undefined;
  if (headers !== undefined && recs.length > 0) {
    const buf = encodeHeadersRecords(recs);
    await writeAll('headers', headers.fd, [buf], headers.end, buf.length);
    written = { fd: headers.fd, end: headers.end + buf.length };
  }
  faultPoint('files.after_headers');

  if (o.flushBehavior === 'immediate') {
    // data before the index that points to it (the reference syncs all three afterwards)
    await Promise.all([fsyncFd(fds.metadata), fsyncFd(fds.data), written !== undefined ? fsyncFd(written.fd) : undefined]);
  }
  const indexPos = first * INDEX_RECORD_SIZE;
  if (faultInjectionEnabled) {
    fs.writeSync(fds.index, index, 0, INDEX_RECORD_SIZE / 2, indexPos);
    faultPoint('files.mid_index');
  }
  await writeAll('index', fds.index, [index], indexPos, index.length);
  if (o.flushBehavior === 'immediate') await fsyncFd(fds.index);
  part.lastAppendEnds = { index: indexPos + index.length, metadata: metaBase + batch.metadataSize, data: dataPos };
  // only now are our records valid: had the index write failed, the next batch would have cut them as stale
  if (written !== undefined) part.headersBoundary = written.end;
  return { first: BigInt(first) };
}

/** The headers records of a batch whose first event gets id `first` and whose metadata starts at `metaBase`. */
function headersRecords(batch: EventBatch, first: number, metaBase: number): HeadersRecordIn[] {
  const recs: HeadersRecordIn[] = [];
  if (batch.headers === undefined) return recs;
  let start = 0;
  for (let i = 0; i < batch.count; i++) {
    const h = batch.headers[i];
    if (h !== undefined) {
      for (const _ in h) {
        recs.push({ eventId: first + i, metadataOffset: metaBase + start, headers: h });
        break;
      }
    }
    start = batch.metadataEnds[i] as number;
  }
  return recs;
}

/**
 * The headers file (created when `create`) and its end, without a crashed writer's stale tail. Checked for every batch,
 * with headers or not: a crashed writer's records carry ids from `first` on (not in the index), so the events about to
 * take those ids would get its headers (with cached ends they even get the same metadata offsets), and later records
 * would follow stale ones. Records that other writers appended since our last look are kept. Undefined without a file.
 */
async function headersTail(part: PartitionFiles, indexFd: number, first: number, create: boolean): Promise<{ fd: number; end: number } | undefined> {
  const fd = part.headersFd(create);
  if (fd === undefined) return undefined;
  let end = fs.fstatSync(fd).size;
  if (end === part.headersBoundary) return { fd, end };
  const from = part.headersBoundary >= 0 && part.headersBoundary <= end ? part.headersBoundary : 0;
  const keep = await validHeadersPrefix(fd, end, indexFd, first, from);
  if (keep < end) {
    fs.ftruncateSync(fd, keep);
    log.warn(`Removed ${end - keep} byte(s) of stale headers records in ${part.dir}`);
    end = keep;
  }
  part.headersBoundary = end;
  return { fd, end };
}

/** fsync of every file of a partition (producer flush with `on_flush`). */
export async function syncPartition(part: PartitionFiles): Promise<void> {
  const release = await part.lock();
  try {
    const fds = part.writeFds;
    if (fds === undefined) return;
    const h = part.headersFd(false);
    await Promise.all([fsyncFd(fds.data), fsyncFd(fds.metadata), h !== undefined ? fsyncFd(h) : undefined]);
    await fsyncFd(fds.index);
  } finally {
    release();
  }
}
