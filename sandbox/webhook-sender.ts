import { createHmac } from 'node:crypto';
import { request } from 'undici';

/**
 * Sends webhooks the way Benji and Starship do, signed, over real HTTP, so tests and the demo can
 * drive the broker's webhook routes. Each send can also be spoiled on purpose (a wrong signature,
 * a body changed after signing, a missing header, a stale timestamp), and what was sent comes back
 * so that `resendWebhook` can deliver exactly the same bytes again, as a provider's retry does.
 * The signatures are written from the providers' descriptions, apart from the broker's verifier,
 * so that the two can disagree.
 */

export const BENJI_WEBHOOK_PATH = '/v1/webhooks/benji';
export const STARSHIP_WEBHOOK_PATH = '/v1/webhooks/starship';

/** How old a `stale` webhook's timestamp is: far beyond any sane replay window. */
export const STALE_AGE_S = 24 * 60 * 60;

/** A string or bytes are sent exactly as given; anything else as its `JSON.stringify`. */
export type WebhookBody = string | Uint8Array | object;

/** `signature`: a well-formed but wrong signature. `body`: the body changes after it was signed. */
export type Tamper = 'none' | 'signature' | 'body';

export interface SendOptions {
  tamper?: Tamper;
  /** Leave this header out. */
  omit?: 'signature' | 'timestamp';
  /** Sign with a timestamp `STALE_AGE_S` before now (not together with `timestamp`). */
  stale?: boolean;
  /** More request headers, or replacements (e.g. another content-type). */
  headers?: Record<string, string>;
  /** Default 5 s. */
  timeoutMs?: number;
}

export interface BenjiSendOptions extends SendOptions {
  salt: string;
  /** A Date is sent as an HTTP date (`Tue, 22 Oct 2024 21:57:02 GMT`); a string exactly as given. Default now. */
  timestamp?: Date | string;
  /** Benji does not say which, so both must be accepted. Default `hex`. */
  encoding?: 'hex' | 'base64';
}

export interface StarshipSendOptions extends SendOptions {
  secret: string;
  /** Unix seconds; a string is sent exactly as given. Default now. */
  timestamp?: number | string;
}

/** Exactly what went out, headers and body bytes. */
export interface SentWebhook {
  headers: Record<string, string>;
  body: Buffer;
}

export interface WebhookReply {
  status: number;
  /** Lowercase names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The answer parsed as JSON, or undefined when it is empty or not JSON. */
  json: unknown;
  text: string;
  sent: SentWebhook;
}

/** Benji's signature: HMAC-SHA256 keyed with the salt's UTF-8 bytes over the timestamp header value, then the raw body. */
export function benjiSignature(salt: string, timestamp: string, rawBody: string | Uint8Array, encoding: 'hex' | 'base64' = 'hex'): string {
  return createHmac('sha256', Buffer.from(salt, 'utf8')).update(timestamp, 'utf8').update(bytesOf(rawBody)).digest(encoding);
}

/** Starship's signature: lowercase hex HMAC-SHA256 keyed with the secret over `<timestamp>.<raw body>`. */
export function starshipSignature(secret: string, timestamp: number | string, rawBody: string | Uint8Array): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.`, 'utf8').update(bytesOf(rawBody)).digest('hex');
}

export async function sendBenjiWebhook(url: string, body: WebhookBody, options: BenjiSendOptions): Promise<WebhookReply> {
  const timestamp = benjiTimestamp(options);
  const encoding = options.encoding ?? 'hex';
  const signed = serialize(body);
  let signature = benjiSignature(options.salt, timestamp, signed, encoding);
  if (options.tamper === 'signature') signature = spoil(signature, encoding);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(options.omit !== 'timestamp' && { 'x-benji-timestamp': timestamp }),
    ...(options.omit !== 'signature' && { 'x-benji-signature': signature }),
    ...options.headers,
  };
  return resendWebhook(url, { headers, body: options.tamper === 'body' ? changed(signed) : signed }, options.timeoutMs);
}

export async function sendStarshipWebhook(url: string, body: WebhookBody, options: StarshipSendOptions): Promise<WebhookReply> {
  if (options.stale && options.timestamp !== undefined) throw new Error('stale and timestamp are exclusive');
  const timestamp = String(options.timestamp ?? defaultSeconds(options.stale));
  const signed = serialize(body);
  let signature = starshipSignature(options.secret, timestamp, signed);
  if (options.tamper === 'signature') signature = spoil(signature, 'hex');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(options.omit !== 'timestamp' && { 'x-timestamp': timestamp }),
    ...(options.omit !== 'signature' && { 'x-signature': signature }),
    ...options.headers,
  };
  return resendWebhook(url, { headers, body: options.tamper === 'body' ? changed(signed) : signed }, options.timeoutMs);
}

/** Posts exactly these headers and bytes: a provider retrying a delivery it thinks was lost. */
export async function resendWebhook(url: string, sent: SentWebhook, timeoutMs = 5_000): Promise<WebhookReply> {
  const reply = await request(url, {
    method: 'POST',
    headers: sent.headers,
    body: sent.body,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await reply.body.text();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { status: reply.statusCode, headers, json: parseJson(text), text, sent };
}

function benjiTimestamp(options: BenjiSendOptions): string {
  if (options.stale && options.timestamp !== undefined) throw new Error('stale and timestamp are exclusive');
  if (typeof options.timestamp === 'string') return options.timestamp;
  const date = options.timestamp ?? new Date(defaultSeconds(options.stale) * 1000);
  return date.toUTCString();
}

function defaultSeconds(stale: boolean | undefined): number {
  return Math.floor(Date.now() / 1000) - (stale ? STALE_AGE_S : 0);
}

function serialize(body: WebhookBody): Buffer {
  if (typeof body === 'string' || body instanceof Uint8Array) return bytesOf(body);
  return Buffer.from(JSON.stringify(body), 'utf8');
}

function bytesOf(body: string | Uint8Array): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * The same signature with its first byte's bits flipped: still well-formed in its encoding and of the
 * right length, so only a verifier that compares it refuses it.
 */
function spoil(signature: string, encoding: 'hex' | 'base64'): string {
  const bytes = Buffer.from(signature, encoding);
  bytes[0] = bytes[0]! ^ 0xff;
  return bytes.toString(encoding);
}

/**
 * The body as an attacker would change it, still valid JSON: a JSON object gains a field, anything
 * else a trailing space. Either way no longer the bytes that were signed.
 */
function changed(signed: Buffer): Buffer {
  const parsed = parseJson(signed.toString('utf8'));
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    return Buffer.from(JSON.stringify({ ...parsed, tampered: true }), 'utf8');
  }
  return Buffer.concat([signed, Buffer.from(' ')]);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
