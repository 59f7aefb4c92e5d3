/**
 * `diaspora-ctl fifo` end to end (diaspora-ctl.md §7): real daemon processes on the files driver, shell writers,
 * consumer FIFOs read through non-blocking descriptors, topics checked with the library.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  Daemon,
  FifoReader,
  createTopic,
  isFifo,
  produce,
  readTopic,
  runCtl,
  sendCommand,
  shellWrite,
  shellWriteBytes,
  sleep,
  tempDir,
  waitFor,
} from '../fifo/helpers.js';

const T = { timeout: 30_000 };

test('control FIFO, producer FIFO, consecutive writers, raw lines stored byte for byte, SIGTERM', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'run', 'ctl'); // parent directory created by the daemon
  const p1 = join(dir, 'p1');
  const created = await runCtl(['topic', 'create', '--driver', 'files', '--driver.root_path', root, '--name', 't1'], dir);
  assert.equal(created.code, 0, created.stderr);
  const d = Daemon.files(root, ctl, dir);
  try {
    // the spec's 1 s is checked on the daemon's own clock (its log timestamps, from "Starting" to "Created control
    // FIFO"): measured from the spawn it includes Node's start-up, 0.2-0.3 s idle but up to 0.9 s when CI runs two test
    // files and a Kafka broker on 2 cores; that bound is only a loose one
    const spawned = performance.now();
    assert.ok(await waitFor(() => isFifo(ctl), 10_000), `control FIFO not created within 10 s\n${d.stderr}`);
    const sinceSpawn = Math.round(performance.now() - spawned);
    await d.waitForLog('[info] Press Ctrl+C to stop.');
    const at = (text: string): number => {
      const m = new RegExp(`^\\[(\\d{4}-\\d\\d-\\d\\d) (\\d\\d:\\d\\d:\\d\\d\\.\\d{3})\\] \\[info\\] ${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm').exec(d.stderr);
      assert.ok(m !== null, `no timestamped line "${text}"\n${d.stderr}`);
      return Date.parse(`${m[1]}T${m[2]}`);
    };
    const ownMs = at(`Created control FIFO: ${ctl}`) - at('Starting Diaspora FIFO daemon...');
    console.log(`control FIFO created ${ownMs} ms after the daemon started (${sinceSpawn} ms after it was spawned)`);
    assert.ok(ownMs <= 1000, `control FIFO created ${ownMs} ms after the daemon started (spec: 1 s)`);
    for (const line of [
      '[info] Starting Diaspora FIFO daemon...',
      '[info] Driver: files',
      `[info] Control file: ${ctl}`,
      `[info] Created control FIFO: ${ctl}`,
      '[info] Daemon is running. Waiting for commands on control file...',
      '[info] Send commands in format:',
      '[info]   Producer: <fifo-name> -> <topic-name> (key=value, ...)',
      '[info]   Consumer: <fifo-name> <- <topic-name> (key=value, ...)',
    ]) {
      assert.equal(d.count(line), 1, line);
    }

    await sendCommand(ctl, `${p1} -> t1`);
    await d.waitForLog(`[info] Registered producer: ${p1} -> t1`);
    assert.equal(d.count(`[info] Received command: '${p1}' -> 't1'`), 1);
    assert.equal(d.count(`[info] Created FIFO: ${p1}`), 1);
    assert.ok(isFifo(p1));

    // consecutive writers, lines the reference could not store
    const first = ['he said "hi"', 'back\\slash and \\n not a newline', '{"not":"parsed"}'];
    const second = ['  leading and trailing spaces  ', 'unicode é ✓ 😀'];
    await shellWrite(p1, first.join('\n') + '\n');
    await shellWrite(p1, second.join('\n') + '\n');
    await shellWrite(p1, 'crlf line\r\n\n\r\nafter empty lines\n');
    await shellWriteBytes(p1, Buffer.concat([Buffer.from('bad \xff byte\n', 'latin1'), Buffer.from('still processed\n')]));
    const expected = [...first, ...second, 'crlf line', 'after empty lines', 'still processed'];
    // visible while the daemon runs (batch full or linger_ms), not only at shutdown
    const events = await readTopic(root, 't1', expected.length);
    assert.deepEqual(
      events.map((e) => e.metadata),
      expected,
    );
    assert.equal(d.count('[error] Failed to push event: invalid UTF-8'), 1);
    assert.ok(isFifo(p1), 'the producer FIFO stays registered across writers');

    // idle after writers went away: no spinning (the reference busy-loops here)
    const cpu0 = d.cpuMs();
    const t0 = Date.now();
    await sleep(1000);
    const share = (d.cpuMs() - cpu0) / (Date.now() - t0);
    assert.ok(share < 0.1, `idle CPU ${(share * 100).toFixed(1)} %`);

    const { code, elapsedMs } = await d.stop();
    assert.equal(code, 0, d.stderr);
    assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
    const lines = d.logLines;
    const order = [
      '[info] Received shutdown signal...',
      '[info] Shutting down daemon...',
      `[info] Closing and removing producer for FIFO: ${p1}`,
      `[info] Removed FIFO file: ${p1}`,
    ].map((l) => lines.indexOf(l));
    assert.ok(order.every((i, k) => i >= 0 && (k === 0 || i > (order[k - 1] as number))), `shutdown messages ${JSON.stringify(order)}\n${d.stderr}`);
    assert.ok(!existsSync(ctl), 'control FIFO removed');
    assert.ok(!existsSync(p1), 'producer FIFO created by the daemon removed');
  } finally {
    d.kill();
    cleanup();
  }
});

test('consumer FIFO: raw lines unquoted from the beginning; a new reader continues without loss or duplicates; restart continues', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const c1 = join(dir, 'c1');
  const p2 = join(dir, 'p2');
  await createTopic(root, 't2', { num_partitions: 1 });
  await produce(root, 't2', [{ metadata: 'e1 "quoted"' }, { metadata: 'e2 back\\slash' }, { metadata: { e: 3 } }, { metadata: 'e4' }, { metadata: 'two\nlines' }]);
  execFileSync('mkfifo', [c1]);
  let d = Daemon.files(root, ctl, dir);
  let reader: FifoReader | undefined;
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${c1} <- t2`);
    await d.waitForLog(`[info] Registered consumer: ${c1} <- t2`);

    // first reader: everything from the beginning, raw strings unquoted
    reader = new FifoReader(c1);
    assert.deepEqual(await reader.readLines(5), ['e1 "quoted"', 'e2 back\\slash', '{"e":3}', 'e4', '"two\\nlines"']);
    await d.waitForLog(`[info] Consumer FIFO '${c1}' opened successfully for writing`);
    await sleep(200);
    assert.equal(reader.lines().length, 5);
    reader.close();
    reader = undefined;

    // more events while nobody reads: the first write hits EPIPE, its event is kept for the next reader
    await sendCommand(ctl, `${p2} -> t2 (linger_ms=1)`);
    await d.waitForLog(`[info] Registered producer: ${p2} -> t2`);
    await shellWrite(p2, 'e6\ne7\ne8\n');
    await d.waitForLog(`[info] Reader closed consumer FIFO: ${c1}`);
    await sleep(300); // the daemon waits for a reader (every 100 ms) without pulling
    reader = new FifoReader(c1);
    assert.deepEqual(await reader.readLines(3), ['e6', 'e7', 'e8']);
    await shellWrite(p2, 'e9\n');
    assert.deepEqual(await reader.readLines(4), ['e6', 'e7', 'e8', 'e9']);
    await sleep(200);
    assert.equal(reader.lines().length, 4, 'no duplicates');
    assert.equal(d.count(`[info] Consumer FIFO '${c1}' opened successfully for writing`), 2);

    const stopped = await d.stop();
    assert.equal(stopped.code, 0, d.stderr);
    assert.equal(d.count(`[info] Consumer for FIFO '${c1}' closed (FIFO file not removed)`), 1);
    assert.ok(isFifo(c1), 'consumer FIFO not removed');
    reader.close();
    reader = undefined;

    // restart: the same path continues after the last fully written line
    await produce(root, 't2', [{ metadata: 'e10' }, { metadata: 'e11' }]);
    d = Daemon.files(root, ctl, dir);
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${c1} <- t2`);
    await d.waitForLog(`[info] Registered consumer: ${c1} <- t2`);
    reader = new FifoReader(c1);
    assert.deepEqual(await reader.readLines(2), ['e10', 'e11']);
    await sleep(200);
    assert.equal(reader.lines().length, 2);
    assert.equal((await d.stop()).code, 0, d.stderr);
  } finally {
    reader?.close();
    d.kill();
    cleanup();
  }
});

test('consumer FIFO: waits for a reader without pulling, complete lines under back-pressure, reader leaving mid-stream', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const c1 = join(dir, 'c1');
  const N = 3000;
  const payload = 'x'.repeat(90);
  await createTopic(root, 't3');
  await produce(root, 't3', Array.from({ length: N }, (_, i) => ({ metadata: `${String(i).padStart(5, '0')} ${payload}` })));
  execFileSync('mkfifo', [c1]);
  const d = Daemon.files(root, ctl, dir);
  let reader: FifoReader | undefined;
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${c1} <- t3`);
    await d.waitForLog(`[info] Registered consumer: ${c1} <- t3`);
    await sleep(300);
    assert.equal(d.count(`[info] Consumer FIFO '${c1}' opened successfully for writing`), 0);

    // ~280 KB: more than a pipe holds, so the daemon must wait for drain
    reader = new FifoReader(c1);
    await reader.readLines(100);
    await sleep(100); // let the daemon fill the pipe and wait for it to drain
    const firstBytes = reader.received;
    reader.close(); // goes away with a full pipe: EPIPE, the daemon survives
    reader = undefined;
    await d.waitForLog(`[info] Reader closed consumer FIFO: ${c1}`);
    reader = new FifoReader(c1);
    const firstLines = firstBytes.toString('utf8').split('\n').slice(0, -1);
    // the second reader gets complete lines only, in order, up to the last event
    const rest = await waitFor(() => reader!.lines().at(-1)?.startsWith(String(N - 1).padStart(5, '0')) === true, 10_000);
    assert.ok(rest, `second reader did not reach the end; ${reader.lines().length} lines`);
    const second = reader.lines();
    const index = (l: string): number => {
      assert.match(l, new RegExp(`^\\d{5} ${payload}$`));
      return Number(l.slice(0, 5));
    };
    firstLines.forEach((l, i) => assert.equal(index(l), i));
    const start = index(second[0] as string);
    second.forEach((l, i) => assert.equal(index(l), start + i));
    // what was lost is only what sat in the kernel pipe when the first reader left (at most 64 KiB)
    assert.ok(start >= firstLines.length && (start - firstLines.length) * 97 <= 65536 + 97, `first=${firstLines.length} start=${start}`);
    assert.equal((await d.stop()).code, 0, d.stderr);
  } finally {
    reader?.close();
    d.kill();
    cleanup();
  }
});

test('shutdown while a consumer waits for a full pipe: exit 0 at once, a restart resumes at the first line not completely written', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const c1 = join(dir, 'c1');
  const N = 2000;
  const line = (i: number): string => `${String(i).padStart(5, '0')} ${'z'.repeat(120)}`;
  await createTopic(root, 'tw');
  await produce(root, 'tw', Array.from({ length: N }, (_, i) => ({ metadata: line(i) })));
  execFileSync('mkfifo', [c1]);
  let d = Daemon.files(root, ctl, dir);
  let stuck: FifoReader | undefined;
  let reader: FifoReader | undefined;
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    stuck = new FifoReader(c1); // opened, never read while the daemon runs
    await sendCommand(ctl, `${c1} <- tw`);
    await d.waitForLog(`[info] Consumer FIFO '${c1}' opened successfully for writing`);
    await sleep(300);
    const { code, elapsedMs } = await d.stop();
    assert.equal(code, 0, d.stderr);
    assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
    await d.waitForLog(`[info] Consumer for FIFO '${c1}' closed (FIFO file not removed)`);
    // what the pipe holds: complete lines (acknowledged), possibly followed by the start of the unfinished one
    const got = stuck.lines();
    stuck.close();
    stuck = undefined;
    assert.ok(got.length > 0 && got.length < N, `${got.length} lines in the pipe`);
    got.forEach((l, i) => assert.equal(l, line(i)));

    d = Daemon.files(root, ctl, dir);
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    reader = new FifoReader(c1);
    await sendCommand(ctl, `${c1} <- tw`);
    const rest = await reader.readLines(N - got.length, 10_000);
    rest.forEach((l, i) => assert.equal(l, line(got.length + i)));
    await sleep(200);
    assert.equal(reader.lines().length, N - got.length, 'nothing more');
    assert.equal((await d.stop()).code, 0, d.stderr);
  } finally {
    stuck?.close();
    reader?.close();
    d.kill();
    cleanup();
  }
});

test('json and envelope formats, start option, --logging debug', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const [pj, pe, cj, ce, cl] = ['pj', 'pe', 'cj', 'ce', 'cl'].map((n) => join(dir, n)) as [string, string, string, string, string];
  await createTopic(root, 'tj');
  await createTopic(root, 'te');
  execFileSync('mkfifo', [cj, ce, cl]);
  const d = Daemon.files(root, ctl, dir, ['--logging', 'debug']);
  const readers: FifoReader[] = [];
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${pj} -> tj (format=json, batch_size=2)`);
    await sendCommand(ctl, `${pe} -> te (format=envelope)`);
    await d.waitForLog(`[info] Registered producer: ${pe} -> te`);
    assert.equal(d.count(`[info] Received command: '${pj}' -> 'tj' (format=json, batch_size=2)`), 1);

    await shellWrite(pj, '{"b":2,"a":[1,2.5,"x"]}\n"a string"\n{not json}\n42\n');
    await shellWrite(pe, '{"metadata":{"k":"v"},"data":"aGVsbG8="}\n{"data":"AAE="}\n[1]\n{"metadata":"no data"}\n');
    const tj = await readTopic(root, 'tj', 3);
    assert.deepEqual(
      tj.map((e) => e.metadata),
      [{ a: [1, 2.5, 'x'], b: 2 }, 'a string', 42],
    );
    const te = await readTopic(root, 'te', 3);
    assert.deepEqual(
      te.map((e) => [e.metadata, e.data.toString('base64')]),
      [
        [{ k: 'v' }, 'aGVsbG8='],
        [{}, 'AAE='],
        ['no data', ''],
      ],
    );
    assert.equal(d.logLines.filter((l) => l.startsWith('[error] Failed to push event: Could not parse JSON: ')).length, 1);
    assert.equal(d.count('[error] Failed to push event: Invalid envelope: expected a JSON object'), 1);
    assert.ok(d.logLines.some((l) => l.startsWith("[debug] Pushed to 'tj': ")), 'per-event debug log');

    await sendCommand(ctl, `${cj} <- tj (format=json, start=earliest)`);
    await sendCommand(ctl, `${ce} <- te (format=envelope)`);
    readers.push(new FifoReader(cj), new FifoReader(ce));
    assert.deepEqual(await (readers[0] as FifoReader).readLines(3), ['{"a":[1,2.5,"x"],"b":2}', '"a string"', '42']);
    assert.deepEqual(await (readers[1] as FifoReader).readLines(3), [
      '{"data":"aGVsbG8=","metadata":{"k":"v"}}',
      '{"data":"AAE=","metadata":{}}',
      '{"metadata":"no data"}',
    ]);

    // start=latest: only what is produced after registration
    await sendCommand(ctl, `${cl} <- tj (start=latest)`);
    await d.waitForLog(`[info] Registered consumer: ${cl} <- tj`);
    readers.push(new FifoReader(cl));
    await d.waitForLog(`[info] Consumer FIFO '${cl}' opened successfully for writing`);
    await shellWrite(pj, '"late"\n');
    assert.deepEqual(await (readers[2] as FifoReader).readLines(1), ['late']);
    assert.deepEqual(await (readers[0] as FifoReader).readLines(4), ['{"a":[1,2.5,"x"],"b":2}', '"a string"', '42', '"late"']);
    assert.equal((await d.stop()).code, 0, d.stderr);
  } finally {
    for (const r of readers) r.close();
    d.kill();
    cleanup();
  }
});

test('producer back-pressure: a large write with small batches is stored completely and in order', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const p = join(dir, 'p');
  const N = 50_000;
  await createTopic(root, 'tb');
  const d = Daemon.files(root, ctl, dir);
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${p} -> tb (batch_size=8, linger_ms=0)`);
    await d.waitForLog(`[info] Registered producer: ${p} -> tb`);
    const text = Array.from({ length: N }, (_, i) => `line ${i} ${'y'.repeat(i % 50)}`).join('\n') + '\n';
    await shellWriteBytes(p, Buffer.from(text), 20_000);
    const events = await readTopic(root, 'tb', N, 15_000);
    assert.equal(events.length, N);
    events.forEach((e, i) => {
      if (e.metadata !== `line ${i} ${'y'.repeat(i % 50)}`) assert.fail(`event ${i}: ${JSON.stringify(e.metadata)}`);
    });
    assert.equal((await d.stop()).code, 0, d.stderr);
  } finally {
    d.kill();
    cleanup();
  }
});

test('re-registration: same options → warning; other options → flushed and replaced; FIFO kept', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const p = join(dir, 'p');
  await createTopic(root, 'ta');
  await createTopic(root, 'tb');
  const d = Daemon.files(root, ctl, dir);
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${p} -> ta`);
    await sendCommand(ctl, `${p} -> ta (batch_size=128, format=raw)`);
    await d.waitForLog(`[warning] FIFO '${p}' already registered`);
    await shellWrite(p, 'to a\n');
    await sendCommand(ctl, `${p} -> tb (format=json)`);
    await d.waitForLog(`[info] Registered producer: ${p} -> tb`);
    await shellWrite(p, '{"to":"b"}\n');
    assert.deepEqual(
      (await readTopic(root, 'ta', 1)).map((e) => e.metadata),
      ['to a'],
    );
    assert.deepEqual(
      (await readTopic(root, 'tb', 1)).map((e) => e.metadata),
      [{ to: 'b' }],
    );
    assert.equal(d.count(`[info] Created FIFO: ${p}`), 1);
    assert.equal((await d.stop()).code, 0, d.stderr);
  } finally {
    d.kill();
    cleanup();
  }
});

test('shutdown reads what writers left in producer FIFOs, even an unterminated last line; a second signal exits 1', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const p = join(dir, 'p');
  await createTopic(root, 'ts');
  let d = Daemon.files(root, ctl, dir);
  let fd: number | undefined;
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${p} -> ts`);
    await d.waitForLog(`[info] Registered producer: ${p} -> ts`);
    // a writer that is still connected at shutdown, with an unterminated last line
    fd = openSync(p, constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fd, 'one\ntwo\nunterminated');
    const { code, elapsedMs } = await d.stop();
    assert.equal(code, 0, d.stderr);
    assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
    closeSync(fd);
    fd = undefined;
    assert.deepEqual(
      (await readTopic(root, 'ts', 3)).map((e) => e.metadata),
      ['one', 'two', 'unterminated'],
    );

    // second signal while the first shutdown waits for that writer: exit 1 at once
    d = Daemon.files(root, ctl, dir);
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${p} -> ts`);
    await d.waitForLog(`[info] Registered producer: ${p} -> ts`);
    fd = openSync(p, constants.O_WRONLY | constants.O_NONBLOCK);
    d.signal('SIGINT');
    await d.waitForLog('[info] Shutting down daemon...');
    const t0 = Date.now();
    d.signal('SIGINT');
    const info = await d.exit(5000);
    assert.equal(info.code, 1, d.stderr);
    assert.ok(info.at - t0 < 1000, `second signal took ${info.at - t0} ms`);
  } finally {
    if (fd !== undefined) closeSync(fd);
    d.kill();
    cleanup();
  }
});

test('idle daemon with producer and consumer FIFOs (with and without reader) stays below 10 % CPU; reader wait warning; --logging warn', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const [p, c1, c2] = ['p', 'c1', 'c2'].map((n) => join(dir, n)) as [string, string, string];
  await createTopic(root, 'ti');
  execFileSync('mkfifo', [c1, c2]);
  const d = Daemon.files(root, ctl, dir, ['--logging', 'warn']);
  let reader: FifoReader | undefined;
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 10_000)); // set-up wait (the 1 s bound has its own test)
    await sendCommand(ctl, `${p} -> ti\n${c1} <- ti\n${c2} <- ti`);
    const registered = Date.now();
    assert.ok(await waitFor(() => isFifo(p), 3000));
    reader = new FifoReader(c1);
    await shellWrite(p, 'one\n');
    assert.deepEqual(await reader.readLines(1), ['one']);
    await sleep(200);
    const cpu0 = d.cpuMs();
    const t0 = Date.now();
    await sleep(1000);
    const share = (d.cpuMs() - cpu0) / (Date.now() - t0);
    assert.ok(share < 0.1, `idle CPU ${(share * 100).toFixed(1)} %`);
    assert.equal(d.stderr, '', 'nothing logged below warning level');

    // c2 never gets a reader: one warning after 5 s, and the daemon keeps waiting
    const warning = `[warning] Waiting for a reader on consumer FIFO '${c2}'`;
    await d.waitForLog(warning, 7000);
    assert.ok(Date.now() - registered >= 4900, 'warning not before 5 s');
    await sleep(300);
    assert.deepEqual(d.logLines, [warning]);
    // a late reader still gets everything
    const late = new FifoReader(c2);
    try {
      assert.deepEqual(await late.readLines(1), ['one']);
    } finally {
      late.close();
    }
    assert.equal((await d.stop()).code, 0);
  } finally {
    reader?.close();
    d.kill();
    cleanup();
  }
});

test('shutdown removes the control FIFO only if it still is one: a regular file put at its path is left alone', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const d = Daemon.files(root, ctl, dir);
  try {
    assert.ok(await waitFor(() => isFifo(ctl), 5000), `control FIFO not created\n${d.stderr}`);
    await d.waitForLog('[info] Press Ctrl+C to stop.');
    rmSync(ctl);
    writeFileSync(ctl, 'precious\n');
    const { code } = await d.stop();
    assert.equal(code, 0, d.stderr);
    assert.equal(readFileSync(ctl, 'utf8'), 'precious\n');
    assert.ok(d.logLines.includes(`[warning] Not removing ${ctl}: it is no longer a FIFO`), d.stderr);
  } finally {
    d.kill();
    cleanup();
  }
});

test("a plugin's stray error shuts the daemon down in order: [critical] with the stack, events kept, FIFOs removed, exit 1", T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  const p1 = join(dir, 'p1');
  const trigger = join(dir, 'trigger');
  // a driver plugin wrapping the files driver, with a timer that throws once the test creates `trigger`
  writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
  writeFileSync(
    join(dir, 'stray.js'),
    `import { existsSync } from 'node:fs';
export function register(r) {
  r.registerDriver('strayfiles', (o) => {
    const poll = setInterval(() => {
      if (existsSync(${JSON.stringify(trigger)})) {
        clearInterval(poll);
        throw new Error('plugin stray boom');
      }
    }, 20);
    return r.drivers.get('files')(o);
  });
}
`,
  );
  const created = await runCtl(['topic', 'create', '--driver', 'files', '--driver.root_path', root, '--name', 't1'], dir);
  assert.equal(created.code, 0, created.stderr);
  const d = new Daemon(['--driver', `strayfiles:${join(dir, 'stray.js')}`, '--driver.root_path', root, '--control-file', ctl], dir);
  try {
    await d.waitForLog('[info] Press Ctrl+C to stop.');
    await sendCommand(ctl, `${p1} -> t1`);
    await d.waitForLog(`[info] Registered producer: ${p1} -> t1`);
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i}`);
    await shellWrite(p1, lines.join('\n') + '\n');
    assert.deepEqual((await readTopic(root, 't1', lines.length)).map((e) => e.metadata), lines);
    writeFileSync(trigger, '');
    const { code } = await d.exit(10_000);
    assert.equal(code, 1, d.stderr);
    const log = d.logLines;
    const critical = log.findIndex((l) => l.startsWith('[critical] Uncaught error, shutting down: Error: plugin stray boom'));
    assert.ok(critical >= 0, d.stderr);
    assert.ok(log.indexOf('[info] Shutting down daemon...') > critical, d.stderr);
    assert.ok(log.includes(`[info] Removed FIFO file: ${p1}`), d.stderr);
    assert.ok(!existsSync(ctl), 'control FIFO removed');
    assert.deepEqual((await readTopic(root, 't1', lines.length)).map((e) => e.metadata), lines);
  } finally {
    d.kill();
    cleanup();
  }
});
