/**
 * Little-endian integers from JS numbers with plain byte stores: on per-record hot paths they cost
 * about a quarter of Buffer's writeUInt32LE, whose argument checks dominate for 4-byte writes.
 */

export function writeU32LE(buf: Uint8Array, pos: number, v: number): void {
  buf[pos] = v;
  buf[pos + 1] = v >>> 8;
  buf[pos + 2] = v >>> 16;
  buf[pos + 3] = v >>> 24;
}

/** u64 LE of a number below 2^53 (file offsets, ids, sizes). */
export function writeU64LE(buf: Uint8Array, pos: number, v: number): void {
  writeU32LE(buf, pos, v >>> 0);
  writeU32LE(buf, pos + 4, Math.floor(v / 0x1_0000_0000));
}
