/**
 * AWS MSK IAM authentication (kafka-octopus.md §8): the OAUTHBEARER token is a SigV4-presigned
 * `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect` (service
 * `kafka-cluster`, valid 900 s, plus a `User-Agent` query parameter), base64url-encoded without
 * padding — what AWS's aws-msk-iam-sasl-signer-js produces. Signing uses node:crypto only;
 * credentials come from the standard provider chain (environment, shared files, container, EC2
 * instance metadata).
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DiasporaError, ErrorCodes } from '../../api/errors.js';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  /** When temporary credentials expire (ms since the epoch). */
  expiresAt?: number | undefined;
}

export const MSK_TOKEN_LIFETIME_S = 900;
export const MSK_USER_AGENT = 'diaspora-stream-msk-iam/1.0';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 percent-encoding, as SigV4 requires. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + (c.charCodeAt(0) as number).toString(16).toUpperCase());
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function amzDate(d: Date): { date: string; stamp: string } {
  const iso = d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return { date: iso, stamp: iso.slice(0, 8) };
}

export interface PresignRequest {
  method: string;
  host: string;
  path: string;
  query: Record<string, string>;
  service: string;
  region: string;
  credentials: AwsCredentials;
  date: Date;
  expiresIn: number;
  /** Hash of the payload in the canonical request (S3 presigning uses `UNSIGNED-PAYLOAD`). */
  payloadHash?: string;
}

/** SigV4 query-string signing (presigned URL); returns the signed query parameters. */
export function presignQuery(r: PresignRequest): Record<string, string> {
  const { date, stamp } = amzDate(r.date);
  const scope = `${stamp}/${r.region}/${r.service}/aws4_request`;
  const q: Record<string, string> = {
    ...r.query,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${r.credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': date,
    'X-Amz-Expires': String(r.expiresIn),
    'X-Amz-SignedHeaders': 'host',
  };
  if (r.credentials.sessionToken !== undefined && r.credentials.sessionToken !== '') q['X-Amz-Security-Token'] = r.credentials.sessionToken;
  const canonicalQuery = Object.keys(q)
    .map((k) => [uriEncode(k), uriEncode(q[k] as string)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [r.method, r.path, canonicalQuery, `host:${r.host}\n`, 'host', r.payloadHash ?? EMPTY_SHA256].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonicalRequest)].join('\n');
  const kDate = hmac('AWS4' + r.credentials.secretAccessKey, stamp);
  const kSigning = hmac(hmac(hmac(kDate, r.region), r.service), 'aws4_request');
  q['X-Amz-Signature'] = createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest('hex');
  return q;
}

/** Query string with keys sorted and RFC 3986 encoding (as AWS's formatUrl builds it). */
export function formatQuery(q: Record<string, string>): string {
  return Object.keys(q)
    .sort()
    .map((k) => `${uriEncode(k)}=${uriEncode(q[k] as string)}`)
    .join('&');
}

/** The MSK IAM token (base64url of the presigned URL) for `region` at `date`. */
export function mskIamToken(region: string, credentials: AwsCredentials, date: Date = new Date(), userAgent = MSK_USER_AGENT): string {
  const host = `kafka.${region}.amazonaws.com`;
  const q = presignQuery({
    method: 'GET',
    host,
    path: '/',
    query: { Action: 'kafka-cluster:Connect' },
    service: 'kafka-cluster',
    region,
    credentials,
    date,
    expiresIn: MSK_TOKEN_LIFETIME_S,
  });
  q['User-Agent'] = userAgent;
  const url = `https://${host}/?${formatQuery(q)}`;
  return Buffer.from(url, 'utf8').toString('base64url');
}

// ---------------------------------------------------------------------------------------------
// Credentials provider chain

function fromEnv(env: NodeJS.ProcessEnv): AwsCredentials | undefined {
  const id = env['AWS_ACCESS_KEY_ID'];
  const secret = env['AWS_SECRET_ACCESS_KEY'];
  if (id === undefined || id === '' || secret === undefined || secret === '') return undefined;
  return { accessKeyId: id, secretAccessKey: secret, sessionToken: env['AWS_SESSION_TOKEN'] || undefined };
}

/** Parses an INI file into sections of key → value. */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let cur: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, '');
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec !== null) {
      const name = (sec[1] as string).trim();
      if (!out.has(name)) out.set(name, new Map());
      cur = out.get(name);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0 && cur !== undefined) cur.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return out;
}

function fromSharedFiles(env: NodeJS.ProcessEnv): AwsCredentials | undefined {
  const profile = env['AWS_PROFILE'] || env['AWS_DEFAULT_PROFILE'] || 'default';
  const files: [string, string][] = [
    [env['AWS_SHARED_CREDENTIALS_FILE'] || join(homedir(), '.aws', 'credentials'), profile],
    [env['AWS_CONFIG_FILE'] || join(homedir(), '.aws', 'config'), profile === 'default' ? 'default' : `profile ${profile}`],
  ];
  for (const [file, section] of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const s = parseIni(text).get(section);
    const id = s?.get('aws_access_key_id');
    const secret = s?.get('aws_secret_access_key');
    if (id && secret) return { accessKeyId: id, secretAccessKey: secret, sessionToken: s?.get('aws_session_token') || undefined };
  }
  return undefined;
}

async function fetchJson(url: string, init: RequestInit, timeoutMs: number): Promise<Record<string, string>> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  if (!r.ok) throw new Error(`HTTP ${r.status} from ${url}`);
  return (await r.json()) as Record<string, string>;
}

function fromJson(j: Record<string, string>): AwsCredentials {
  const exp = j['Expiration'] === undefined ? undefined : Date.parse(j['Expiration']);
  return { accessKeyId: j['AccessKeyId'] ?? '', secretAccessKey: j['SecretAccessKey'] ?? '', sessionToken: j['Token'] || undefined, expiresAt: exp };
}

async function fromContainer(env: NodeJS.ProcessEnv): Promise<AwsCredentials | undefined> {
  const rel = env['AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'];
  const full = env['AWS_CONTAINER_CREDENTIALS_FULL_URI'];
  if (!rel && !full) return undefined;
  const url = rel ? `http://169.254.170.2${rel}` : (full as string);
  const headers: Record<string, string> = {};
  const token = env['AWS_CONTAINER_AUTHORIZATION_TOKEN'];
  if (token) headers['Authorization'] = token;
  return fromJson(await fetchJson(url, { headers }, 2000));
}

async function fromInstanceMetadata(): Promise<AwsCredentials | undefined> {
  const base = 'http://169.254.169.254/latest';
  try {
    const t = await fetch(`${base}/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '300' },
      signal: AbortSignal.timeout(1000),
    });
    if (!t.ok) return undefined;
    const token = await t.text();
    const h = { 'X-aws-ec2-metadata-token': token };
    const roles = await fetch(`${base}/meta-data/iam/security-credentials/`, { headers: h, signal: AbortSignal.timeout(1000) });
    if (!roles.ok) return undefined;
    const role = (await roles.text()).split('\n')[0]?.trim();
    if (!role) return undefined;
    return fromJson(await fetchJson(`${base}/meta-data/iam/security-credentials/${role}`, { headers: h }, 1000));
  } catch {
    return undefined;
  }
}

/** The standard AWS credential chain: environment, shared files, container, EC2 instance role. */
export async function defaultCredentials(env: NodeJS.ProcessEnv = process.env): Promise<AwsCredentials> {
  const c = fromEnv(env) ?? fromSharedFiles(env) ?? (await fromContainer(env)) ?? (env['AWS_EC2_METADATA_DISABLED'] === 'true' ? undefined : await fromInstanceMetadata());
  if (c === undefined || c.accessKeyId === '' || c.secretAccessKey === '') {
    throw new DiasporaError('AWS MSK IAM: no AWS credentials found (environment, shared files, container or instance role)', { code: ErrorCodes.CONFIG });
  }
  return c;
}

/**
 * A cached token provider for OAUTHBEARER: a token is reused until 5 minutes before it expires
 * (and never past its credentials' expiry), then signed again.
 */
export function mskIamTokenProvider(
  region: string,
  credentials: () => Promise<AwsCredentials> = () => defaultCredentials(),
  now: () => number = Date.now,
): () => Promise<string> {
  let cached: { token: string; refreshAt: number } | undefined;
  return async () => {
    const t = now();
    if (cached !== undefined && t < cached.refreshAt) return cached.token;
    const creds = await credentials();
    const token = mskIamToken(region, creds, new Date(t));
    let refreshAt = t + (MSK_TOKEN_LIFETIME_S - 300) * 1000;
    if (creds.expiresAt !== undefined) refreshAt = Math.min(refreshAt, creds.expiresAt - 60_000);
    cached = { token, refreshAt };
    return token;
  };
}
