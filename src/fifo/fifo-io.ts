/**
 * Named-pipe plumbing for the fifo daemon (diaspora-ctl.md §9): creating FIFOs (`mkfifo` through execFile, no
 * shell), checking what a path is, opening the reading side together with a keep-alive write descriptor (so a
 * writer's end never produces an end-of-file), and opening the writing side, which fails with `ENXIO` while no
 * reader exists. Descriptors are wrapped in `net.Socket` for non-blocking, event-driven I/O.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants, fstatSync, lstatSync, openSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';

const { O_RDONLY, O_WRONLY, O_NONBLOCK } = constants;

export type PathKind = 'missing' | 'fifo' | 'other';

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? ((err as NodeJS.ErrnoException).code ?? undefined) : undefined;
}

/** `missing`, `fifo` or `other` (anything else, including a symbolic link); other stat errors are thrown. */
export function pathKind(path: string): PathKind {
  try {
    return lstatSync(path).isFIFO() ? 'fifo' : 'other';
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'missing';
    throw err;
  }
}

/**
 * A strerror-like reason for an error: `No such file or directory` for Node's
 * `ENOENT: no such file or directory, open 'x'`; other messages are returned unchanged.
 */
export function errorReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const m = /^E[A-Z0-9]+: ([^,]+)/.exec(message);
  if (m === null) return message;
  const text = m[1] as string;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Creates a FIFO with mode 0666 minus the umask by running `mkfifo -- <path>`. Rejects with an Error whose
 * message is the reason (e.g. `Permission denied`, `File exists`).
 */
export function mkfifo(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('mkfifo', ['--', path], { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err === null) return resolve();
      if (errnoCode(err) === 'ENOENT') return reject(new Error('mkfifo command not found'));
      const text = String(stderr).trim();
      const reason = text.includes(': ') ? text.slice(text.lastIndexOf(': ') + 2) : text;
      reject(new Error(reason !== '' ? reason : err.message));
    });
  });
}

function checkFifo(fd: number, path: string): void {
  if (!fstatSync(fd).isFIFO()) throw new Error(`'${path}' exists but is not a FIFO`);
}

/** The reading side of a FIFO, with the daemon's own keep-alive write descriptor. */
export interface FifoReader {
  readonly socket: Socket;
  /** Closes the keep-alive descriptor: once other writers are gone, the socket ends after the buffered data. */
  closeKeepAlive(): void;
  /** Closes everything. */
  destroy(): void;
}

/**
 * Opens `path` for reading (`O_RDONLY | O_NONBLOCK`, which never waits for a writer), then opens the keep-alive
 * `O_WRONLY | O_NONBLOCK` descriptor (it succeeds because a reader now exists), then wraps the reading descriptor
 * in a `net.Socket`. The caller attaches its `data`/`error` handlers at once (synchronously).
 */
export function openFifoReader(path: string): FifoReader {
  const rfd = openSync(path, O_RDONLY | O_NONBLOCK);
  let wfd: number | undefined;
  try {
    checkFifo(rfd, path);
    wfd = openSync(path, O_WRONLY | O_NONBLOCK);
  } catch (err) {
    closeSync(rfd);
    throw err;
  }
  let socket: Socket;
  try {
    socket = new Socket({ fd: rfd, readable: true, writable: false });
  } catch (err) {
    closeSync(rfd);
    closeSync(wfd);
    throw err;
  }
  let keepAlive: number | undefined = wfd;
  const closeKeepAlive = (): void => {
    if (keepAlive === undefined) return;
    const fd = keepAlive;
    keepAlive = undefined;
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  };
  return {
    socket,
    closeKeepAlive,
    destroy: () => {
      closeKeepAlive();
      socket.destroy();
    },
  };
}

/** The writing side of a FIFO: its non-blocking descriptor and the socket that owns (and closes) it. */
export interface FifoWriter {
  /** For {@link writeNonBlocking} while the socket has no write in progress; closed with the socket. */
  readonly fd: number;
  readonly socket: Socket;
}

/**
 * Tries to open `path` for writing without blocking. Returns the writer, or undefined while no reader has the FIFO
 * open (`ENXIO`). Other errors are thrown (e.g. `ENOENT` when the FIFO was removed).
 */
export function tryOpenFifoWriter(path: string): FifoWriter | undefined {
  let fd: number;
  try {
    fd = openSync(path, O_WRONLY | O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === 'ENXIO') return undefined;
    throw err;
  }
  try {
    checkFifo(fd, path);
    return { fd, socket: new Socket({ fd, readable: false, writable: true }) };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * One non-blocking `write(2)`: returns how many bytes the pipe took (0 when it is full, `EAGAIN`). Other errors
 * (`EPIPE` when no reader is left) are thrown. Knowing the exact count is what lets a batch of lines be written
 * with one system call while each event is still acknowledged only once its whole line is in the pipe.
 */
export function writeNonBlocking(fd: number, data: Buffer): number {
  try {
    return writeSync(fd, data, 0, data.length);
  } catch (err) {
    if (errnoCode(err) === 'EAGAIN') return 0;
    throw err;
  }
}

export type WriteOutcome = { ok: true } | { ok: false; error: NodeJS.ErrnoException };

/**
 * Writes `data` completely (waiting for the pipe to drain as long as needed). Resolves `{ok: true}` once the
 * whole buffer was handed to the kernel, or `{ok: false, error}` when the write failed (`EPIPE`: the reader went
 * away) or the socket was destroyed meanwhile. Never rejects.
 */
export function writeFully(socket: Socket, data: Buffer | string): Promise<WriteOutcome> {
  return new Promise((resolve) => {
    if (socket.destroyed) {
      resolve({ ok: false, error: Object.assign(new Error('socket closed'), { code: 'ERR_STREAM_DESTROYED' }) });
      return;
    }
    socket.write(data, (err) => {
      if (err === undefined || err === null) resolve({ ok: true });
      else resolve({ ok: false, error: err as NodeJS.ErrnoException });
    });
  });
}

export function isEpipe(err: unknown): boolean {
  return errnoCode(err) === 'EPIPE';
}
