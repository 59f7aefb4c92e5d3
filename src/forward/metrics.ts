/**
 * Forwarding metrics (forwarding.md §11): the same names for every policy and driver, labelled by
 * policy (and partition where listed), exposed in Prometheus text format with `le` histograms.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PolicyState } from './policy.js';

const STATES: readonly PolicyState[] = ['starting', 'running', 'retrying', 'halted', 'stopping', 'stopped'];

export class ForwardMetrics {
  readonly registry = new Registry();
  readonly received = new Counter({ name: 'diaspora_forward_events_received_total', help: 'events read from the source', labelNames: ['policy', 'partition'], registers: [this.registry] });
  readonly sent = new Counter({ name: 'diaspora_forward_events_sent_total', help: 'events confirmed by the destination', labelNames: ['policy', 'partition'], registers: [this.registry] });
  readonly filtered = new Counter({ name: 'diaspora_forward_events_filtered_total', help: 'events dropped by a filter', labelNames: ['policy', 'filter'], registers: [this.registry] });
  readonly bytes = new Counter({ name: 'diaspora_forward_bytes_sent_total', help: 'metadata + data bytes confirmed', labelNames: ['policy'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'diaspora_forward_errors_total', help: 'failed attempts', labelNames: ['policy', 'stage'], registers: [this.registry] });
  readonly retries = new Counter({ name: 'diaspora_forward_retries_total', help: 'retried attempts', labelNames: ['policy', 'stage'], registers: [this.registry] });
  readonly lag = new Gauge({ name: 'diaspora_forward_lag_events', help: 'source end - next position', labelNames: ['policy', 'partition'], registers: [this.registry] });
  readonly latency = new Histogram({ name: 'diaspora_forward_latency_seconds', help: 'read -> destination confirmation', labelNames: ['policy'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'diaspora_forward_batch_size', help: 'events per destination batch', labelNames: ['policy'], buckets: [1, 10, 100, 500, 1000, 5000, 10000], registers: [this.registry] });
  readonly batchDuration = new Histogram({ name: 'diaspora_forward_batch_duration_seconds', help: 'time to write and confirm a batch', labelNames: ['policy'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] });
  readonly backpressure = new Counter({ name: 'diaspora_forward_backpressure_waits_total', help: 'reader paused by a full stage', labelNames: ['policy'], registers: [this.registry] });
  readonly state = new Gauge({ name: 'diaspora_forward_policy_state', help: '1 for the current state of the policy', labelNames: ['policy', 'state'], registers: [this.registry] });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  forPolicy(policy: string): PolicyMetrics {
    return new PolicyMetrics(this, policy);
  }
}

/** The metrics of one policy (labels bound once). */
export class PolicyMetrics {
  constructor(
    private readonly m: ForwardMetrics,
    private readonly policy: string,
  ) {
    this.setState('starting');
  }
  received(partition: number, events = 1): void {
    this.m.received.inc({ policy: this.policy, partition: String(partition) }, events);
  }
  sent(partition: number | 'auto', events: number): void {
    this.m.sent.inc({ policy: this.policy, partition: String(partition) }, events);
  }
  bytesSent(bytes: number): void {
    this.m.bytes.inc({ policy: this.policy }, bytes);
  }
  filtered(filter: string): void {
    this.m.filtered.inc({ policy: this.policy, filter });
  }
  error(stage: 'receive' | 'process' | 'send' | 'commit'): void {
    this.m.errors.inc({ policy: this.policy, stage });
  }
  retry(stage: 'receive' | 'process' | 'send' | 'commit'): void {
    this.m.retries.inc({ policy: this.policy, stage });
  }
  lag(partition: number, events: number): void {
    this.m.lag.set({ policy: this.policy, partition: String(partition) }, events);
  }
  batch(size: number, durationS: number, latencyS: number): void {
    this.m.batchSize.observe({ policy: this.policy }, size);
    this.m.batchDuration.observe({ policy: this.policy }, durationS);
    this.m.latency.observe({ policy: this.policy }, latencyS);
  }
  backpressure(): void {
    this.m.backpressure.inc({ policy: this.policy });
  }
  setState(s: PolicyState): void {
    for (const st of STATES) this.m.state.set({ policy: this.policy, state: st }, st === s ? 1 : 0);
  }
}
