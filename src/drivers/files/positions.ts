/**
 * Consumer positions (files-driver.md §10.1): `<topic>/consumers/<encoded name>.json`, written
 * atomically; positions map partition directory names to the next id to deliver.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { dumpPretty, isJsonObject, parseJson, type JsonObject } from '../../api/json.js';
import { log } from '../../api/logging.js';
import { isErrno, writeFileAtomic } from '../common/fs-util.js';
import { encodeConsumerName } from './layout.js';

export class PositionsStore {
  private readonly path: string;
  private positions = new Map<string, number>();

  constructor(
    topicPath: string,
    private readonly name: string,
    private readonly durable: boolean,
  ) {
    this.path = join(topicPath, 'consumers', `${encodeConsumerName(name)}.json`);
  }

  /** Loads the saved positions (empty when none or unusable). */
  async load(): Promise<Map<string, number>> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.path, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return this.positions;
      throw err;
    }
    try {
      const v = parseJson(text);
      if (!isJsonObject(v) || v['format'] !== 1) {
        log.warn(`Ignoring consumer positions file ${this.path}: unknown format`);
        return this.positions;
      }
      if (v['name'] !== this.name) {
        log.warn(`Ignoring consumer positions file ${this.path}: it belongs to consumer ${JSON.stringify(v['name'])}`);
        return this.positions;
      }
      const p = v['positions'];
      if (!isJsonObject(p)) {
        log.warn(`Ignoring consumer positions file ${this.path}: "positions" is not an object (every partition is read from its start)`);
        return this.positions;
      }
      for (const [k, x] of Object.entries(p)) {
        const n = typeof x === 'bigint' ? Number(x) : x;
        if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) this.positions.set(k, n);
        // silently reading the partition again from its start would deliver everything twice without a word
        else log.warn(`Ignoring the position of ${k} in ${this.path}: ${JSON.stringify(typeof x === 'bigint' ? String(x) : x)} is not a non-negative integer (that partition is read from its start)`);
      }
    } catch (err) {
      log.warn(`Ignoring unreadable consumer positions file ${this.path}: ${(err as Error).message}`);
    }
    return this.positions;
  }

  async save(update: ReadonlyMap<string, number>): Promise<void> {
    for (const [k, v] of update) this.positions.set(k, v);
    const positions: JsonObject = {};
    for (const [k, v] of [...this.positions].sort()) positions[k] = v;
    const doc = { format: 1, name: this.name, positions, updated_at: new Date().toISOString() };
    await fs.promises.mkdir(join(this.path, '..'), { recursive: true, mode: 0o755 });
    await writeFileAtomic(this.path, dumpPretty(doc), this.durable);
  }
}
