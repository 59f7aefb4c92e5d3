/**
 * The control FIFO of the fifo daemon (diaspora-ctl.md §7.1 steps 3–4): created fresh at start-up, read through a
 * non-blocking socket while the daemon holds its own write descriptor, so the end of a writer (`echo … > ctl`)
 * never produces an end-of-file and any number of successive writers are served without spinning.
 */
import { mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { CommandLineSplitter, MAX_COMMAND_LINE } from './command-parser.js';
import { errorReason, mkfifo, openFifoReader, pathKind, type FifoReader } from './fifo-io.js';

/** A start-up failure, with the exact text to log after `[error] `. */
export class ControlFifoError extends Error {}

/**
 * Creates the control FIFO: parent directories, then an existing FIFO is removed and recreated; anything else at
 * the path is refused. Throws {@link ControlFifoError}.
 */
export async function createControlFifo(path: string): Promise<void> {
  let kind;
  try {
    mkdirSync(dirname(path), { recursive: true });
    kind = pathKind(path);
  } catch (err) {
    throw new ControlFifoError(`Failed to create control FIFO: ${errorReason(err)}`);
  }
  if (kind === 'other') throw new ControlFifoError(`Control file '${path}' exists and is not a FIFO`);
  try {
    if (kind === 'fifo') unlinkSync(path);
    await mkfifo(path);
  } catch (err) {
    throw new ControlFifoError(`Failed to create control FIFO: ${errorReason(err)}`);
  }
}

export class ControlChannel {
  private readonly decoder = new StringDecoder('utf8');
  private readonly splitter = new CommandLineSplitter();

  private constructor(private readonly reader: FifoReader) {}

  /** Opens the control FIFO; each complete line is passed to `onLine`. Throws {@link ControlFifoError}. */
  static open(path: string, onLine: (line: string) => void, onError: (err: Error) => void): ControlChannel {
    let reader: FifoReader;
    try {
      reader = openFifoReader(path);
    } catch (err) {
      throw new ControlFifoError(`Failed to open control FIFO: ${errorReason(err)}`);
    }
    const channel = new ControlChannel(reader);
    reader.socket.on('data', (chunk: Buffer) => {
      for (const line of channel.splitter.push(channel.decoder.write(chunk))) onLine(line);
      if (channel.splitter.dropped > 0) {
        onError(new Error(`ignored ${channel.splitter.dropped} command line(s) longer than ${MAX_COMMAND_LINE} characters`));
        channel.splitter.dropped = 0;
      }
    });
    reader.socket.on('error', onError);
    return channel;
  }

  /** Stops reading commands and closes both descriptors. */
  close(): void {
    this.reader.destroy();
  }
}
