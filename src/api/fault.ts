/**
 * Fault injection for crash tests (forwarding.md §13). With DIASPORA_FAULT_INJECTION=1 and
 * DIASPORA_FAULT=<point>[:<n>], the process kills itself with SIGKILL the n-th time (default 1)
 * it reaches <point>. Without those variables `faultPoint` is a cheap no-op.
 */
const enabled = process.env['DIASPORA_FAULT_INJECTION'] === '1' && process.env['DIASPORA_FAULT'] !== undefined;
const spec = enabled ? (process.env['DIASPORA_FAULT'] as string) : '';
const sep = spec.lastIndexOf(':');
const point = sep > 0 && /^\d+$/.test(spec.slice(sep + 1)) ? spec.slice(0, sep) : spec;
const nth = sep > 0 && /^\d+$/.test(spec.slice(sep + 1)) ? Number(spec.slice(sep + 1)) : 1;
let hits = 0;

export const faultInjectionEnabled = enabled;

export function faultPoint(name: string): void {
  if (!enabled || name !== point) return;
  hits++;
  if (hits === nth) process.kill(process.pid, 'SIGKILL');
}
