import { createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { CallHeaders, Credential, OutgoingCall } from './credential.js';
import { rejectionReporter } from './static-key.js';

/**
 * Starship's API-key scheme: every call carries the account's `X-API-Key` and `X-API-Secret`; no
 * login, refresh, session, lock or warm-up. When the credential has signing enabled, every call
 * also carries `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over the canonical string of
 * `signingString`. A 401 is Starship refusing the key itself (or the egress IP): nothing to renew,
 * so it is passed through, and logged (at most once a minute) and counted.
 */
export interface StarshipApiKeyOptions {
  apiKey: string;
  apiSecret: string;
  /** Set when Starship enabled signing for the credential. */
  signingSecret: string | undefined;
  clock: Clock;
  logger: Logger;
  /** Counts each call Starship refused. */
  onRejected: () => void;
}

export function createStarshipApiKeyCredential({
  apiKey,
  apiSecret,
  signingSecret,
  clock,
  logger,
  onRejected,
}: StarshipApiKeyOptions): Credential {
  const keyHeaders: CallHeaders = { 'x-api-key': apiKey, 'x-api-secret': apiSecret };
  const signingKey = signingSecret === undefined ? undefined : createSecretKey(Buffer.from(signingSecret, 'utf8'));

  return {
    async headersFor(call) {
      if (signingKey === undefined) return keyHeaders;
      const t = Math.floor(clock() / 1000);
      return { ...keyHeaders, 'x-signature': `t=${t},v1=${hmacHex(signingKey, signingString(call, t))}` };
    },
    rejected: rejectionReporter({
      upstream: 'starship',
      refusedMessage: 'Starship rejected the API key: check STARSHIP_API_KEY, STARSHIP_API_SECRET and the allow-listed egress IPs',
      clock,
      logger,
      onRejected,
    }),
  };
}

/**
 * The string Starship's HMAC covers, joined by `\n`:
 *   METHOD        uppercase
 *   PATH          exactly as sent, without the query
 *   SORTED_QUERY  the query's `name=value` pairs exactly as sent (still percent-encoded), sorted by
 *                 name then value, joined by `&`; empty when there is none
 *   BODY_HASH     lowercase hex SHA-256 of the exact body bytes (of the empty string when none)
 *   TIMESTAMP     unix seconds, the same value as `t`
 * Starship's page stops at "sort query parameters alphabetically by key and join"; the rest is our
 * reading, spelled out in the README so a customer can check it.
 */
export function signingString(call: OutgoingCall, timestampS: number): string {
  return [call.method.toUpperCase(), call.path, sortedQuery(call.query), sha256Hex(call.body), String(timestampS)].join('\n');
}

function sortedQuery(query: string): string {
  const pairs = query
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const equals = pair.indexOf('=');
      return { pair, name: equals === -1 ? pair : pair.slice(0, equals), value: equals === -1 ? '' : pair.slice(equals + 1) };
    });
  pairs.sort((a, b) => compare(a.name, b.name) || compare(a.value, b.value));
  return pairs.map(({ pair }) => pair).join('&');
}

/** By UTF-16 code units, as JavaScript compares strings: the same order for every ASCII query. */
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Most proxied calls are GETs without a body: the hash of nothing is worked out once. */
const emptyBodyHash = hash('sha256', '', 'hex');
const sha256Hex = (body: Buffer | undefined) => (body === undefined || body.length === 0 ? emptyBodyHash : hash('sha256', body, 'hex'));
const hmacHex = (key: KeyObject, text: string) => createHmac('sha256', key).update(text, 'utf8').digest('hex');
