/** Names and paths of the on-disk layout (files-driver.md §3, §10.1). */
import { createHash } from 'node:crypto';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { DiasporaError, ErrorCodes } from '../../api/errors.js';

/** Partition directory name: index as %08u (more digits above 99,999,999). */
export function partitionDirName(i: number): string {
  return String(i).padStart(8, '0');
}

export const INDEX_RECORD_SIZE = 32;

/**
 * The directory of a topic; refuses names that would escape the root (reference-created odd names
 * stay openable). An absolute name escapes it: the reference's `root / name` is then `name`.
 */
export function topicDir(root: string, name: string): string {
  const dir = join(root, name);
  const rel = relative(resolve(root), resolve(dir));
  if (name === '' || isAbsolute(name) || rel === '' || rel.startsWith('..') || isAbsolute(rel) || name.includes('\0')) {
    throw new DiasporaError(`Invalid topic name: ${name}`, { code: ErrorCodes.INVALID_TOPIC_NAME });
  }
  return dir;
}

export function partitionDir(topicPath: string, i: number): string {
  return join(topicPath, 'partitions', partitionDirName(i));
}

/**
 * File name of a consumer's positions: UTF-8 bytes, keeping A–Z a–z 0–9 _ - and . (except a
 * leading .), others as %XX; longer than 200 bytes → first 150 bytes, "~", 16 hex of SHA-256.
 */
export function encodeConsumerName(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    const c = String.fromCharCode(b);
    const keep = /[A-Za-z0-9_-]/.test(c) || (c === '.' && i > 0);
    out += keep ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  if (out.length > 200) out = out.slice(0, 150) + '~' + createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 16);
  return out;
}
