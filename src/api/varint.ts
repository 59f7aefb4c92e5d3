/**
 * Zigzag varints of 32-bit signed values: the length and count encoding of Kafka record fields
 * (record batches, and the Kafka headers section the forwarder pre-encodes for its provenance headers).
 */

/** Bytes of a zigzag varint of a 32-bit signed value. */
export function varintSize(n: number): number {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  let size = 1;
  while (v >= 0x80) {
    v >>>= 7;
    size++;
  }
  return size;
}

export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}
