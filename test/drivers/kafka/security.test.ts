/**
 * Authentication and connection errors on the secure test broker (endpoints.json of
 * `scripts/kafka.sh start --mode secure`): SCRAM over SASL_SSL with the CA, SCRAM over
 * SASL_PLAINTEXT, PLAIN (explicit and as the default mechanism), mutual TLS over SSL, and the
 * errors of a wrong port, a wrong SCRAM or PLAIN password (also through diaspora-ctl: exit 1), a
 * missing client certificate and a missing topic. Without a secure-mode endpoints.json the
 * secure-listener tests skip with one printed reason, or fail under CI=true.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { Driver, DiasporaError, type Json } from '../../../src/index.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logLines, runCtl, tempDir } from '../../helpers/cli.js';
import { kafkaSuite, secureTest, uniqueName, type KafkaEnv, type SecureEndpoints } from '../../helpers/kafka.js';

kafkaSuite('kafka driver security and connection errors', (env: KafkaEnv) => {
  const cleanup: { props: Record<string, Json>; name: string }[] = [];

  after(async () => {
    const d = await Driver.create('kafka', { kafka: { 'bootstrap.servers': env.bootstrap } });
    for (const { name } of cleanup) await d.deleteTopic(name).catch(() => undefined);
    await d.close();
  });

  /** Creates a topic, produces and consumes one event with data and headers through `props`. */
  async function roundTrip(props: Record<string, Json>): Promise<void> {
    const d = await Driver.create('kafka', { kafka: props });
    try {
      const name = uniqueName('sec');
      await d.createTopic(name, { options: { num_partitions: 1, replication_factor: 1 } });
      cleanup.push({ props, name });
      const t = await d.openTopic(name);
      const p = await t.producer();
      assert.equal(await p.push({ secure: true }, Buffer.from('payload'), { headers: { h: '1' } }), 0n);
      await p.close();
      const c = await t.consumer(uniqueName('grp'), { ackIntervalMs: 0 });
      const e = await c.pull().wait(10000);
      assert.ok(e !== undefined, 'no event');
      assert.deepEqual(e.metadata.json, { secure: true });
      assert.equal(e.data.toBuffer().toString(), 'payload');
      assert.deepEqual({ ...e.headers }, { h: '1' });
      await e.acknowledge();
      await c.close();
      await t.close();
    } finally {
      await d.close();
    }
  }

  const plainProps = (ep: SecureEndpoints, protocol: 'sasl_ssl' | 'sasl_plaintext', password: string, mechanism?: string): Record<string, Json> => ({
    'bootstrap.servers': protocol === 'sasl_ssl' ? ep.SASL_SSL : ep.SASL_PLAINTEXT,
    'security.protocol': protocol,
    ...(mechanism !== undefined ? { 'sasl.mechanisms': mechanism } : {}),
    'sasl.username': ep.plain.username,
    'sasl.password': password,
    ...(protocol === 'sasl_ssl' ? { 'ssl.ca.location': ep.ca_pem } : {}),
  });

  describe('authentication', () => {
    secureTest(env, 'SCRAM-SHA-256 over SASL_SSL, server verified with the CA', { timeout: 30000 }, ['SASL_SSL', 'ca_pem', 'scram'], async (ep) => {
      await roundTrip({
        'bootstrap.servers': ep.SASL_SSL,
        'security.protocol': 'SASL_SSL',
        'sasl.mechanisms': 'SCRAM-SHA-256',
        'sasl.username': ep.scram.username,
        'sasl.password': ep.scram.password,
        'ssl.ca.location': ep.ca_pem,
      });
    });

    secureTest(env, 'SCRAM-SHA-512 over SASL_PLAINTEXT', { timeout: 30000 }, ['SASL_PLAINTEXT', 'scram'], async (ep) => {
      await roundTrip({
        'bootstrap.servers': ep.SASL_PLAINTEXT,
        'security.protocol': 'sasl_plaintext',
        'sasl.mechanisms': 'SCRAM-SHA-512',
        'sasl.username': ep.scram.username,
        'sasl.password': ep.scram.password,
      });
    });

    secureTest(env, 'PLAIN over SASL_SSL, server verified with the CA', { timeout: 30000 }, ['SASL_SSL', 'ca_pem', 'plain'], async (ep) => {
      await roundTrip(plainProps(ep, 'sasl_ssl', ep.plain.password, 'PLAIN'));
    });

    secureTest(env, 'no sasl.mechanisms: the default mechanism is PLAIN (SASL_SSL and SASL_PLAINTEXT)', { timeout: 30000 }, ['SASL_SSL', 'SASL_PLAINTEXT', 'ca_pem', 'plain'], async (ep) => {
      await roundTrip(plainProps(ep, 'sasl_ssl', ep.plain.password));
      await roundTrip(plainProps(ep, 'sasl_plaintext', ep.plain.password));
    });

    secureTest(env, 'mutual TLS over SSL (client certificate and key)', { timeout: 30000 }, ['SSL', 'ca_pem', 'client_pem', 'client_key'], async (ep) => {
      await roundTrip({
        'bootstrap.servers': ep.SSL,
        'security.protocol': 'ssl',
        'ssl.ca.location': ep.ca_pem,
        'ssl.certificate.location': ep.client_pem,
        'ssl.key.location': ep.client_key,
      });
    });
  });

  describe('errors', () => {
    /** Driver creation with `props` fails with a SASL authentication error, quickly. */
    async function rejectsAuth(props: Record<string, Json>): Promise<void> {
      const t0 = Date.now();
      await assert.rejects(Driver.create('kafka', { kafka: props }), (e: unknown) => {
        assert.ok(e instanceof DiasporaError, String(e));
        assert.match(e.message, /^Kafka error: SASL authentication failed/);
        assert.equal(e.code, 'DIASPORA_KAFKA');
        return true;
      });
      assert.ok(Date.now() - t0 < 15000, `took ${Date.now() - t0} ms`);
    }

    /** `diaspora-ctl topic list` with `props` as the driver configuration: exit 1, one `[error] Error: Kafka error: SASL authentication failed…` line. */
    async function ctlRejectsAuth(props: Record<string, Json>): Promise<void> {
      const { dir, cleanup: rm } = tempDir('diaspora-kafka-sec-');
      try {
        writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ kafka: props }));
        const r = await runCtl(['topic', 'list', '--driver', 'kafka', '--driver-config', 'cfg.json'], { cwd: dir, timeoutMs: 30000 });
        assert.equal(r.code, 1, r.stderr);
        const errors = logLines(r.stderr).filter((l) => l.startsWith('[error] '));
        assert.equal(errors.length, 1, r.stderr);
        assert.match(errors[0] as string, /^\[error\] Error: Kafka error: SASL authentication failed/); // src/cli/errors.ts: `Error: <message>`
      } finally {
        rm();
      }
    }

    secureTest(env, 'a wrong SCRAM password is an authentication error at driver creation', { timeout: 30000 }, ['SASL_SSL', 'ca_pem', 'scram'], async (ep) => {
      await rejectsAuth({
        'bootstrap.servers': ep.SASL_SSL,
        'security.protocol': 'sasl_ssl',
        'sasl.mechanisms': 'SCRAM-SHA-256',
        'sasl.username': ep.scram.username,
        'sasl.password': 'wrong-password',
        'ssl.ca.location': ep.ca_pem,
      });
    });

    secureTest(env, 'a wrong PLAIN password is an authentication error at driver creation, and diaspora-ctl exits 1', { timeout: 60000 }, ['SASL_SSL', 'ca_pem', 'plain'], async (ep) => {
      await rejectsAuth(plainProps(ep, 'sasl_ssl', 'wrong-password', 'PLAIN'));
      await rejectsAuth(plainProps(ep, 'sasl_ssl', 'wrong-password')); // the default mechanism
      await ctlRejectsAuth(plainProps(ep, 'sasl_ssl', 'wrong-password', 'PLAIN'));
    });

    secureTest(env, 'TLS without the required client certificate fails', { timeout: 30000 }, ['SSL', 'ca_pem'], async (ep) => {
      await assert.rejects(
        Driver.create('kafka', { kafka: { 'bootstrap.servers': ep.SSL, 'security.protocol': 'ssl', 'ssl.ca.location': ep.ca_pem, retries: 0 } }),
        (e: unknown) => e instanceof DiasporaError && e.message.startsWith('Kafka error: '),
      );
    });

    it('a closed port fails driver creation quickly with a clear error', { timeout: 30000 }, async () => {
      // a port that was free a moment ago
      const srv: Server = createServer();
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const port = (srv.address() as { port: number }).port;
      await new Promise((r) => srv.close(r));
      const t0 = Date.now();
      await assert.rejects(Driver.create('kafka', { kafka: { 'bootstrap.servers': `127.0.0.1:${port}` } }), (e: unknown) => {
        assert.ok(e instanceof DiasporaError, String(e));
        assert.equal(e.message, `Kafka error: Cannot reach the Kafka cluster (connect ECONNREFUSED 127.0.0.1:${port})`);
        return true;
      });
      assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`);
    });

    it('opening a missing topic: Topic "<name>" not found', { timeout: 20000 }, async () => {
      const d = await Driver.create('kafka', { kafka: { 'bootstrap.servers': env.bootstrap } });
      try {
        const name = uniqueName('missing');
        await assert.rejects(d.openTopic(name), { message: `Topic "${name}" not found` });
        assert.equal(await d.topicExists(name), false);
      } finally {
        await d.close();
      }
    });
  });
});
