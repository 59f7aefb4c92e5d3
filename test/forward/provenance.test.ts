import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodedHeaders } from '../../src/api/event.js';
import { dumpCompact } from '../../src/api/json.js';
import { decodeHeadersRecords, encodeHeadersRecords } from '../../src/drivers/files/headers-file.js';
import { ProvenanceHeaders } from '../../src/forward/provenance.js';
import { writeVarint } from '../../src/api/varint.js';

/** The bytes an EncodedHeaders writes, read back as text. */
function written(h: ReturnType<ProvenanceHeaders['build']>): string {
  const enc = encodedHeaders(h);
  assert.ok(enc !== undefined, 'provenance-only headers carry their encoding');
  const buf = Buffer.alloc(enc.byteLength + 4, 0xee);
  enc.writeTo(buf, 2);
  assert.equal(buf[0], 0xee);
  assert.equal(buf[enc.byteLength + 2], 0xee, 'writes exactly byteLength bytes');
  return buf.toString('utf8', 2, 2 + enc.byteLength);
}

describe('forward provenance headers', () => {
  it('carry policy, source position and batch timestamp; the pre-encoding equals the canonical JSON', () => {
    const p = new ProvenanceHeaders('pol', 'files:/data/src');
    const h = p.build({}, 3, '18446744073709551614');
    assert.deepEqual(Object.keys(h), ['diaspora-policy', 'diaspora-src', 'diaspora-ts']);
    assert.equal(h['diaspora-src'], 'files:/data/src#3@18446744073709551614');
    assert.match(h['diaspora-ts'] as string, /^\d{19,}$/);
    assert.equal(written(h), dumpCompact(h as Record<string, string>));
  });

  it('escape quotes, backslashes and non-ASCII in the policy name and source id', () => {
    const p = new ProvenanceHeaders('pö"l\\', 'files:/dåta/"x"\n');
    const h = p.build({}, 0, '7');
    assert.equal(written(h), dumpCompact(h as Record<string, string>));
    assert.equal(JSON.parse(written(h))['diaspora-src'], 'files:/dåta/"x"\n#0@7');
  });

  it('keep the event’s own headers, drop its diaspora-* ones, and then leave encoding to the driver', () => {
    const p = new ProvenanceHeaders('pol', 'src');
    const h = p.build({ a: '1', 'diaspora-src': 'old#0@1', zz: '2' }, 1, '5');
    assert.deepEqual({ ...h }, { a: '1', zz: '2', 'diaspora-policy': 'pol', 'diaspora-src': 'src#1@5', 'diaspora-ts': h['diaspora-ts'] });
    assert.equal(encodedHeaders(h), undefined);
  });

  it('a copy of the headers (which copies the symbol too) is encoded afresh, so changing it is safe', () => {
    const h = new ProvenanceHeaders('pol', 'src').build({}, 0, '1');
    const copy = { ...h, extra: 'x' };
    assert.equal(encodedHeaders(copy), undefined);
    const [rec] = decodeHeadersRecords(encodeHeadersRecords([{ eventId: 0, metadataOffset: 0, headers: copy }]), 0);
    assert.equal(rec?.headers['extra'], 'x');
  });

  it('a new batch takes a new timestamp, used by the next events only', async () => {
    const p = new ProvenanceHeaders('pol', 'src');
    const before = p.build({}, 0, '1');
    await new Promise((r) => setTimeout(r, 2));
    p.startBatch();
    const after = p.build({}, 0, '2');
    assert.ok(BigInt(after['diaspora-ts'] as string) > BigInt(before['diaspora-ts'] as string));
    assert.equal(written(before), dumpCompact(before as Record<string, string>));
    assert.equal(written(after), dumpCompact(after as Record<string, string>));
  });

  it('round-trip through the files headers records, mixed with headers the driver encodes itself', () => {
    const p = new ProvenanceHeaders('pol', 'src');
    const records = [
      { eventId: 0, metadataOffset: 0, headers: p.build({}, 0, '0') },
      { eventId: 1, metadataOffset: 10, headers: p.build({ k: 'ü' }, 0, '1') },
      { eventId: 2, metadataOffset: 20, headers: p.build({}, 0, '2') },
    ];
    const decoded = decodeHeadersRecords(encodeHeadersRecords(records), 0);
    assert.deepEqual(
      decoded.map((r) => [r.eventId, r.metadataOffset, r.headers]),
      records.map((r) => [r.eventId, r.metadataOffset, Object.fromEntries(Object.entries(r.headers))]),
    );
  });

  it('the Kafka headers section (count, varint-length keys and values) of the provenance headers, batch after batch, non-ASCII source id', async () => {
    const p = new ProvenanceHeaders('pol/ü', 'files:/data/é#x');
    for (let batch = 0; batch < 2; batch++) {
      p.startBatch();
      for (const [partition, id] of [[0, '0'], [12, '123456789012'], [3, '7']] as const) {
        const h = p.build({}, partition, id);
        const section = encodedHeaders(h)?.kafka;
        assert.ok(section !== undefined);
        const out = Buffer.alloc(section.byteLength + 4, 0xee);
        section.writeTo(out, 2);
        // the reference: every pair of the headers object, in its order
        const entries = Object.entries(h);
        const parts: Buffer[] = [];
        const varint = (n: number): Buffer => {
          const b = Buffer.alloc(5);
          return b.subarray(0, writeVarint(b, 0, n));
        };
        parts.push(varint(entries.length));
        for (const [k, v] of entries) for (const t of [k, v]) parts.push(varint(Buffer.byteLength(t)), Buffer.from(t));
        assert.deepEqual(out.subarray(2, 2 + section.byteLength), Buffer.concat(parts));
        assert.deepEqual([out[0], out[1], out[out.length - 2], out[out.length - 1]], [0xee, 0xee, 0xee, 0xee]);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    // the event's own headers: no pre-encoding, the driver encodes them
    assert.equal(encodedHeaders(p.build({ k: 'v' }, 0, '1')), undefined);
  });

  it('many records per batch and batch after batch (affixes copied from the record before, in the same buffer): the canonical JSON each time', async () => {
    const a = new ProvenanceHeaders('pol-a', 'files:/x/a');
    const b = new ProvenanceHeaders('pol-b', 'files:/y/bb');
    for (let batch = 0; batch < 3; batch++) {
      a.startBatch();
      b.startBatch();
      // two policies interleaved, ids of changing lengths
      const records = Array.from({ length: 50 }, (_, i) => ({ eventId: i, metadataOffset: i * 7, headers: (i % 3 === 0 ? b : a).build({}, i % 4, String(i * 997 + batch)) }));
      const decoded = decodeHeadersRecords(encodeHeadersRecords(records), 0);
      assert.deepEqual(
        decoded.map((r) => r.headers),
        records.map((r) => Object.fromEntries(Object.entries(r.headers))),
      );
      await new Promise((r) => setTimeout(r, 2));
    }
  });
});
