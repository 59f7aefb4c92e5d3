/**
 * Event metadata: any JSON value (api.md §2). A Metadata keeps whichever representation it was
 * built from (a value, or canonical text read from storage) and derives the other lazily, so a
 * forwarder that never looks inside metadata never parses or re-serialises it.
 */
import { DiasporaError, ErrorCodes } from './errors.js';
import { dumpCompact, dumpPretty, parseJson, type Json } from './json.js';

export type { Json, JsonObject } from './json.js';

const NOT_SET = Symbol('not set');

export class Metadata {
  private value: Json | typeof NOT_SET;
  private canonical: string | undefined;
  /** UTF-8 bytes of `canonical` (buffer, start, end), when read from storage (pass-through). */
  private utf8: Buffer | undefined;
  private utf8Start = 0;
  private utf8End = 0;

  /** Wraps a JSON value (default `{}`). The value is not copied. */
  constructor(value: Json = {}) {
    this.value = value;
  }

  /** Parses JSON text; throws `Could not parse JSON: …`. */
  static parse(text: string): Metadata {
    return new Metadata(parseJson(text));
  }

  /**
   * Metadata from text that is known to be the canonical compact form (as written by a
   * canonical writer); parsing is deferred until the value is needed, and `dump()` returns the
   * text unchanged. Invalid text raises its parse error when the value is first read.
   */
  static fromCanonicalText(text: string): Metadata {
    const md = new Metadata();
    md.value = NOT_SET;
    md.canonical = text;
    return md;
  }

  /**
   * Metadata from the UTF-8 bytes of a stored record's JSON text: decoded and parsed only when
   * needed, and written back byte for byte by producers (forwarding never re-encodes it).
   */
  static fromCanonicalBytes(bytes: Uint8Array): Metadata {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    return Metadata.fromStoredRange(b, 0, b.length);
  }

  /** Like fromCanonicalBytes for `buf[start, end)`, without creating a view until one is needed. */
  static fromStoredRange(buf: Buffer, start: number, end: number): Metadata {
    const md = new Metadata();
    md.value = NOT_SET;
    md.utf8 = buf;
    md.utf8Start = start;
    md.utf8End = end;
    return md;
  }

  /** The stored UTF-8 bytes when this metadata came from storage unchanged, else undefined. */
  storedBytes(): Uint8Array | undefined {
    return this.utf8?.subarray(this.utf8Start, this.utf8End);
  }

  /** Copies the stored UTF-8 bytes into `target` at `pos` (no view allocated); returns the count. */
  copyStoredTo(target: Buffer, pos: number): number {
    return (this.utf8 as Buffer).copy(target, pos, this.utf8Start, this.utf8End);
  }

  /**
   * Where this metadata's default-layout record (u32 LE length, u32 0, the stored bytes) already
   * sits, complete, in the buffer it was read from: producers then write that range as it is,
   * without copying it. -1 when there is no such record (the start of the range otherwise; it
   * ends at the stored bytes' end).
   */
  storedRecordStart(): number {
    const b = this.utf8;
    const s = this.utf8Start;
    if (b === undefined || s < 8 || b.readUInt32LE(s - 4) !== 0 || b.readUInt32LE(s - 8) !== this.utf8End - s) return -1;
    return s - 8;
  }

  /** The buffer holding the stored bytes (see storedRecordStart), when from storage. */
  get storedBuffer(): Buffer | undefined {
    return this.utf8;
  }

  /** End of the stored bytes in storedBuffer. */
  get storedEnd(): number {
    return this.utf8End;
  }

  /** Length of the stored UTF-8 bytes (0 when not from storage). */
  get storedLength(): number {
    return this.utf8 === undefined ? 0 : this.utf8End - this.utf8Start;
  }

  /** The JSON *string* s (the reference's `parse = false`). */
  static fromString(s: string): Metadata {
    return new Metadata(s);
  }

  /** Metadata as given; a JS string is parsed as JSON text (C++ implicit conversion, Python). */
  static from(x: Metadata | Json): Metadata {
    if (x instanceof Metadata) return x;
    if (typeof x === 'string') return Metadata.parse(x);
    return new Metadata(x);
  }

  /**
   * The JSON value. Values parsed from stored text are deep-frozen: the stored bytes are what a
   * producer writes back, so an in-place change would otherwise be silently lost. To change
   * metadata, build a new Metadata.
   */
  get json(): Json {
    if (this.value === NOT_SET) this.value = deepFreeze(parseJson(this.text()));
    return this.value;
  }

  private text(): string {
    if (this.canonical === undefined && this.utf8 !== undefined) {
      this.canonical = this.utf8.toString('utf8', this.utf8Start, this.utf8End);
    }
    return this.canonical as string;
  }

  /** Canonical compact text (`dump()`), or pretty text with `dump(2)`. The compact form is cached. */
  dump(indent?: number): string {
    if (indent !== undefined && indent > 0) return dumpPretty(this.json, indent);
    if (this.canonical === undefined) this.canonical = this.utf8 !== undefined ? this.text() : dumpCompact(this.json);
    return this.canonical;
  }

  /** The value if it is a JSON string. */
  string(): string {
    const v = this.json;
    if (typeof v !== 'string') throw new DiasporaError('Metadata content is not a string', { code: ErrorCodes.INVALID_ARGUMENT });
    return v;
  }

  toJSON(): unknown {
    return this.json;
  }

  toString(): string {
    return this.dump();
  }
}

function deepFreeze(v: Json): Json {
  if (typeof v === 'object' && v !== null) {
    for (const x of Array.isArray(v) ? v : Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Driver-defined description of a partition, e.g. `{"partition_id": 3}`. */
export type PartitionInfo = { [key: string]: Json };
