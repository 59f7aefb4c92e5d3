/**
 * The `files` driver: byte-compatible with the reference C++ files driver (files-driver.md).
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type {
  ConsumerSource,
  DriverImpl,
  EventBatch,
  EventIds,
  SourceOptions,
  TopicComponentsConfig,
  TopicImpl,
  TopicWriter,
  WriterOptions,
} from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes, errorMessage } from '../../api/errors.js';
import { dumpPretty, isJsonObject, parseJson, type Json, type JsonObject } from '../../api/json.js';
import type { Metadata, PartitionInfo } from '../../api/metadata.js';
import { fsyncDir, isErrno } from '../common/fs-util.js';
import { parseNumPartitions, validateTopicName } from '../common/topic-options.js';
import { INDEX_RECORD_SIZE, partitionDir, partitionDirName, topicDir } from './layout.js';
import { parseFilesOptions, type FilesOptions } from './options.js';
import { PartitionFiles } from './partition.js';
import { PositionsStore } from './positions.js';
import { FilesSource } from './source.js';
import { appendBatch, syncPartition } from './writer.js';

const COMPONENT_FILES = [
  ['validator', 'validator.json', 'Validator'],
  ['serializer', 'serializer.json', 'Serializer'],
  ['partitionSelector', 'partition-selector.json', 'Partition selector'],
] as const;

const STALE_TMP_MS = 60 * 60 * 1000;

export class FilesDriver implements DriverImpl {
  private readonly partitions = new Map<string, PartitionFiles>();

  constructor(readonly o: FilesOptions) {}

  private get durable(): boolean {
    return this.o.flushBehavior !== 'buffered';
  }

  /** The shared state of a partition directory (one per driver instance). */
  partitionFiles(dir: string, topic: string): PartitionFiles {
    let p = this.partitions.get(dir);
    if (p === undefined) this.partitions.set(dir, (p = new PartitionFiles(dir, topic)));
    return p;
  }

  async createTopic(name: string, options: JsonObject, components: TopicComponentsConfig): Promise<void> {
    validateTopicName(name);
    const n = parseNumPartitions(options);
    const root = this.o.rootPath;
    const target = topicDir(root, name);
    await this.removeStaleTemporaries();
    if (fs.existsSync(target)) throw new DiasporaError(`Topic already exists: ${name}`, { code: ErrorCodes.TOPIC_EXISTS });
    // build in a hidden sibling and rename into place: no half-created topic, one winner
    const tmp = join(root, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await fs.promises.mkdir(join(tmp, 'partitions'), { recursive: true, mode: 0o755 });
      for (let i = 0; i < n; i++) await fs.promises.mkdir(join(tmp, 'partitions', partitionDirName(i)), { mode: 0o755 });
      for (const [key, file] of COMPONENT_FILES) {
        await fs.promises.writeFile(join(tmp, file), dumpPretty(components[key]), { mode: 0o644 });
      }
      await fs.promises.writeFile(join(tmp, 'options.json'), dumpPretty(options), { mode: 0o644 });
      if (this.durable) {
        for (const f of ['validator.json', 'serializer.json', 'partition-selector.json', 'options.json']) {
          const fh = await fs.promises.open(join(tmp, f), 'r');
          await fh.sync();
          await fh.close();
        }
        await fsyncDir(join(tmp, 'partitions'));
        await fsyncDir(tmp);
      }
      if (fs.existsSync(target)) throw new DiasporaError(`Topic already exists: ${name}`, { code: ErrorCodes.TOPIC_EXISTS });
      try {
        await fs.promises.rename(tmp, target);
      } catch (err) {
        if (isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST') || isErrno(err, 'ENOTDIR')) {
          throw new DiasporaError(`Topic already exists: ${name}`, { code: ErrorCodes.TOPIC_EXISTS });
        }
        throw err;
      }
      if (this.durable) await fsyncDir(root);
    } catch (err) {
      await fs.promises.rm(tmp, { recursive: true, force: true });
      if (err instanceof DiasporaError) throw err;
      throw new DiasporaError(`Failed to create topic ${name}: ${errorMessage(err)}`, { code: ErrorCodes.IO, cause: err });
    }
  }

  private async removeStaleTemporaries(): Promise<void> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.o.rootPath);
    } catch {
      return;
    }
    const now = Date.now();
    for (const n of names) {
      if (!n.startsWith('.') || !/\.tmp-\d+-[0-9a-f]+$/.test(n)) continue;
      const p = join(this.o.rootPath, n);
      try {
        if (now - (await fs.promises.stat(p)).mtimeMs > STALE_TMP_MS) await fs.promises.rm(p, { recursive: true, force: true });
      } catch {
        // another process may be removing it too
      }
    }
  }

  async openTopic(name: string): Promise<TopicImpl | undefined> {
    const root = this.o.rootPath;
    const dir = topicDir(root, name);
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(dir);
    } catch {
      throw new DiasporaError(`Topic directory does not exist: ${dir}`, { code: ErrorCodes.TOPIC_NOT_FOUND });
    }
    if (!st.isDirectory()) throw new DiasporaError(`Topic directory does not exist: ${dir}`, { code: ErrorCodes.TOPIC_NOT_FOUND });
    const n = await countPartitions(dir, name);
    const components = {} as TopicComponentsConfig;
    for (const [key, file, label] of COMPONENT_FILES) {
      const path = join(dir, file);
      let text: string;
      try {
        text = await fs.promises.readFile(path, 'utf8');
      } catch {
        throw new DiasporaError(`${label} file does not exist: ${path}`, { code: ErrorCodes.CORRUPTED });
      }
      let v: Json;
      try {
        v = parseJson(text);
      } catch (err) {
        throw new DiasporaError(`Failed to load ${label.toLowerCase()}: ${errorMessage(err)}`, { code: ErrorCodes.CORRUPTED });
      }
      if (!isJsonObject(v)) throw new DiasporaError(`Failed to load ${label.toLowerCase()}: expected a JSON object`, { code: ErrorCodes.CORRUPTED });
      components[key] = v;
    }
    const files = Array.from({ length: n }, (_, i) => this.partitionFiles(partitionDir(dir, i), name));
    return new FilesTopic(this, name, dir, files, components);
  }

  /** A directory under the root is a topic when it has a `partitions` directory (as listTopics counts them). */
  async topicExists(name: string): Promise<boolean> {
    try {
      return (await fs.promises.stat(join(topicDir(this.o.rootPath, name), 'partitions'))).isDirectory();
    } catch {
      return false;
    }
  }

  async listTopics(): Promise<Map<string, Json>> {
    const root = this.o.rootPath;
    const out = new Map<string, Json>();
    let names: string[];
    try {
      names = await fs.promises.readdir(root);
    } catch {
      return out;
    }
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue;
      const dir = join(root, name);
      let parts: string[];
      try {
        parts = await fs.promises.readdir(join(dir, 'partitions'));
      } catch {
        continue;
      }
      const entry: JsonObject = {
        name,
        path: (root.endsWith('/') ? root : root + '/') + name,
        num_partitions: parts.filter((p) => /^\d+$/.test(p)).length,
      };
      for (const [, file, label] of COMPONENT_FILES) {
        try {
          const v = parseJson(await fs.promises.readFile(join(dir, file), 'utf8'));
          entry[label === 'Partition selector' ? 'partition_selector' : label.toLowerCase()] = v;
        } catch {
          // unreadable component files are omitted, as the reference does
        }
      }
      out.set(name, entry);
    }
    return out;
  }

  async deleteTopic(name: string): Promise<void> {
    validateTopicName(name);
    const dir = topicDir(this.o.rootPath, name);
    // never remove a directory that is not a topic (root_path may hold anything else)
    if (!(await this.topicExists(name))) throw new DiasporaError(`Topic ${name} does not exist`, { code: ErrorCodes.TOPIC_NOT_FOUND });
    // rename first so readers never see a half-deleted topic
    const tomb = join(this.o.rootPath, `.${name}.deleted-${process.pid}-${randomBytes(4).toString('hex')}`);
    await fs.promises.rename(dir, tomb);
    for (const [d, p] of this.partitions) {
      if (d.startsWith(dir + '/')) {
        // handles of the deleted topic keep these objects: they must fail, not reopen a later topic's files by path
        p.markDeleted();
        this.partitions.delete(d);
      }
    }
    await fs.promises.rm(tomb, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    for (const p of this.partitions.values()) p.close();
    this.partitions.clear();
  }
}

async function countPartitions(dir: string, name: string): Promise<number> {
  let names: string[];
  try {
    names = await fs.promises.readdir(join(dir, 'partitions'));
  } catch {
    throw new DiasporaError(`Partitions directory not found for topic: ${name}`, { code: ErrorCodes.CORRUPTED });
  }
  const nums = new Set(names.filter((n) => /^\d+$/.test(n)).map(Number));
  if (nums.size === 0) throw new DiasporaError(`No valid partitions found for topic: ${name}`, { code: ErrorCodes.CORRUPTED });
  const n = Math.max(...nums) + 1;
  for (let i = 0; i < n; i++) {
    if (!nums.has(i)) throw new DiasporaError(`Missing partition directory ${partitionDirName(i)} for topic: ${name}`, { code: ErrorCodes.CORRUPTED });
  }
  return n;
}

class FilesTopic implements TopicImpl {
  readonly partitions: readonly PartitionInfo[];
  readonly sourceId: string;

  constructor(
    private readonly driver: FilesDriver,
    readonly name: string,
    readonly dir: string,
    private readonly files: PartitionFiles[],
    readonly components: TopicComponentsConfig,
  ) {
    this.partitions = files.map((_, i) => ({ partition_id: i }));
    let real = dir;
    try {
      real = fs.realpathSync(dir);
    } catch {
      // keep the given path
    }
    this.sourceId = `files:${real}`;
  }

  async createWriter(_o: WriterOptions): Promise<TopicWriter> {
    const { useFileLocking, flushBehavior } = this.driver.o;
    const files = this.files;
    return {
      append: (partition: number, batch: EventBatch): Promise<EventIds> =>
        appendBatch(files[partition] as PartitionFiles, batch, { useFileLocking, flushBehavior }),
      sync: async (parts: ReadonlySet<number>): Promise<void> => {
        if (flushBehavior !== 'on_flush') return;
        await Promise.all([...parts].map((p) => syncPartition(files[p] as PartitionFiles)));
      },
      close: async (): Promise<void> => {},
    };
  }

  async createSource(o: SourceOptions): Promise<ConsumerSource> {
    const persist = o.consumerName !== '' && this.driver.o.consumerState;
    const store = persist ? new PositionsStore(this.dir, o.consumerName, this.driver.o.flushBehavior !== 'buffered') : undefined;
    const saved = store !== undefined && o.startFrom === 'committed' ? await store.load() : new Map<string, number>();
    if (store !== undefined && o.startFrom !== 'committed') await store.load(); // keep other partitions' positions
    const files = o.partitions.map((p) => this.files[p] as PartitionFiles);
    const starts = o.partitions.map((p, i) => {
      const at = o.startAt?.get(p);
      if (at !== undefined) return Math.min(Number(at), Math.floor((files[i] as PartitionFiles).size('index') / INDEX_RECORD_SIZE));
      if (o.startFrom === 'latest') return Math.floor((files[i] as PartitionFiles).size('index') / INDEX_RECORD_SIZE);
      if (o.startFrom === 'committed') return saved.get(partitionDirName(p)) ?? 0;
      return 0;
    });
    return new FilesSource(o, files, starts, this.driver.o.pollIntervalMs, store);
  }

  async close(): Promise<void> {}
}

export function createFilesDriver(options: Metadata): DriverImpl {
  const o = parseFilesOptions(options.json);
  try {
    fs.mkdirSync(o.rootPath, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new DiasporaError(`Failed to create root directory: ${errorMessage(err)}`, { code: ErrorCodes.IO, cause: err });
  }
  return new FilesDriver(o);
}
