/** Driver options of the kafka driver (kafka-octopus.md §1, §1.1): octopus texts, mapping, warnings. */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setLogSink } from '../../../src/api/logging.js';
import type { Json } from '../../../src/api/json.js';
import {
  connectionSettings,
  consumerSettings,
  mergeProps,
  normalizeProps,
  parseDriverOptions,
  producerSettings,
} from '../../../src/drivers/kafka/options.js';

let logs: string[] = [];
beforeEach(() => {
  logs = [];
  setLogSink((level, m) => logs.push(`[${level}] ${m}`));
});
afterEach(() => setLogSink(undefined));

function rejects(o: Json, message: string): void {
  assert.throws(() => parseDriverOptions(o), (e: unknown) => {
    assert.equal((e as Error).message, message);
    return true;
  });
}

describe('kafka driver options', () => {
  it('validation texts of octopus', { timeout: 5000 }, () => {
    rejects(5, "OctopusDriver configuration file doesn't have a correct format");
    rejects([], "OctopusDriver configuration file doesn't have a correct format");
    rejects({}, 'OctopusDriver configuration file doesn\'t have a correct format (expected a "kafka" object field)');
    rejects({ kafka: 'x' }, 'OctopusDriver configuration file doesn\'t have a correct format (expected a "kafka" object field)');
    rejects({ kafka: { 'bootstrap.servers': 'h:1' }, namespace: 3 }, '"namespace" option should be a string');
    rejects({ kafka: { 'bootstrap.servers': 'h:1' }, disable_info_topic: 'yes' }, '"disable_info_topic" option should be a boolean');
    rejects({ kafka: {} }, '"bootstrap.servers" not found or not a string in OctopusDriver configuration');
    // durations reach timers: at most 2^31 - 1 ms
    rejects({ kafka: { 'bootstrap.servers': 'h:1', 'linger.ms': '3000000000' } }, "Invalid value for Kafka property 'linger.ms': 3000000000 (at most 2147483647 ms)");
    rejects({ kafka: { 'bootstrap.servers': 'h:1', 'session.timeout.ms': '2147483648' } }, "Invalid value for Kafka property 'session.timeout.ms': 2147483648 (at most 2147483647 ms)");
    rejects({ kafka: { 'bootstrap.servers': 'h:1' }, commit_interval_ms: 3_000_000_000 }, '"commit_interval_ms" option should be at most 2147483647 (ms)');
    rejects({ kafka: { 'bootstrap.servers': 9092 } }, '"bootstrap.servers" should be a string or an array of strings');
    rejects({ kafka: { 'bootstrap.servers': ['a:1', 2] } }, '"bootstrap.servers" should be a string or an array of strings');
    rejects({ kafka: { 'bootstrap.servers': 'h:1' }, octopus: { url: 'http://x' } }, 'The "octopus" REST admin is not supported by this driver');
    rejects({ kafka: { 'bootstrap.servers': 'h:1' }, aws_msk_iam: {} }, '"aws_msk_iam" requires a "region" string');
    rejects({ kafka: { 'bootstrap.servers': 'h:1' }, aws_msk_iam: { region: 5 } }, '"aws_msk_iam" requires a "region" string');
    rejects({ kafka: { 'bootstrap.servers': 'h:1', 'compression.type': 'brotli' } }, 'Unsupported compression: brotli');
    rejects({ kafka: { 'bootstrap.servers': 'h:1', 'security.protocol': 'kerberos' } }, 'Unsupported security.protocol: kerberos');
    rejects({ kafka: { 'bootstrap.servers': 'h:1', 'security.protocol': 'sasl_plaintext', 'sasl.mechanisms': 'GSSAPI' } }, 'Unsupported SASL mechanism: GSSAPI');
    rejects({ kafka: { 'bootstrap.servers': 'h:1' }, on_malformed: 'ignore' }, '"on_malformed" option should be "skip" or "stop"');
    rejects({ kafka: { 'bootstrap.servers': 'h:1' }, commit_interval_ms: -1 }, '"commit_interval_ms" option should be a non-negative integer');
  });

  it('defaults and accepted values', { timeout: 5000 }, () => {
    const o = parseDriverOptions({ kafka: { 'bootstrap.servers': ['a:1', 'b:2'] } });
    assert.equal(o.props['bootstrap.servers'], 'a:1,b:2');
    assert.equal(o.namespace, undefined);
    assert.equal(o.infoTopicPrefix, '__info_');
    assert.equal(o.disableInfoTopic, false);
    assert.equal(o.listAllTopics, false);
    assert.equal(o.commitIntervalMs, 1000);
    assert.equal(o.onMalformed, 'skip');
    const c = connectionSettings(o.props, undefined);
    assert.deepEqual(c.brokers, ['a:1', 'b:2']);
    assert.equal(c.tls, undefined);
    assert.equal(c.sasl, undefined);
    const o2 = parseDriverOptions({ kafka: { 'bootstrap.servers': 'h:1' }, namespace: 'ns', info_topic_prefix: 'info_', on_malformed: 'stop' });
    assert.equal(o2.namespace, 'ns');
    assert.equal(o2.infoTopicPrefix, 'info_');
    assert.equal(o2.onMalformed, 'stop');
    assert.deepEqual(logs, []);
  });

  it('property values: strings as is, arrays joined, other JSON compact', { timeout: 5000 }, () => {
    assert.deepEqual(normalizeProps({ a: 'x', b: ['p', 'q'], c: 5, d: true, e: { k: 1 } }), { a: 'x', b: 'p,q', c: '5', d: 'true', e: '{"k":1}' });
  });

  it('warns about unsupported and overridden properties, never fails on them', { timeout: 5000 }, () => {
    parseDriverOptions({
      kafka: {
        'bootstrap.servers': 'h:1',
        'socket.keepalive.enable': true,
        'enable.idempotence': false,
        'enable.auto.commit': true,
        'group.id': 'g',
        acks: 1,
      },
    });
    assert.ok(logs.includes("[warning] Ignoring unsupported Kafka property 'socket.keepalive.enable'"), logs.join('\n'));
    assert.ok(logs.some((l) => l.startsWith("[warning] Ignoring Kafka property 'enable.idempotence=false'")), logs.join('\n'));
    assert.ok(logs.some((l) => l.startsWith("[warning] Ignoring Kafka property 'enable.auto.commit=true'")), logs.join('\n'));
    assert.ok(logs.some((l) => l.startsWith("[warning] Ignoring Kafka property 'group.id'")), logs.join('\n'));
    assert.ok(logs.some((l) => l.startsWith("[warning] Ignoring Kafka property 'acks=1'")), logs.join('\n'));
    // consumers cannot override group.id
    const merged = mergeProps({ 'bootstrap.servers': 'h:1' }, { 'group.id': 'x', 'isolation.level': 'read_uncommitted' }, 'consumer');
    assert.equal(merged['group.id'], undefined);
    assert.equal(consumerSettings(merged).isolation, 'read_uncommitted');
  });

  it('maps security properties', { timeout: 5000 }, () => {
    const c = connectionSettings(
      {
        'bootstrap.servers': 'SASL_SSL://broker.example:9094',
        'security.protocol': 'SASL_SSL',
        'sasl.mechanisms': 'scram-sha-512',
        'sasl.username': 'u',
        'sasl.password': 'p',
        'ssl.ca.pem': '-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----',
        'enable.ssl.certificate.verification': 'false',
        'client.id': 'me',
      },
      undefined,
    );
    assert.deepEqual(c.brokers, ['broker.example:9094']);
    assert.equal(c.clientId, 'me');
    assert.deepEqual(c.sasl, { mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p' });
    assert.equal(c.tls?.rejectUnauthorized, false);
    assert.equal(c.tls?.sni, true);
    assert.equal(c.tls?.ca?.length, 1);
    assert.equal(c.tls?.cert, undefined, 'no client certificate: server authentication only');
    // an IP literal never goes into SNI
    assert.equal(connectionSettings({ 'bootstrap.servers': '127.0.0.1:1', 'security.protocol': 'ssl' }, undefined).tls?.sni, false);
    // MSK IAM forces SASL_SSL + OAUTHBEARER
    const token = async (): Promise<string> => 't';
    const iam = connectionSettings({ 'bootstrap.servers': 'h:1' }, { token });
    assert.equal(iam.sasl?.mechanism, 'OAUTHBEARER');
    assert.equal(iam.sasl?.token, token);
    assert.ok(iam.tls !== undefined);
    assert.throws(() => connectionSettings({ 'bootstrap.servers': 'h:1', 'security.protocol': 'ssl', 'ssl.ca.location': '/nonexistent/ca.pem' }, undefined), /Cannot read Kafka property 'ssl.ca.location'/);
  });

  it('maps producer and consumer properties', { timeout: 5000 }, () => {
    const p = producerSettings({ 'compression.codec': 'lz4', 'batch.num.messages': '100', 'message.max.bytes': '50000', 'message.timeout.ms': '1234' });
    assert.equal(p.compression, 'lz4');
    assert.equal(p.maxBatchRecords, 100);
    assert.equal(p.maxBatchBytes, 50000);
    assert.equal(p.deliveryTimeoutMs, 1234);
    assert.equal(p.maxRetries, 2_147_483_647, "librdkafka's default: retry until message.timeout.ms");
    assert.equal(producerSettings({ retries: '5' }).maxRetries, 5);
    assert.equal(producerSettings({ 'message.send.max.retries': '0' }).maxRetries, 0);
    assert.throws(() => producerSettings({ 'batch.num.messages': 'many' }), /Invalid value for Kafka property 'batch.num.messages': many/);
    const c = consumerSettings({ 'auto.offset.reset': 'largest', 'session.timeout.ms': '6000', 'fetch.wait.max.ms': '100' });
    assert.equal(c.autoOffsetReset, 'latest');
    assert.equal(c.sessionTimeoutMs, 6000);
    assert.equal(c.heartbeatIntervalMs, 2000);
    assert.equal(c.fetchWaitMaxMs, 100);
    assert.equal(c.isolation, 'read_committed', 'read_committed by default (librdkafka)');
    assert.equal(consumerSettings({}).autoOffsetReset, 'earliest');
    // read-ahead bounds: librdkafka's names, our (smaller, per-partition) defaults
    assert.deepEqual([consumerSettings({}).prefetchRecords, consumerSettings({}).prefetchBytes], [4096, 16 << 20]);
    const q = consumerSettings({ 'queued.min.messages': '100', 'queued.max.messages.kbytes': '64' });
    assert.deepEqual([q.prefetchRecords, q.prefetchBytes], [100, 65536]);
  });
});
