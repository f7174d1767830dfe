import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const webhookProviders = ['benji', 'starship'] as const;
export type WebhookProvider = (typeof webhookProviders)[number];

/** Why a delivery was refused, in fixed words: never the expected value. */
export type SignatureRefusal = 'missing_signature' | 'missing_timestamp' | 'invalid_timestamp' | 'stale_timestamp' | 'bad_signature';

export const refusalDetails: Record<SignatureRefusal, string> = {
  missing_signature: 'The delivery carries no signature.',
  missing_timestamp: 'The delivery carries no timestamp.',
  invalid_timestamp: 'The delivery’s timestamp cannot be read.',
  stale_timestamp: 'The delivery’s timestamp is outside the accepted window.',
  bad_signature: 'The signature does not match the body.',
};

export interface VerifyOptions {
  /** Every configured secret (two during a rotation): any one may have signed. */
  secrets: readonly string[];
  nowMs: number;
  toleranceS: number;
}

const header = (headers: IncomingHttpHeaders, name: string) => {
  const value = headers[name];
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
};

/** HMAC-SHA256 of `parts` (signed as one run of bytes), compared in constant time with `expected`. */
function signedBy(secrets: readonly string[], parts: readonly (string | Buffer)[], expected: Buffer): boolean {
  let match = false;
  for (const secret of secrets) {
    const hmac = createHmac('sha256', secret);
    for (const part of parts) hmac.update(part);
    const digest = hmac.digest();
    // Every secret is tried, matched or not: how many there are shows in no timing.
    if (expected.length === digest.length && timingSafeEqual(expected, digest)) match = true;
  }
  return match;
}

/**
 * Benji: `x-benji-signature` is HMAC-SHA256 keyed with the salt over the `x-benji-timestamp` value
 * immediately followed by the raw body. Benji does not say whether it is hex or base64, so both are
 * read; the timestamp is a GMT date (an HTTP date or ISO 8601).
 */
export function verifyBenji(headers: IncomingHttpHeaders, body: Buffer, options: VerifyOptions): SignatureRefusal | undefined {
  const signature = header(headers, 'x-benji-signature');
  const timestamp = header(headers, 'x-benji-timestamp');
  if (signature === undefined) return 'missing_signature';
  if (timestamp === undefined) return 'missing_timestamp';
  // Date.parse reads bare numbers as years: a date has a month name or an ISO `T` in it.
  const at = /[a-z]/i.test(timestamp) ? Date.parse(timestamp) : Number.NaN;
  if (!Number.isFinite(at)) return 'invalid_timestamp';
  if (Math.abs(options.nowMs - at) > options.toleranceS * 1000) return 'stale_timestamp';
  const expected = /^[0-9a-f]{64}$/i.test(signature) ? Buffer.from(signature, 'hex') : fromBase64(signature);
  return expected !== undefined && signedBy(options.secrets, [timestamp, body], expected) ? undefined : 'bad_signature';
}

/**
 * Starship: `X-Signature` is the lowercase hex HMAC-SHA256 keyed with the secret over
 * `<X-Timestamp> + "." + <raw body>`; `X-Timestamp` is unix seconds.
 */
export function verifyStarship(headers: IncomingHttpHeaders, body: Buffer, options: VerifyOptions): SignatureRefusal | undefined {
  const signature = header(headers, 'x-signature');
  const timestamp = header(headers, 'x-timestamp');
  if (signature === undefined) return 'missing_signature';
  if (timestamp === undefined) return 'missing_timestamp';
  if (!/^\d{1,12}$/.test(timestamp)) return 'invalid_timestamp';
  if (Math.abs(options.nowMs / 1000 - Number(timestamp)) > options.toleranceS) return 'stale_timestamp';
  if (!/^[0-9a-f]{64}$/i.test(signature)) return 'bad_signature';
  return signedBy(options.secrets, [timestamp, '.', body], Buffer.from(signature, 'hex')) ? undefined : 'bad_signature';
}

/** 32 bytes from base64 or base64url, or undefined. */
function fromBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return undefined;
  const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return bytes.length === 32 ? bytes : undefined;
}

export const verifiers: Record<WebhookProvider, typeof verifyBenji> = { benji: verifyBenji, starship: verifyStarship };
