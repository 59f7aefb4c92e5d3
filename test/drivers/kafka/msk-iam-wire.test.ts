/**
 * AWS MSK IAM on the wire: with `aws_msk_iam: { region }`, `Driver.create('kafka', …)` connects
 * over TLS, sends SaslHandshake v1 (OAUTHBEARER), then SaslAuthenticate v2 whose auth_bytes are
 * `n,,\x01auth=Bearer <token>\x01\x01`, the token being the SigV4-presigned
 * `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect…` URL (base64url) signed
 * with the credentials of the environment. msk-iam.test.ts checks the signer against known
 * vectors and options.test.ts that the connection settings carry the provider; this file checks
 * that the token really leaves the process during a connection attempt, and that it is the
 * signer's output for those credentials.
 *
 * Why a fake endpoint: only AWS MSK accepts these tokens, and a test cannot reach AWS. The fake
 * is a TLS server on 127.0.0.1 (self-signed certificate made with the `openssl` CLI at test time,
 * passed as `ssl.ca.location`) that speaks just enough of the Kafka protocol: it answers the
 * handshake, captures the SaslAuthenticate bytes, rejects them with SASL_AUTHENTICATION_FAILED
 * (58) and closes the connection, so the driver fails within about a second (the client library
 * retries the connection `retries` times, each attempt failing the same way).
 * Without `openssl` the tests skip with the reason — or fail under CI=true.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { DiasporaError, Driver, ErrorCodes } from '../../../src/index.js';
import { MSK_USER_AGENT, mskIamToken, type AwsCredentials } from '../../../src/drivers/kafka/msk-iam.js';
import { resetSocket } from '../../helpers/reset.js';
import { within } from '../../helpers/within.js';

const REGION = 'eu-west-1';
const ACCESS_KEY_ID = 'AKIDEXAMPLE';
const SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN = 'session-token/with+chars=';
const FAKE_MESSAGE = 'fake broker: token captured';

const SASL_HANDSHAKE = 17;
const SASL_AUTHENTICATE = 36;
const SASL_AUTHENTICATION_FAILED = 58;
const UNSUPPORTED_SASL_MECHANISM = 33;

// ---------------------------------------------------------------------------------------------
// Certificate (openssl CLI)

interface Cert {
  dir: string;
  certFile: string;
  cert: Buffer;
  key: Buffer;
}

/** A self-signed certificate for CN=localhost, IP:127.0.0.1 + DNS:localhost; a string when openssl is missing. */
function makeCert(): Cert | string {
  const dir = mkdtempSync(join(tmpdir(), 'diaspora-msk-wire-'));
  writeFileSync(
    join(dir, 'openssl.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = localhost',
      '[server]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = IP:127.0.0.1,DNS:localhost',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  const args = ['req', '-config', 'openssl.cnf', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-extensions', 'server'];
  const r = spawnSync('openssl', [...args, '-subj', '/CN=localhost', '-keyout', 'key.pem', '-out', 'cert.pem'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    rmSync(dir, { recursive: true, force: true });
    return 'openssl is not installed (apt-get install -y openssl): cannot make the fake broker certificate';
  }
  if (r.error !== undefined || r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`openssl req failed (status ${r.status}): ${r.error?.message ?? ''}\n${r.stderr}`);
  }
  const certFile = join(dir, 'cert.pem');
  return { dir, certFile, cert: readFileSync(certFile), key: readFileSync(join(dir, 'key.pem')) };
}

// ---------------------------------------------------------------------------------------------
// The fake broker: just the SASL exchange of @platformatic/kafka's Connection

interface SeenRequest {
  connection: number;
  apiKey: number;
  apiVersion: number;
  clientId: string | null;
  /** SaslHandshake: the mechanism asked for. */
  mechanism?: string;
  /** SaslAuthenticate: the auth_bytes. */
  authBytes?: Buffer;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  int16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uvarint(): number {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.buf.readUInt8(this.pos++);
      v |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v >>> 0;
    }
    throw new Error('varint too long');
  }
  take(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw new Error(`truncated: ${n} bytes at ${this.pos} of ${this.buf.length}`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** STRING / NULLABLE_STRING (int16 length, -1 for null). */
  string(): string | null {
    const n = this.int16();
    return n < 0 ? null : this.take(n).toString('utf8');
  }
  /** COMPACT_BYTES (unsigned varint length + 1). */
  compactBytes(): Buffer {
    const n = this.uvarint();
    if (n === 0) throw new Error('null COMPACT_BYTES');
    return Buffer.from(this.take(n - 1));
  }
  /** TAG_BUFFER: count, then (tag, size, bytes) per field. */
  skipTaggedFields(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint();
      this.take(this.uvarint());
    }
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new Error(`${this.buf.length - this.pos} unread bytes`);
  }
}

function uvarint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return Buffer.from(out);
}

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

/** Size-prefixed response: header v0 (correlation id) or v1 (plus an empty TAG_BUFFER). */
function responseFrame(correlationId: number, flexibleHeader: boolean, body: Buffer[]): Buffer {
  const payload = Buffer.concat([int32(correlationId), ...(flexibleHeader ? [uvarint(0)] : []), ...body]);
  return Buffer.concat([int32(payload.length), payload]);
}

class FakeMskBroker {
  readonly requests: SeenRequest[] = [];
  /** Anything the fake did not expect (unknown API, bad encoding): the test asserts none. */
  readonly problems: string[] = [];
  connections = 0;
  resets = 0;
  private readonly sockets = new Set<TLSSocket>();

  private constructor(
    private readonly server: Server,
    /** Reset (RST) each connection just after the failure response instead of ending it. */
    private readonly reset: boolean,
  ) {}

  static async start(cert: Cert, o: { reset?: boolean } = {}): Promise<FakeMskBroker> {
    const server = createServer({ cert: cert.cert, key: cert.key });
    const broker = new FakeMskBroker(server, o.reset ?? false);
    server.on('secureConnection', (s) => broker.accept(s));
    server.on('tlsClientError', (err) => broker.problems.push(`TLS error: ${err.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return broker;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The captured SaslAuthenticate auth_bytes, in order. */
  get authBytes(): Buffer[] {
    return this.requests.flatMap((r) => (r.authBytes === undefined ? [] : [r.authBytes]));
  }

  /**
   * Stops listening and waits for the connections to close: the fake ends each one after its
   * failure response, as a broker does. Destroying a connection the client has not closed yet
   * would reset it, and the client library reports that reset as an uncaught 'error' event.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const deadline = Date.now() + 3000;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private accept(socket: TLSSocket): void {
    const connection = ++this.connections;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined); // the client ends the connection after the failure
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const frame = pending.subarray(4, 4 + pending.readInt32BE(0));
        pending = pending.subarray(4 + frame.length);
        try {
          this.handle(connection, socket, frame);
        } catch (err) {
          this.problems.push(`connection ${connection}: ${(err as Error).message}`);
          socket.destroy();
          return;
        }
      }
    });
  }

  private handle(connection: number, socket: TLSSocket, frame: Buffer): void {
    const r = new Reader(frame);
    // request header v1 (api key, version, correlation id, client id) — v2 adds a TAG_BUFFER
    const apiKey = r.int16();
    const apiVersion = r.int16();
    const correlationId = r.int32();
    const clientId = r.string();
    const seen: SeenRequest = { connection, apiKey, apiVersion, clientId };
    this.requests.push(seen);
    if (apiKey === SASL_HANDSHAKE && apiVersion === 1) {
      // SaslHandshake v1 (never flexible): mechanism => STRING
      seen.mechanism = r.string() ?? '';
      r.end();
      // Response v1: error_code INT16, mechanisms ARRAY(STRING) (int32 count)
      const error = seen.mechanism === 'OAUTHBEARER' ? 0 : UNSUPPORTED_SASL_MECHANISM;
      const name = Buffer.from('OAUTHBEARER');
      socket.write(responseFrame(correlationId, false, [int16(error), int32(1), int16(name.length), name]));
    } else if (apiKey === SASL_AUTHENTICATE && apiVersion === 2) {
      // SaslAuthenticate v2 (flexible): header TAG_BUFFER, auth_bytes COMPACT_BYTES, TAG_BUFFER
      r.skipTaggedFields();
      seen.authBytes = r.compactBytes();
      r.skipTaggedFields();
      r.end();
      // Response v2: error_code, error_message COMPACT_NULLABLE_STRING, auth_bytes COMPACT_BYTES,
      // session_lifetime_ms INT64, TAG_BUFFER
      const message = Buffer.from(FAKE_MESSAGE);
      const body = [int16(SASL_AUTHENTICATION_FAILED), uvarint(message.length + 1), message, uvarint(1), Buffer.alloc(8), uvarint(0)];
      if (this.reset) {
        // the client closes its side after the failure; answer that with a reset (RST), which a TLS
        // socket cannot send: its TCP socket (`_parent`, internal) can
        socket.once('end', () => {
          const tcp = (socket as unknown as { _parent?: Socket })._parent;
          if (tcp?.resetAndDestroy === undefined) this.problems.push(`connection ${connection}: no TCP socket to reset`);
          else if (resetSocket(tcp)) this.resets++;
          else this.problems.push(`connection ${connection}: its TCP socket had ended, no RST sent`);
        });
        socket.write(responseFrame(correlationId, true, body));
      } else socket.end(responseFrame(correlationId, true, body)); // a broker closes the connection after an authentication failure
    } else {
      throw new Error(`unexpected request: api key ${apiKey} v${apiVersion}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const AWS_VARS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_CONFIG_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_EC2_METADATA_DISABLED',
];

/**
 * Runs `fn` with only these AWS variables set (the credential chain reads the environment first;
 * the shared files point into `dir`, where there are none, and instance metadata is off, so
 * nothing of the machine can interfere), then restores process.env.
 */
async function withAwsEnv<T>(vars: Record<string, string>, dir: string, fn: () => Promise<T>): Promise<T> {
  const saved = new Map(AWS_VARS.map((k) => [k, process.env[k]] as const));
  for (const k of AWS_VARS) delete process.env[k];
  Object.assign(process.env, {
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-such-credentials'),
    AWS_CONFIG_FILE: join(dir, 'no-such-config'),
    AWS_EC2_METADATA_DISABLED: 'true',
    ...vars,
  });
  try {
    return await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

interface Attempt {
  error: unknown;
  broker: FakeMskBroker;
  startedAt: number;
  endedAt: number;
}

/** `Driver.create('kafka', …)` with MSK IAM against a fresh fake broker; the driver must fail. */
async function connectThroughFake(cert: Cert, credentials: AwsCredentials, o: { reset?: boolean } = {}): Promise<Attempt> {
  const broker = await FakeMskBroker.start(cert, o);
  try {
    const env: Record<string, string> = { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey };
    if (credentials.sessionToken !== undefined) env['AWS_SESSION_TOKEN'] = credentials.sessionToken;
    const startedAt = Date.now();
    const error = await withAwsEnv(env, cert.dir, async () => {
      const options = {
        kafka: { 'bootstrap.servers': `127.0.0.1:${broker.port}`, 'ssl.ca.location': cert.certFile, 'socket.connection.setup.timeout.ms': 5000, 'request.timeout.ms': 5000 },
        aws_msk_iam: { region: REGION },
      };
      // Driver.create asks the cluster for its metadata: the first call that needs the broker
      const created = Driver.create('kafka', options).then(
        async (d) => {
          await d.close();
          return undefined;
        },
        (err: unknown) => err ?? new Error('rejected without a reason'),
      );
      return within(created, 15_000, 'Driver.create against the fake MSK broker');
    });
    return { error, broker, startedAt, endedAt: Date.now() };
  } catch (err) {
    await broker.close();
    throw err;
  }
}

/** Decodes the X-Amz-Date `yyyymmddThhmmssZ`. */
function parseAmzDate(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  assert.ok(m !== null, `X-Amz-Date ${s}`);
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
}

/** Assertions 1–4 on one attempt; returns the presigned URL for further checks. */
function checkAttempt(a: Attempt, credentials: AwsCredentials): URL {
  // the exchange on each connection: TLS, SaslHandshake v1 for OAUTHBEARER, SaslAuthenticate v2,
  // nothing else (the client library retries a failed connection: `retries` attempts more)
  assert.deepEqual(a.broker.problems, []);
  assert.ok(a.broker.connections >= 1);
  for (let c = 1; c <= a.broker.connections; c++) {
    assert.deepEqual(
      a.broker.requests.filter((r) => r.connection === c).map((r) => [r.apiKey, r.apiVersion, r.clientId, r.mechanism ?? null]),
      [
        [SASL_HANDSHAKE, 1, 'diaspora-stream', 'OAUTHBEARER'],
        [SASL_AUTHENTICATE, 2, 'diaspora-stream', null],
      ],
      `requests of connection ${c} of ${a.broker.connections}`,
    );
  }
  // the provider caches its token: every attempt sent the same bytes
  const [authBytes, ...others] = a.broker.authBytes;
  assert.ok(authBytes !== undefined);
  for (const o of others) assert.deepEqual(o, authBytes);

  // 1. the driver call rejects with a clear authentication error
  assert.ok(a.error instanceof DiasporaError, `expected a DiasporaError, got ${String(a.error)}`);
  assert.equal(a.error.code, ErrorCodes.KAFKA);
  assert.equal(a.error.message, `Kafka error: SASL authentication failed: ${FAKE_MESSAGE}`);

  // 2. the client-first message of RFC 7628
  const m = /^n,,\x01auth=Bearer ([^\x01]+)\x01\x01$/.exec(authBytes.toString('utf8'));
  assert.ok(m !== null, `client-first message ${JSON.stringify(authBytes.toString('utf8'))}`);
  const token = m[1] as string;

  // 3. base64url without padding of the presigned URL
  assert.match(token, /^[A-Za-z0-9_-]+$/);
  const text = Buffer.from(token, 'base64url').toString('utf8');
  assert.equal(Buffer.from(text, 'utf8').toString('base64url'), token, 'the token is the canonical base64url of the URL');
  assert.ok(text.startsWith(`https://kafka.${REGION}.amazonaws.com/?`), text);
  const url = new URL(text);
  const q = url.searchParams;
  const amzDate = q.get('X-Amz-Date') ?? '';
  const signedAt = parseAmzDate(amzDate).getTime();
  assert.ok(signedAt >= Math.floor(a.startedAt / 1000) * 1000 && signedAt <= a.endedAt, `X-Amz-Date ${amzDate} is during the attempt`);
  assert.equal(q.get('Action'), 'kafka-cluster:Connect');
  assert.equal(q.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
  assert.equal(q.get('X-Amz-Credential'), `${credentials.accessKeyId}/${amzDate.slice(0, 8)}/${REGION}/kafka-cluster/aws4_request`);
  assert.equal(q.get('X-Amz-Expires'), '900');
  assert.equal(q.get('X-Amz-SignedHeaders'), 'host');
  assert.equal(q.get('User-Agent'), MSK_USER_AGENT);
  assert.match(q.get('X-Amz-Signature') ?? '', /^[0-9a-f]{64}$/);

  // 4. it is the signer's output for these credentials at that instant
  const expected = mskIamToken(REGION, credentials, new Date(signedAt));
  assert.equal(q.get('X-Amz-Signature'), new URL(Buffer.from(expected, 'base64url').toString('utf8')).searchParams.get('X-Amz-Signature'));
  assert.equal(token, expected);
  return url;
}

// ---------------------------------------------------------------------------------------------

describe('AWS MSK IAM token on the wire (fake SASL_SSL broker)', () => {
  let cert: Cert | string = 'certificate not made';

  before(() => {
    cert = makeCert();
  });

  after(() => {
    if (typeof cert !== 'string') rmSync(cert.dir, { recursive: true, force: true });
  });

  /** The certificate, or undefined when the test skipped (openssl missing, outside CI). */
  function certOrSkip(t: TestContext): Cert | undefined {
    if (typeof cert !== 'string') return cert;
    if (process.env['CI'] === 'true') throw new Error(`${cert} — not allowed under CI=true`);
    t.skip(cert);
    return undefined;
  }

  it('Driver.create sends the presigned token in SaslAuthenticate and fails with a clear auth error', { timeout: 30_000 }, async (t) => {
    const c = certOrSkip(t);
    if (c === undefined) return;
    const credentials = { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY };
    const a = await connectThroughFake(c, credentials);
    try {
      const url = checkAttempt(a, credentials);
      assert.equal(url.searchParams.get('X-Amz-Security-Token'), null, 'no session token in the environment');
      assert.deepEqual(
        [...url.searchParams.keys()],
        ['Action', 'User-Agent', 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-Signature', 'X-Amz-SignedHeaders'],
      );
    } finally {
      await within(a.broker.close(), 5000, 'closing the fake broker');
    }
  });

  it('with AWS_SESSION_TOKEN the wire token carries X-Amz-Security-Token', { timeout: 30_000 }, async (t) => {
    const c = certOrSkip(t);
    if (c === undefined) return;
    const credentials = { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY, sessionToken: SESSION_TOKEN };
    const a = await connectThroughFake(c, credentials);
    try {
      const url = checkAttempt(a, credentials);
      assert.equal(url.searchParams.get('X-Amz-Security-Token'), SESSION_TOKEN);
    } finally {
      await within(a.broker.close(), 5000, 'closing the fake broker');
    }
  });

  it('a broker that resets the connection after the failure reply does not crash the process', { timeout: 30_000 }, async (t) => {
    const c = certOrSkip(t);
    if (c === undefined) return;
    // the client library stops listening for a connection's errors once it has failed: the reset
    // that follows was an uncaught 'error' event (a crash of any process using the driver)
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const credentials = { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY };
      const a = await connectThroughFake(c, credentials, { reset: true });
      try {
        assert.ok(a.error instanceof DiasporaError, `expected a DiasporaError, got ${String(a.error)}`);
        assert.match(a.error.message, /SASL authentication failed/);
        await new Promise((r) => setTimeout(r, 500)); // the resets arrive after the rejection
        assert.deepEqual(a.broker.problems, []);
        assert.ok(a.broker.resets >= 1, 'the fake reset no connection');
        assert.deepEqual(uncaught.map(String), []);
      } finally {
        await within(a.broker.close(), 5000, 'closing the fake broker');
      }
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
