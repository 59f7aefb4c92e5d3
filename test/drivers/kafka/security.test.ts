/**
 * Authentication and connection errors on the secure test broker (endpoints.json of
 * `scripts/kafka.sh start --mode secure`): SCRAM over SASL_SSL with the CA, SCRAM over
 * SASL_PLAINTEXT, mutual TLS over SSL, and the errors of a wrong port, a wrong password, a
 * missing client certificate and a missing topic.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { Driver, DiasporaError, type Json } from '../../../src/index.js';
import { kafkaSuite, uniqueName, type KafkaEnv } from '../../helpers/kafka.js';

kafkaSuite('kafka driver security and connection errors', (env: KafkaEnv) => {
  const ep = env.endpoints;
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

  const secure = ep?.SASL_SSL !== undefined && ep.ca_pem !== undefined && ep.scram !== undefined;
  const why = 'DIASPORA_KAFKA_ENDPOINTS does not describe a secure-mode broker';

  describe('authentication', () => {
    it('SCRAM-SHA-256 over SASL_SSL, server verified with the CA', { skip: secure ? false : why, timeout: 30000 }, async () => {
      await roundTrip({
        'bootstrap.servers': ep?.SASL_SSL as string,
        'security.protocol': 'SASL_SSL',
        'sasl.mechanisms': 'SCRAM-SHA-256',
        'sasl.username': ep?.scram?.username as string,
        'sasl.password': ep?.scram?.password as string,
        'ssl.ca.location': ep?.ca_pem as string,
      });
    });

    it('SCRAM-SHA-512 over SASL_PLAINTEXT', { skip: ep?.SASL_PLAINTEXT !== undefined && ep.scram !== undefined ? false : why, timeout: 30000 }, async () => {
      await roundTrip({
        'bootstrap.servers': ep?.SASL_PLAINTEXT as string,
        'security.protocol': 'sasl_plaintext',
        'sasl.mechanisms': 'SCRAM-SHA-512',
        'sasl.username': ep?.scram?.username as string,
        'sasl.password': ep?.scram?.password as string,
      });
    });

    it('mutual TLS over SSL (client certificate and key)', { skip: ep?.SSL !== undefined && ep.client_pem !== undefined ? false : why, timeout: 30000 }, async () => {
      await roundTrip({
        'bootstrap.servers': ep?.SSL as string,
        'security.protocol': 'ssl',
        'ssl.ca.location': ep?.ca_pem as string,
        'ssl.certificate.location': ep?.client_pem as string,
        'ssl.key.location': ep?.client_key as string,
      });
    });
  });

  describe('errors', () => {
    it('a wrong password is an authentication error at driver creation', { skip: secure ? false : why, timeout: 30000 }, async () => {
      const t0 = Date.now();
      await assert.rejects(
        Driver.create('kafka', {
          kafka: {
            'bootstrap.servers': ep?.SASL_SSL as string,
            'security.protocol': 'sasl_ssl',
            'sasl.mechanisms': 'SCRAM-SHA-256',
            'sasl.username': ep?.scram?.username as string,
            'sasl.password': 'wrong-password',
            'ssl.ca.location': ep?.ca_pem as string,
          },
        }),
        (e: unknown) => {
          assert.ok(e instanceof DiasporaError, String(e));
          assert.match(e.message, /^Kafka error: SASL authentication failed/);
          assert.equal(e.code, 'DIASPORA_KAFKA');
          return true;
        },
      );
      assert.ok(Date.now() - t0 < 15000, `took ${Date.now() - t0} ms`);
    });

    it('TLS without the required client certificate fails', { skip: ep?.SSL !== undefined ? false : why, timeout: 30000 }, async () => {
      await assert.rejects(
        Driver.create('kafka', { kafka: { 'bootstrap.servers': ep?.SSL as string, 'security.protocol': 'ssl', 'ssl.ca.location': ep?.ca_pem as string, retries: 0 } }),
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
