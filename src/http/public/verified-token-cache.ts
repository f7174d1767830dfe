import type { JWTPayload } from 'jose';

/**
 * Remembers user tokens that passed verification, so a user's repeated calls skip the signature
 * check (WebCrypto HMAC or RSA, the costliest step of the public door in its CPU profile).
 *
 * Only verified tokens go in, keyed by the exact token string, so nothing can be forged into it.
 * An entry lives until the token expires (with the same tolerance verification allows) and at most
 * five minutes, which also bounds how long a key removed from the JWKS keeps working. The cache is
 * bounded: tokens over 4 KB are not kept, and past `maxEntries` the oldest entry goes (at most about
 * 40 MB even if every entry were that large; typical user tokens are well under 1 KB).
 */
export interface VerifiedTokenCache {
  get(token: string): JWTPayload | undefined;
  set(token: string, payload: JWTPayload): void;
}

export function createVerifiedTokenCache(options: {
  now: () => number;
  toleranceS: number;
  maxEntries?: number;
  maxAgeMs?: number;
}): VerifiedTokenCache {
  const { now, toleranceS } = options;
  const maxEntries = options.maxEntries ?? 5_000;
  const maxTokenLength = 4_096;
  const maxAgeMs = options.maxAgeMs ?? 5 * 60_000;
  const entries = new Map<string, { payload: JWTPayload; expiresAt: number }>();

  return {
    get(token) {
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      if (now() >= entry.expiresAt) {
        entries.delete(token);
        return undefined;
      }
      return entry.payload;
    },
    set(token, payload) {
      if (typeof payload.exp !== 'number' || token.length > maxTokenLength) return; // exp is required anyway
      const expiresAt = Math.min((payload.exp + toleranceS) * 1000, now() + maxAgeMs);
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
      entries.set(token, { payload, expiresAt });
    },
  };
}
