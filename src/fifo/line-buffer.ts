/**
 * Splits a byte stream into lines on `\n` (0x0A) without decoding it, so multi-byte UTF-8 sequences split across
 * reads are reassembled before they are validated, and each byte is scanned once (a long line arriving in many
 * chunks is joined only when its `\n` arrives).
 */
const LF = 0x0a;

export class ByteLineBuffer {
  /** Chunks not scanned yet. */
  private readonly queue: Buffer[] = [];
  private cur: Buffer | undefined;
  private pos = 0;
  /** Pieces of the unfinished line (no `\n` inside). */
  private partial: Buffer[] = [];
  private partialBytes = 0;

  push(chunk: Buffer): void {
    if (chunk.length > 0) this.queue.push(chunk);
  }

  /** The next complete line without its `\n`, or undefined when no complete line is buffered. */
  next(): Buffer | undefined {
    for (;;) {
      if (this.cur === undefined || this.pos >= this.cur.length) {
        this.cur = this.queue.shift();
        this.pos = 0;
        if (this.cur === undefined) return undefined;
      }
      const idx = this.cur.indexOf(LF, this.pos);
      if (idx < 0) {
        const piece = this.cur.subarray(this.pos);
        this.partial.push(piece);
        this.partialBytes += piece.length;
        this.cur = undefined;
        continue;
      }
      let line = this.cur.subarray(this.pos, idx);
      this.pos = idx + 1;
      if (this.partial.length > 0) {
        this.partial.push(line);
        line = Buffer.concat(this.partial, this.partialBytes + line.length);
        this.partial = [];
        this.partialBytes = 0;
      }
      return line;
    }
  }

  /** Removes and returns everything buffered that is not a complete line (the final unterminated line). */
  takeRest(): Buffer {
    const pieces = [...this.partial];
    if (this.cur !== undefined && this.pos < this.cur.length) pieces.push(this.cur.subarray(this.pos));
    pieces.push(...this.queue);
    this.partial = [];
    this.partialBytes = 0;
    this.cur = undefined;
    this.pos = 0;
    this.queue.length = 0;
    return Buffer.concat(pieces);
  }
}
