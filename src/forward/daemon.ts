/**
 * The forwarding daemon (diaspora-ctl.md §8, forwarding.md): loads the configuration, opens every
 * driver and topic before any policy starts, runs one independent pipeline per policy, and shuts
 * down within `shutdown_timeout` on SIGINT/SIGTERM.
 */
import type { Server } from 'node:http';
import type { DataAllocator, DataSelector } from '../api/data-selection.js';
import { Driver } from '../api/driver.js';
import { DiasporaError, errorMessage } from '../api/errors.js';
import type { TopicHandle } from '../api/topic.js';
import { ForwardConfigError, loadForwardConfig, type ForwardConfig } from './config.js';
import { loadFilters } from './filters.js';
import { startHttpServer } from './http.js';
import { ForwardMetrics } from './metrics.js';
import { loadPluginFunction } from './plugins.js';
import { ForwardPolicy, type PolicyLogger } from './policy.js';
import { onFatalError } from '../cli/process-guard.js';

export interface DaemonLogger extends PolicyLogger {
  critical?(m: string): void;
}

export interface DaemonOptions {
  configPath: string;
  /** Overrides every policy's stop_at_end. */
  stopAtEnd: boolean;
  /** Validate, open drivers and topics, then exit. */
  check: boolean;
  logger: DaemonLogger;
  /** Installs signal handlers (false in tests that drive `stop` themselves). */
  handleSignals?: boolean;
  /** Called once the daemon runs (tests). */
  onRunning?: (d: RunningDaemon) => void;
}

export interface RunningDaemon {
  policies: ForwardPolicy[];
  metrics: ForwardMetrics;
  /** Same as a signal. */
  stop(): void;
}

export async function runForwardDaemon(o: DaemonOptions): Promise<number> {
  const log = o.logger;
  const drivers = new Map<string, Driver>();
  const topics: TopicHandle[] = [];
  let server: Server | undefined;
  // while it runs, the daemon itself keeps the process alive: a destination stuck in a write may
  // hold no handle, and the process would otherwise exit (code 0) with events unconfirmed
  let keepAlive: NodeJS.Timeout | undefined;
  // signal and fatal-error listeners stay until the drivers are closed: a signal during the teardown must not
  // end the process by its default action halfway through
  let unguard: () => void = () => undefined;
  try {
    let cfg: ForwardConfig;
    try {
      cfg = loadForwardConfig(o.configPath);
    } catch (err) {
      log.error(`Fatal error: ${errorMessage(err)}`);
      return 1;
    }
    for (const k of cfg.unknownKeys) {
      if (o.check) log.error(`Unknown key '${k}' in config`);
      else log.warn(`Unknown key '${k}' in config`);
    }
    if (o.check && cfg.unknownKeys.length > 0) {
      log.error(`Fatal error: ${cfg.unknownKeys.length} unknown key(s) in config`);
      return 1;
    }
    log.info(`Loaded ${cfg.drivers.size} driver(s) and ${cfg.policies.length} forwarding policy(ies)`);
    if (cfg.policies.length === 0) {
      log.info('No forwarding policy: nothing to do.');
      return 0;
    }

    // plugins first: configuration errors before touching any driver
    const plugins = [];
    for (const p of cfg.policies) {
      let selector: DataSelector | undefined;
      let allocator: DataAllocator | undefined;
      try {
        if (p.dataSelector !== undefined) {
          selector = await loadPluginFunction<DataSelector>(p.dataSelector, cfg.dir, 'DataSelector');
          log.info(`Loaded DataSelector from '${p.dataSelector}'`);
        }
        if (p.dataAllocator !== undefined) {
          allocator = await loadPluginFunction<DataAllocator>(p.dataAllocator, cfg.dir, 'DataAllocator');
          log.info(`Loaded DataAllocator from '${p.dataAllocator}'`);
        }
        const filters = await loadFilters(p.filters, cfg.dir, { policy: p.name, log });
        plugins.push({ ...(selector !== undefined ? { selector } : {}), ...(allocator !== undefined ? { allocator } : {}), filters });
      } catch (err) {
        log.error(`Fatal error: ${errorMessage(err)}`);
        return 1;
      }
    }

    const metrics = new ForwardMetrics();
    const policies: ForwardPolicy[] = [];
    try {
      for (const [name, d] of cfg.drivers) {
        log.info(`Creating driver '${name}' (type=${d.type})`);
        drivers.set(name, await Driver.create(d.type, d.options));
      }
      for (const [i, p] of cfg.policies.entries()) {
        const src = await (drivers.get(p.from.driver) as Driver).openTopic(p.from.topic);
        topics.push(src);
        const dst = await (drivers.get(p.to.driver) as Driver).openTopic(p.to.topic);
        topics.push(dst);
        const policy = new ForwardPolicy(
          o.stopAtEnd ? { ...p, stopAtEnd: true } : p,
          src,
          dst,
          log,
          metrics.forPolicy(p.name),
          plugins[i] as { filters: [] },
          cfg.stateDir,
        );
        policies.push(policy);
        log.info(`Created forward policy: ${p.from.ref} -> ${p.to.ref}`);
      }
    } catch (err) {
      if (err instanceof ForwardConfigError) log.error(`Fatal error: ${errorMessage(err)}`);
      else log.error(`Diaspora error: ${errorMessage(err)}`);
      return 1;
    }
    if (o.check) {
      log.info('Configuration OK: every driver and topic opened.');
      return 0;
    }

    if (cfg.httpListen !== undefined) {
      try {
        server = await startHttpServer(cfg.httpListen, metrics, () => Object.fromEntries(policies.map((p) => [p.cfg.name, p.state])));
        log.info(`Serving /metrics, /healthz and /readyz on http://${cfg.httpListen}`);
      } catch (err) {
        log.error(`Fatal error: cannot listen on ${cfg.httpListen}: ${errorMessage(err)}`);
        return 1;
      }
    }

    try {
      for (const p of policies) await p.open();
    } catch (err) {
      log.error(`Diaspora error: ${errorMessage(err)}`);
      for (const p of policies) await p.close().catch(() => undefined);
      return 1;
    }

    let signals = 0;
    let abandon: () => void = () => undefined;
    const abandoned = new Promise<'abandoned'>((r) => (abandon = () => r('abandoned')));
    let stopRequested = false;
    let stopped: () => void = () => undefined;
    const stopPromise = new Promise<void>((r) => (stopped = r));
    const stop = (): void => {
      if (stopRequested) return;
      stopRequested = true;
      stopped();
      log.info('Received shutdown signal...');
      for (const p of policies) p.requestStop();
    };
    const onSignal = (): void => {
      signals++;
      if (signals === 1) stop();
      else abandon();
    };
    let fatal = false;
    if (o.handleSignals !== false) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const removeFatal = onFatalError(
        (m) => (log.critical !== undefined ? log.critical(m) : log.error(m)),
        () => {
          fatal = true;
          stop();
        },
      );
      unguard = () => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        removeFatal();
      };
    }
    keepAlive = setInterval(() => undefined, 1 << 30);
    const runs = policies.map((p) => p.run());
    log.info('Forwarding daemon running. Press Ctrl+C to stop.');
    o.onRunning?.({ policies, metrics, stop });

    // wait for every policy to end by itself (stop-at-end, halt) or for a stop request
    const allEnded = Promise.all(runs);
    await Promise.race([allEnded, stopPromise]);
    let exitCode = 0;
    if (stopRequested) {
      const deadline = new Promise<'deadline'>((r) => setTimeout(() => r('deadline'), cfg.shutdownTimeoutMs).unref());
      const outcome = await Promise.race([
        allEnded.then(() => Promise.all(policies.map((p) => p.close()))).then(() => 'done' as const),
        deadline,
        abandoned,
      ]);
      if (outcome !== 'done') {
        const n = policies.reduce((s, p) => s + p.unconfirmedCount, 0);
        log.warn(`Shutdown deadline exceeded; ${n} events will be forwarded again after restart`);
        if (outcome === 'abandoned') exitCode = 1;
      }
    } else {
      await Promise.all(policies.map((p) => p.close()));
      if (policies.some((p) => p.state === 'halted')) exitCode = 1;
    }
    if (fatal) exitCode = 1;
    log.debug(`Peak resident memory: ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
    log.info('Forwarding daemon stopped.');
    return exitCode;
  } catch (err) {
    if (err instanceof ForwardConfigError) log.error(`Fatal error: ${errorMessage(err)}`);
    else if (err instanceof DiasporaError) log.error(`Diaspora error: ${errorMessage(err)}`);
    else log.error(`Fatal error: ${errorMessage(err)}`);
    return 1;
  } finally {
    clearInterval(keepAlive);
    server?.close();
    for (const t of topics) await t.close().catch(() => undefined);
    for (const d of drivers.values()) await d.close().catch(() => undefined);
    unguard();
  }
}
