/**
 * Byte archives handed to serializers (api.md §5.2). `deserialize` receives exactly the bytes of
 * one record (files: `metadata_size` bytes; kafka: `M` bytes).
 */
import { DiasporaError } from './errors.js';

export interface OutputArchive {
  /** Appends bytes. */
  write(bytes: Uint8Array): void;
}

export interface InputArchive {
  /** Consumes n bytes; throws when fewer remain. */
  read(n: number): Uint8Array;
  /** Bytes not yet consumed. */
  readonly remaining: number;
}

/** Collects written chunks. */
export class BufferOutputArchive implements OutputArchive {
  readonly chunks: Uint8Array[] = [];
  size = 0;
  write(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

export class BufferInputArchive implements InputArchive {
  private pos = 0;
  constructor(private readonly bytes: Uint8Array) {}
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  read(n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) {
      throw new DiasporaError('BufferWrapperInputArchive error: trying to read more than the buffer size');
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}
