/**
 * `--cpu-prof <file>` of the bench commands: a V8 CPU profile of the timed loop only (not of start-up and event
 * preparation, which `node --cpu-prof` would include), taken in-process through the inspector protocol. The file is a
 * regular `.cpuprofile` (Chrome DevTools, `node bench/cpuprofile-top.mjs`).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

export class LoopProfiler {
  private session: Session | undefined;

  constructor(private readonly file: string | undefined) {}

  async start(): Promise<void> {
    if (this.file === undefined) return;
    const s = new Session();
    s.connect();
    await s.post('Profiler.enable');
    await s.post('Profiler.setSamplingInterval', { interval: 100 });
    await s.post('Profiler.start');
    this.session = s;
  }

  /** Stops the profile and writes it; safe to call when not started. */
  async stop(): Promise<void> {
    const s = this.session;
    if (s === undefined || this.file === undefined) return;
    this.session = undefined;
    try {
      const { profile } = await s.post('Profiler.stop');
      writeFileSync(this.file, JSON.stringify(profile));
    } finally {
      s.disconnect();
    }
  }
}
