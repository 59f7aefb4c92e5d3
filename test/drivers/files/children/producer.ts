/**
 * Child producer for the multi-process tests of the files driver.
 * Usage: node producer.js '<ProducerConfig JSON>' (see ../payload.ts).
 * Prints `ready` (with barrier), then per mode `batch <k>` / `t <seq> <ms>`, and `done` at the end.
 */
import { createInterface } from 'node:readline';
import { Driver, type Json } from '../../../../src/index.js';
import { eventData, eventHeaders, type ProducerConfig } from '../payload.js';

const cfg = JSON.parse(process.argv[2] as string) as ProducerConfig;

function say(line: string): void {
  process.stdout.write(line + '\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function barrier(): Promise<void> {
  say('ready');
  const rl = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => rl.once('line', () => resolve()));
  rl.close();
}

async function main(): Promise<void> {
  const driverOptions: Record<string, Json> = { root_path: cfg.root, use_file_locking: cfg.locking ?? true };
  if (cfg.flushBehavior !== undefined) driverOptions['flush_behavior'] = cfg.flushBehavior;
  const driver = await Driver.create('files', driverOptions as Json);
  const topic = await driver.openTopic(cfg.topic);
  const every = cfg.headersEvery ?? 0;
  const end = cfg.start + cfg.count;

  if (cfg.mode === 'batches') {
    const batch = cfg.batch ?? 10;
    const producer = await topic.producer({ batchSize: batch });
    if (cfg.barrier) await barrier();
    let k = 0;
    for (let s = cfg.start; s < end; s += batch, k++) {
      const futures = [];
      for (let seq = s; seq < Math.min(s + batch, end); seq++) {
        futures.push(producer.push({ proc: cfg.proc, seq }, eventData(cfg.proc, seq), { partition: 0, headers: eventHeaders(cfg.proc, seq, every) }));
      }
      await producer.flush();
      await Promise.all(futures);
      say(`batch ${k}`);
    }
    await producer.close();
  } else if (cfg.mode === 'follow') {
    const producer = await topic.producer();
    if (cfg.barrier) await barrier();
    const [lo, hi] = cfg.pauseMs ?? [0, 10];
    for (let seq = cfg.start; seq < end; seq++) {
      await sleep(lo + Math.random() * (hi - lo));
      await producer.push({ proc: cfg.proc, seq }, eventData(cfg.proc, seq), { partition: 0, headers: eventHeaders(cfg.proc, seq, every) });
      say(`t ${seq} ${(performance.timeOrigin + performance.now()).toFixed(3)}`);
    }
    await producer.close();
  } else {
    // free-running: many small batches, interleaving with the other processes
    const producer = await topic.producer({ maxNumBatches: Infinity });
    if (cfg.barrier) await barrier();
    const pending = [];
    for (let seq = cfg.start; seq < end; seq++) {
      const f = producer.push({ proc: cfg.proc, seq }, eventData(cfg.proc, seq), { partition: 0, headers: eventHeaders(cfg.proc, seq, every) });
      pending.push(f);
      if ((seq * 7 + cfg.proc) % 5 === 0) await f;
      if (seq % 97 === 0) await sleep(1);
    }
    await producer.flush();
    await Promise.all(pending);
    await producer.close();
  }
  await topic.close();
  await driver.close();
  say('done');
}

main().catch((err: unknown) => {
  process.stderr.write(`producer child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
