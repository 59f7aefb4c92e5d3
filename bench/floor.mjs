#!/usr/bin/env node
// The machine's floor for scenarios (a) and (c) of bench/files.sh: the least a Node.js program must do for the same
// bytes, with no API at all, so that our figures can be read against what this machine allows in the same minute.
//
//   node bench/floor.mjs produce <dir>                 (a): 100,000 × 128-byte metadata records, batches of 128
//   node bench/floor.mjs consume <partition-dir>       (c): the events of a files partition written by (b)
//
// produce: each event's JSON text is written after an 8-byte length into the batch buffer and gets a 32-byte index
// entry and one small object (what a push future is at least); every 128 events, one synchronous positional write of
// the metadata and one of the index (as the files driver does for small batches), then an await.
// consume: per 2,048 events, the index entries are read, then the data span with parallel 2 MiB preads into one
// fresh buffer (placed for a fast copy, as the driver's readBuffer does), one fetch ahead of the consumer; each event
// is one object with a view of its data, delivered through one awaited promise (what pull().wait() is at least).
// Each runs WARMUP rounds (default 4, not measured, like the benchmarks' warm-up), then the measured one, and prints
// "Throughput: X events/s" like diaspora-ctl bench. N (default 100,000) events.
import fs from 'node:fs';
import { join } from 'node:path';

const [mode, dir] = process.argv.slice(2);
const N = Number(process.env.N ?? 100_000);
const WARMUP = Number(process.env.WARMUP ?? 4);
if ((mode !== 'produce' && mode !== 'consume') || dir === undefined) {
  console.error('usage: node bench/floor.mjs produce <dir> | consume <partition-dir>');
  process.exit(2);
}

async function produce(round) {
  const BATCH = 128;
  const texts = [];
  for (let i = 0; i < 1024; i++) texts.push(`{"p":"${String(i).padStart(120, 'x')}"}`);
  const mfd = fs.openSync(join(dir, `floor-metadata-${round}`), 'w');
  const ifd = fs.openSync(join(dir, `floor-index-${round}`), 'w');
  const start = performance.now();
  let mpos = 0;
  let ipos = 0;
  let meta = Buffer.allocUnsafe(BATCH * 160);
  let index = Buffer.allocUnsafe(BATCH * 32);
  let n = 0;
  let mp = 0;
  const pending = [];
  for (let i = 0; i < N; i++) {
    const len = meta.write(texts[i & 1023], mp + 8, 'utf8');
    meta.writeUInt32LE(len, mp);
    meta.writeUInt32LE(0, mp + 4);
    index.writeUInt32LE(mpos + mp, n * 32);
    index.writeUInt32LE(len + 8, n * 32 + 8);
    mp += len + 8;
    n++;
    pending.push({ i, done: false });
    if (n === BATCH || i === N - 1) {
      fs.writeSync(mfd, meta, 0, mp, mpos);
      fs.writeSync(ifd, index, 0, n * 32, ipos);
      mpos += mp;
      ipos += n * 32;
      for (const p of pending) p.done = true;
      pending.length = 0;
      meta = Buffer.allocUnsafe(BATCH * 160);
      index = Buffer.allocUnsafe(BATCH * 32);
      n = 0;
      mp = 0;
      await null;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  fs.closeSync(mfd);
  fs.closeSync(ifd);
  fs.rmSync(join(dir, `floor-metadata-${round}`));
  fs.rmSync(join(dir, `floor-index-${round}`));
  return seconds;
}

function pread(fd, buf, offset, length, position) {
  return new Promise((resolve, reject) => fs.read(fd, buf, offset, length, position, (err, got) => (err ? reject(err) : resolve(got))));
}

async function consume() {
  const FETCH = 2048;
  const CHUNK = 2 << 20;
  const ifd = fs.openSync(join(dir, 'index'), 'r');
  const dfd = fs.openSync(join(dir, 'data'), 'r');
  const available = Math.floor(fs.fstatSync(ifd).size / 32);
  if (available < N) throw new Error(`${dir} holds ${available} events, fewer than N = ${N}`);
  async function fetch(first) {
    const count = Math.min(FETCH, N - first);
    const index = Buffer.allocUnsafeSlow(count * 32);
    await pread(ifd, index, 0, index.length, first * 32);
    const lo = index.readUIntLE(16, 6);
    const hi = index.readUIntLE((count - 1) * 32 + 16, 6) + index.readUIntLE((count - 1) * 32 + 24, 6);
    const skew = (lo - 16) & 63;
    const data = Buffer.allocUnsafeSlow(hi - lo + 64).subarray(skew, skew + hi - lo);
    const reads = [];
    for (let off = 0; off < data.length; off += CHUNK) reads.push(pread(dfd, data, off, Math.min(CHUNK, data.length - off), lo + off));
    await Promise.all(reads);
    const events = [];
    for (let k = 0; k < count; k++) {
      const o = index.readUIntLE(k * 32 + 16, 6) - lo;
      events.push({ id: first + k, data: data.subarray(o, o + index.readUIntLE(k * 32 + 24, 6)) });
    }
    return events;
  }
  const start = performance.now();
  let next = fetch(0);
  let fetched = FETCH;
  let count = 0;
  let bytes = 0;
  while (count < N) {
    const events = await next;
    if (fetched < N) {
      next = fetch(fetched);
      fetched += FETCH;
    }
    for (const e of events) {
      const got = await Promise.resolve(e);
      bytes += got.data.length;
      count++;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  fs.closeSync(ifd);
  fs.closeSync(dfd);
  if (bytes === 0) throw new Error('no data read');
  return seconds;
}

let seconds = 0;
for (let round = 0; round <= WARMUP; round++) seconds = mode === 'produce' ? await produce(round) : await consume();
console.log(`Total events: ${N}`);
console.log(`Throughput: ${(N / seconds).toFixed(2)} events/s`);
