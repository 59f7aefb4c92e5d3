/**
 * Child that runs a list of library operations and prints one JSON line per step:
 * `{"step": i, "ok": true, ...}` or `{"step": i, "ok": false, "message": "..."}`.
 * Usage: node ops.js '<JSON array of steps>' (run with the cwd the test wants, e.g. for plugin keys).
 *
 * Steps: {op: "driver", type, options} | {op: "go"} (prints {"ready": i}, waits for a stdin line) |
 * {op: "createTopic", name, create} | {op: "openTopic", name} |
 * {op: "component", kind: "validator"|"serializer"|"selector", config} |
 * {op: "push", name, events: [{metadata, partition?}]} | {op: "read", name, count} | {op: "registry"}
 */
import { createInterface } from 'node:readline';
import {
  Driver,
  PartitionSelector,
  Serializer,
  Validator,
  dumpCompact,
  getRegistry,
  type Json,
} from '../../../../src/index.js';

type Step = { op: string; [k: string]: unknown };
const steps = JSON.parse(process.argv[2] as string) as Step[];

function out(v: Record<string, unknown>): void {
  process.stdout.write(dumpCompact(v as Json) + '\n');
}

const lines = createInterface({ input: process.stdin });
const queue: string[] = [];
let waiter: (() => void) | undefined;
lines.on('line', (l) => {
  queue.push(l);
  waiter?.();
});
async function nextLine(): Promise<void> {
  while (queue.length === 0) await new Promise<void>((r) => (waiter = r));
  queue.shift();
}

async function main(): Promise<void> {
  let driver: Driver | undefined;
  for (const [i, s] of steps.entries()) {
    try {
      switch (s.op) {
        case 'driver':
          driver = await Driver.create(s['type'] as string, (s['options'] ?? {}) as Json);
          out({ step: i, ok: true });
          break;
        case 'go':
          out({ step: i, ready: i });
          await nextLine();
          break;
        case 'createTopic':
          await (driver as Driver).createTopic(s['name'] as string, (s['create'] ?? {}) as never);
          out({ step: i, ok: true });
          break;
        case 'openTopic': {
          const h = await (driver as Driver).openTopic(s['name'] as string);
          out({
            step: i,
            ok: true,
            partitions: h.partitions.length,
            validator: h.validator.metadata().json,
            serializer: h.serializer.metadata().json,
            selector: h.partitionSelector.metadata().json,
          });
          await h.close();
          break;
        }
        case 'component': {
          const kind = s['kind'] as string;
          const make = kind === 'validator' ? Validator : kind === 'serializer' ? Serializer : PartitionSelector;
          const c = await make.fromMetadata(s['config'] as Json);
          out({ step: i, ok: true, key: c.key, metadata: c.impl.metadata().json });
          break;
        }
        case 'push': {
          const h = await (driver as Driver).openTopic(s['name'] as string);
          const p = await h.producer();
          const res: Json[] = [];
          for (const e of s['events'] as { metadata: Json; partition?: number }[]) {
            const f = p.push(e.metadata, undefined, e.partition === undefined ? undefined : { partition: e.partition });
            try {
              res.push({ ok: true, id: Number(await f) });
            } catch (err) {
              res.push({ ok: false, message: (err as Error).message, name: (err as Error).name });
            }
          }
          await p.close();
          await h.close();
          out({ step: i, ok: true, results: res });
          break;
        }
        case 'read': {
          const h = await (driver as Driver).openTopic(s['name'] as string);
          const c = await h.consumer('', { startFrom: 'earliest' });
          const events: Json[] = [];
          for (let k = 0; k < (s['count'] as number); k++) {
            const e = await c.pull().wait(5000);
            if (e === undefined) break;
            events.push({ partition: e.partitionIndex, id: Number(e.id), metadata: e.metadata.json });
          }
          await c.close();
          await h.close();
          out({ step: i, ok: true, events });
          break;
        }
        case 'registry': {
          const r = getRegistry();
          const g = (globalThis as unknown as Record<symbol, unknown>)[Symbol.for('diaspora-stream.registry')];
          out({
            step: i,
            ok: true,
            shared: g === r,
            drivers: [...r.drivers.keys()].sort(),
            validators: [...r.validators.keys()].sort(),
          });
          break;
        }
        default:
          throw new Error(`unknown step ${s.op}`);
      }
    } catch (err) {
      out({ step: i, ok: false, message: err instanceof Error ? err.message : String(err) });
    }
  }
  if (driver !== undefined) await driver.close();
  lines.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`ops child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
