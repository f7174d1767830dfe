import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../../../clock.js';
import { retryAfterSeconds } from '../../../upstream/upstream-http.js';

/**
 * What a service may tell Starship. Credentials, cookies and everything else stay behind, the
 * caller's `traceparent` and `tracestate` too: with tracing on, the broker sends its own span's
 * (upstream/upstream-http.ts), so the upstream's spans hang under the broker's call.
 */
const forwardedRequestHeaders = [
  'accept',
  'accept-encoding',
  'accept-language',
  'content-type',
  'idempotency-key',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'range',
];

/** Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never passed on. */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
]);
/** Starship's cookies are for Starship's browser sessions, not for our callers. */
const droppedResponseHeaders = new Set(['set-cookie', 'set-cookie2']);

const noNames: ReadonlySet<string> = new Set();

/** Headers a `Connection` header names are hop-by-hop too. */
function namedInConnection(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const value = headers.connection;
  if (value === undefined) return noNames;
  const list = Array.isArray(value) ? value.join(',') : value;
  return new Set(
    list
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
}

export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, requestId: string): Record<string, string> {
  const excluded = namedInConnection(incoming);
  const out: Record<string, string> = {};
  for (const name of forwardedRequestHeaders) {
    const value = incoming[name];
    if (value === undefined || excluded.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  out['x-request-id'] = requestId;
  return out;
}

export function downstreamResponseHeaders(upstream: IncomingHttpHeaders, clock: Clock): Record<string, string | string[]> {
  const excluded = namedInConnection(upstream);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    const lower = name.toLowerCase();
    if (value === undefined || hopByHop.has(lower) || droppedResponseHeaders.has(lower) || excluded.has(lower)) continue;
    if (lower === 'retry-after') {
      // Starship's throttling advice, in seconds and at most 15 min; one we cannot read is dropped.
      const seconds = retryAfterSeconds(value, clock());
      if (seconds !== undefined) out[lower] = String(seconds);
      continue;
    }
    out[lower] = value;
  }
  return out;
}
