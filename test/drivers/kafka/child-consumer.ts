/**
 * Child process of the "killed consumer" acceptance test (kafka-octopus.md §11.5): consumes with
 * a named consumer, acknowledges the events whose seq is in ACK, waits until the acknowledgements
 * that can be durable are committed, reports on stdout, then blocks until it is SIGKILLed.
 *
 *   node child-consumer.js <bootstrap> <topic> <consumer> <pull count> <acked seqs, comma separated>
 */
import { Driver, type Event } from '../../../src/index.js';

const [bootstrap, topic, name, countText, ackText] = process.argv.slice(2);
const d = await Driver.create('kafka', { kafka: { 'bootstrap.servers': bootstrap as string, 'session.timeout.ms': 6000, 'heartbeat.interval.ms': 1000 } });
const t = await d.openTopic(topic as string);
const c = await t.consumer(name as string, { ackIntervalMs: 10 });
const ack = new Set((ackText ?? '').split(',').filter((s) => s !== '').map(Number));
const pulled: Event[] = [];
while (pulled.length < Number(countText)) {
  const e = await c.pull().wait(10000);
  if (e === undefined) throw new Error(`child: only ${pulled.length} events`);
  pulled.push(e);
}
const durable: Promise<void>[] = [];
for (const e of pulled) {
  const seq = (e.metadata.json as { seq: number }).seq;
  if (!ack.has(seq)) continue;
  const f = e.acknowledge();
  // an acknowledgement after an unacknowledged event never becomes durable: do not wait for it
  if (pulled.slice(0, pulled.indexOf(e)).every((x) => ack.has((x.metadata.json as { seq: number }).seq))) durable.push(f.wait() as Promise<void>);
}
await Promise.all(durable);
await c.commit();
process.stdout.write(`READY ${pulled.map((e) => e.id).join(',')}\n`);
setInterval(() => undefined, 1 << 30);
