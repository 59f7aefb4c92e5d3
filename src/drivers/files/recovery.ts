/**
 * Tail recovery after a crash (files-driver.md §11). Runs under the partition's write locks, once
 * per partition per process, before the first batch: truncates a torn index record, drops index
 * entries pointing beyond the metadata/data files, and drops headers records that are partial or
 * do not match the surviving index. Orphan metadata/data bytes are unreachable and left alone.
 */
import * as fs from 'node:fs';
import { log } from '../../api/logging.js';
import { preadFull } from '../common/fs-util.js';
import { HEADER_PREFIX, readU64 } from './headers-file.js';
import { INDEX_RECORD_SIZE } from './layout.js';
import type { PartitionFiles } from './partition.js';

export interface RecoveryReport {
  tornIndexBytes: number;
  droppedEntries: number;
  droppedHeaderBytes: number;
}

export async function recoverTail(part: PartitionFiles): Promise<RecoveryReport> {
  const fds = part.openWriteFds();
  const report: RecoveryReport = { tornIndexBytes: 0, droppedEntries: 0, droppedHeaderBytes: 0 };
  let indexSize = fs.fstatSync(fds.index).size;
  const metaSize = fs.fstatSync(fds.metadata).size;
  const dataSize = fs.fstatSync(fds.data).size;

  const torn = indexSize % INDEX_RECORD_SIZE;
  if (torn !== 0) {
    indexSize -= torn;
    report.tornIndexBytes = torn;
  }
  // walk back from the last entry while it points past the file ends (64 entries per read)
  let count = indexSize / INDEX_RECORD_SIZE;
  const chunk = Buffer.allocUnsafe(64 * INDEX_RECORD_SIZE);
  scan: while (count > 0) {
    const k = Math.min(64, count);
    const from = count - k;
    await preadFull(fds.index, chunk, 0, k * INDEX_RECORD_SIZE, from * INDEX_RECORD_SIZE);
    for (let i = k - 1; i >= 0; i--) {
      const r = i * INDEX_RECORD_SIZE;
      const metaEnd = readU64(chunk, r) + readU64(chunk, r + 8);
      const dataEnd = readU64(chunk, r + 16) + readU64(chunk, r + 24);
      if (metaEnd <= metaSize && dataEnd <= dataSize) break scan;
      count--;
      report.droppedEntries++;
    }
  }
  if (count * INDEX_RECORD_SIZE !== fs.fstatSync(fds.index).size) fs.ftruncateSync(fds.index, count * INDEX_RECORD_SIZE);

  const hfd = part.headersFd(false);
  if (hfd !== undefined) {
    const hsize = fs.fstatSync(hfd).size;
    const keep = await validHeadersPrefix(hfd, hsize, fds.index, count);
    if (keep < hsize) {
      fs.ftruncateSync(hfd, keep);
      report.droppedHeaderBytes = hsize - keep;
    }
    part.headersBoundary = keep;
  }
  if (report.tornIndexBytes + report.droppedEntries + report.droppedHeaderBytes > 0) {
    log.warn(
      `Recovered partition ${part.dir}: removed ${report.tornIndexBytes} torn index byte(s), ` +
        `${report.droppedEntries} index entr${report.droppedEntries === 1 ? 'y' : 'ies'} beyond end of file, ` +
        `${report.droppedHeaderBytes} headers byte(s)`,
    );
  }
  return report;
}

/**
 * End of the longest run of complete headers records, starting at the record boundary `from`,
 * whose ids are < count and whose metadata offsets match the index. Records are written in id
 * order and a crashed writer's records can only be at the tail (writers check the tail before
 * appending, see writer.ts), so the first invalid record starts the stale tail.
 */
export async function validHeadersPrefix(hfd: number, hsize: number, indexFd: number, count: number, from = 0): Promise<number> {
  const buf = Buffer.allocUnsafe(hsize - from);
  await preadFull(hfd, buf, 0, buf.length, from);
  const entry = Buffer.allocUnsafe(8);
  let pos = 0;
  while (pos + HEADER_PREFIX <= buf.length) {
    const len = buf.readUInt32LE(pos + 16);
    if (pos + HEADER_PREFIX + len > buf.length) break;
    const id = readU64(buf, pos);
    if (id >= count) break;
    await preadFull(indexFd, entry, 0, 8, id * INDEX_RECORD_SIZE);
    if (readU64(entry, 0) !== readU64(buf, pos + 8)) break;
    pos += HEADER_PREFIX + len;
  }
  return from + pos;
}
