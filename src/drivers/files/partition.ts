/**
 * Per-partition state shared by everything in one driver instance: the writer's descriptors and
 * mutex, read-only descriptors for readers, the in-process notifier and the directory watcher.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Notifier } from '../common/notifier.js';
import { DiasporaError, ErrorCodes } from '../../api/errors.js';
import { isErrno } from '../common/fs-util.js';

export type PartitionFileName = 'index' | 'metadata' | 'data' | 'headers';

export class PartitionFiles {
  /** Woken by this process's writers after each batch. */
  readonly notifier = new Notifier();
  /** Writer descriptors (O_RDWR | O_CREAT), opened by the first writer. */
  writeFds: { index: number; metadata: number; data: number } | undefined;
  headersWriteFd: number | undefined;
  /** Tail recovery runs once per partition per process (files-driver.md §11). */
  recovered = false;
  /**
   * A record boundary of the headers file known to be followed only by valid records: where this
   * process's last append (or recovery) left its end. -1: unknown.
   */
  headersBoundary = -1;
  /** Where this process's last successful append left the file ends (see writeLocked). */
  lastAppendEnds: { index: number; metadata: number; data: number } | undefined;
  private mutexTail: Promise<void> = Promise.resolve();
  private readonly readFds = new Map<PartitionFileName, number>();
  private watcher: fs.FSWatcher | undefined;
  private watchRefs = 0;
  /**
   * Set when the topic was deleted through this driver: its files are never opened again by path, since a topic
   * created since under the same name has other files, which old producers and consumers must not touch.
   */
  private deleted = false;

  constructor(
    readonly dir: string,
    readonly topic: string,
  ) {}

  path(f: PartitionFileName): string {
    return join(this.dir, f);
  }

  /** Serialises writers of this process on this partition. */
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.mutexTail;
    this.mutexTail = next;
    await prev;
    return release;
  }

  openWriteFds(): { index: number; metadata: number; data: number } {
    if (this.writeFds === undefined) {
      const flags = fs.constants.O_RDWR | fs.constants.O_CREAT;
      const data = this.open('data', flags);
      const metadata = this.open('metadata', flags);
      const index = this.open('index', flags);
      this.writeFds = { index, metadata, data };
    }
    return this.writeFds;
  }

  /** Opens a file of the partition; a missing directory (the topic deleted, maybe by another process) is TOPIC_NOT_FOUND. */
  private open(f: PartitionFileName, flags: number): number {
    this.checkNotDeleted();
    try {
      return fs.openSync(this.path(f), flags, 0o644);
    } catch (err) {
      if (isErrno(err, 'ENOENT') && (flags & fs.constants.O_CREAT) !== 0) throw this.notFound();
      throw err;
    }
  }

  private checkNotDeleted(): void {
    if (this.deleted) throw this.notFound();
  }

  private notFound(): DiasporaError {
    return new DiasporaError(`Topic ${this.topic} does not exist`, { code: ErrorCodes.TOPIC_NOT_FOUND });
  }

  /** The headers descriptor for writing; created only when asked to (`create`). */
  headersFd(create: boolean): number | undefined {
    this.checkNotDeleted();
    // asked for every batch: existsSync answers for the usual topic without headers without building an exception
    if (this.headersWriteFd === undefined && (create || fs.existsSync(this.path('headers')))) {
      try {
        this.headersWriteFd = this.open('headers', fs.constants.O_RDWR | (create ? fs.constants.O_CREAT : 0));
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    return this.headersWriteFd;
  }

  /** A read-only descriptor, or undefined while the file does not exist (readers never create files). */
  readFd(f: PartitionFileName): number | undefined {
    this.checkNotDeleted();
    let fd = this.readFds.get(f);
    if (fd === undefined) {
      // a file that does not exist yet (headers, for most topics) is asked for on every fetch:
      // existsSync answers without building an ENOENT exception each time
      if (!fs.existsSync(this.path(f))) return undefined;
      try {
        fd = fs.openSync(this.path(f), fs.constants.O_RDONLY);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return undefined;
        throw err;
      }
      this.readFds.set(f, fd);
    }
    return fd;
  }

  /**
   * Throws TOPIC_NOT_FOUND when the partition's files were removed since they were opened: the topic was deleted, by
   * this process or another, maybe re-created since under the same name. Asked when a read finds nothing new: a reader
   * of unlinked files would wait for events forever, without a word.
   */
  checkNotRemoved(): void {
    const fd = this.readFds.get('index');
    if (fd !== undefined ? fs.fstatSync(fd).nlink === 0 : !fs.existsSync(this.dir)) {
      throw new DiasporaError(`Topic ${this.topic} was deleted`, { code: ErrorCodes.TOPIC_NOT_FOUND });
    }
  }

  /** Size of a file through the read descriptor (0 when missing). fstat never waits on I/O. */
  size(f: PartitionFileName): number {
    const fd = this.readFd(f);
    return fd === undefined ? 0 : fs.fstatSync(fd).size;
  }

  /** Starts watching the directory (reference-counted); changes notify the notifier. */
  watch(): void {
    if (this.watchRefs++ > 0) return;
    try {
      this.watcher = fs.watch(this.dir, { persistent: false }, () => this.notifier.notify());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined; // polling still covers it
    }
  }

  unwatch(): void {
    if (--this.watchRefs > 0) return;
    this.watchRefs = 0;
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** The topic was deleted: closes the files, and any later use fails with TOPIC_NOT_FOUND. */
  markDeleted(): void {
    this.deleted = true;
    this.close();
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    for (const fd of this.readFds.values()) fs.closeSync(fd);
    this.readFds.clear();
    if (this.writeFds !== undefined) {
      fs.closeSync(this.writeFds.index);
      fs.closeSync(this.writeFds.metadata);
      fs.closeSync(this.writeFds.data);
      this.writeFds = undefined;
      this.lastAppendEnds = undefined;
    }
    if (this.headersWriteFd !== undefined) fs.closeSync(this.headersWriteFd);
    this.headersWriteFd = undefined;
  }
}
