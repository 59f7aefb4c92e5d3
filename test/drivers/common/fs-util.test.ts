/** readBuffer: buffers for preads, skewed so that the page-cache copy runs at full speed (see its comment). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preadFull, preadvFull, readBuffer } from '../../../src/drivers/common/fs-util.js';

describe('fs-util readBuffer', () => {
  it('has the requested length, its own ArrayBuffer, and a 16-byte aligned start for positions that are', { timeout: 5000 }, () => {
    for (const size of [0, 1, 100, 4095, 4096, 65536, 3 << 20]) {
      for (const position of [0, 16, 32, 4096, 123456 * 16]) {
        const b = readBuffer(size, position);
        assert.equal(b.length, size);
        assert.equal(b.byteOffset % 16, 0, `size ${size} position ${position}: byteOffset ${b.byteOffset}`);
        assert.ok(b.buffer.byteLength <= size + 64);
        // a Uint32Array view over it (the files source reads the index this way)
        assert.equal(new Uint32Array(b.buffer, b.byteOffset, size >> 2).length, size >> 2);
      }
    }
    // a large buffer starts where a glibc mmap chunk (16 bytes into a page) puts it in the same cache-line offset as the file position
    assert.equal(readBuffer(1 << 20, 0).byteOffset, 48);
    assert.equal(readBuffer(1 << 20, 4096 + 16).byteOffset, 0);
    assert.equal(readBuffer(1 << 20, 100).byteOffset, (100 - 16) & 63);
  });

  it('reads file bytes exactly', { timeout: 5000 }, async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'fsutil-'));
    try {
      const bytes = Buffer.from(Array.from({ length: 300000 }, (_, i) => (i * 7) & 0xff));
      fs.writeFileSync(join(dir, 'f'), bytes);
      const fd = fs.openSync(join(dir, 'f'), 'r');
      try {
        for (const [pos, len] of [[0, 300000], [4097, 200000], [3, 10]] as const) {
          const b = readBuffer(len, pos);
          assert.equal(await preadFull(fd, b, 0, len, pos), len);
          assert.ok(b.equals(bytes.subarray(pos, pos + len)));
        }
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fs-util preadvFull', () => {
  it('fills more buffers than one preadv takes (IOV_MAX), partial buffers included, and stops at the end of the file', { timeout: 5000 }, async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'fsutil-'));
    try {
      const bytes = Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 13 + 5) & 0xff));
      fs.writeFileSync(join(dir, 'f'), bytes);
      const fd = fs.openSync(join(dir, 'f'), 'r');
      try {
        // 3,000 buffers of 1 to 5 bytes: libuv passes 1,024 per call
        const bufs = Array.from({ length: 3000 }, (_, i) => Buffer.alloc(1 + (i % 5)));
        const total = bufs.reduce((s, b) => s + b.length, 0);
        assert.equal(await preadvFull(fd, bufs, 7), total);
        assert.ok(Buffer.concat(bufs).equals(bytes.subarray(7, 7 + total)), 'bytes differ');
        // past the end: what exists is read, the count says how much
        const tail = [Buffer.alloc(10), Buffer.alloc(10)];
        assert.equal(await preadvFull(fd, tail, 19985), 15);
        assert.ok(tail[0]?.equals(bytes.subarray(19985, 19995)));
        assert.ok(tail[1]?.subarray(0, 5).equals(bytes.subarray(19995)));
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
