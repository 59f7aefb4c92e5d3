/**
 * AWS MSK IAM tokens (kafka-octopus.md §8). The SigV4 signer is checked against independent
 * vectors: the presigned-URL example of the AWS documentation (S3, "Authenticating Requests:
 * Using Query Parameters") and two MSK requests signed with botocore 1.43's SigV4QueryAuth
 * (service kafka-cluster, region eu-west-1, 2024-02-29T12:34:56Z, 900 s, with and without a
 * session token).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCredentials, mskIamToken, mskIamTokenProvider, parseIni, presignQuery } from '../../../src/drivers/kafka/msk-iam.js';

const DATE = new Date('2024-02-29T12:34:56Z');
const CREDS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

describe('AWS MSK IAM token', () => {
  it('SigV4 presigning matches the AWS documentation example', { timeout: 5000 }, () => {
    const q = presignQuery({
      method: 'GET',
      host: 'examplebucket.s3.amazonaws.com',
      path: '/test.txt',
      query: {},
      service: 's3',
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      date: new Date('2013-05-24T00:00:00Z'),
      expiresIn: 86400,
      payloadHash: 'UNSIGNED-PAYLOAD',
    });
    assert.equal(q['X-Amz-Signature'], 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
    assert.equal(q['X-Amz-Credential'], 'AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request');
  });

  it('MSK requests match botocore SigV4QueryAuth', { timeout: 5000 }, () => {
    const base = { method: 'GET', host: 'kafka.eu-west-1.amazonaws.com', path: '/', query: { Action: 'kafka-cluster:Connect' }, service: 'kafka-cluster', region: 'eu-west-1', date: DATE, expiresIn: 900 };
    assert.equal(
      presignQuery({ ...base, credentials: { ...CREDS, sessionToken: 'session-token/with+chars=' } })['X-Amz-Signature'],
      'fc8d081a9a3db091375c1ca911fbe61f484385946e604c9dedab1c05ebb79952',
    );
    assert.equal(presignQuery({ ...base, credentials: CREDS })['X-Amz-Signature'], '78ef5eb5b4587b1c4ddd38c0050a79482ff2db730e71f450a18e68f56c2114d3');
  });

  it('the token is the base64url presigned URL (no padding)', { timeout: 5000 }, () => {
    const token = mskIamToken('eu-west-1', { ...CREDS, sessionToken: 'session-token/with+chars=' }, DATE, 'ua/1');
    assert.ok(/^[A-Za-z0-9_-]+$/.test(token), token);
    const url = new URL(Buffer.from(token, 'base64url').toString('utf8'));
    assert.equal(url.origin, 'https://kafka.eu-west-1.amazonaws.com');
    assert.equal(url.pathname, '/');
    assert.equal(url.searchParams.get('Action'), 'kafka-cluster:Connect');
    assert.equal(url.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
    assert.equal(url.searchParams.get('X-Amz-Credential'), 'AKIDEXAMPLE/20240229/eu-west-1/kafka-cluster/aws4_request');
    assert.equal(url.searchParams.get('X-Amz-Date'), '20240229T123456Z');
    assert.equal(url.searchParams.get('X-Amz-Expires'), '900');
    assert.equal(url.searchParams.get('X-Amz-SignedHeaders'), 'host');
    assert.equal(url.searchParams.get('X-Amz-Security-Token'), 'session-token/with+chars=');
    assert.equal(url.searchParams.get('X-Amz-Signature'), 'fc8d081a9a3db091375c1ca911fbe61f484385946e604c9dedab1c05ebb79952');
    assert.equal(url.searchParams.get('User-Agent'), 'ua/1');
    // keys sorted, RFC 3986 encoding
    assert.ok(url.search.startsWith('?Action=kafka-cluster%3AConnect&User-Agent=ua%2F1&X-Amz-Algorithm='), url.search);
  });

  it('the provider caches its token and signs again before expiry', { timeout: 5000 }, async () => {
    let now = DATE.getTime();
    let calls = 0;
    const provider = mskIamTokenProvider('us-east-1', async () => (calls++, CREDS), () => now);
    const t1 = await provider();
    now += 60_000;
    assert.equal(await provider(), t1);
    assert.equal(calls, 1);
    now += 600_000; // 11 minutes: within 5 minutes of the 15-minute expiry
    const t2 = await provider();
    assert.notEqual(t2, t1);
    assert.equal(calls, 2);
  });

  it('credentials: environment first, then the shared credentials file', { timeout: 5000 }, async () => {
    const env = { AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'S', AWS_SESSION_TOKEN: 'T', AWS_EC2_METADATA_DISABLED: 'true' };
    assert.deepEqual(await defaultCredentials(env), { accessKeyId: 'A', secretAccessKey: 'S', sessionToken: 'T' });
    const dir = mkdtempSync(join(tmpdir(), 'aws-'));
    try {
      const file = join(dir, 'credentials');
      writeFileSync(file, '[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n[prod]\naws_access_key_id=P\naws_secret_access_key=PS\naws_session_token=PT\n');
      const base = { AWS_SHARED_CREDENTIALS_FILE: file, AWS_CONFIG_FILE: join(dir, 'none'), AWS_EC2_METADATA_DISABLED: 'true' };
      assert.deepEqual(await defaultCredentials(base), { accessKeyId: 'D', secretAccessKey: 'DS', sessionToken: undefined });
      assert.deepEqual(await defaultCredentials({ ...base, AWS_PROFILE: 'prod' }), { accessKeyId: 'P', secretAccessKey: 'PS', sessionToken: 'PT' });
      await assert.rejects(defaultCredentials({ ...base, AWS_PROFILE: 'missing' }), /no AWS credentials found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(parseIni('; c\n[a]\nk = v\n').get('a')?.get('k'), 'v');
  });
});
