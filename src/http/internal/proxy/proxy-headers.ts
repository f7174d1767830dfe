import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
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

/**
 * Headers a `Connection` header names are hop-by-hop too. Nearly every message says only
 * `keep-alive` or `close`, which name no other header: those skip the split.
 */
function namedInConnection(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const value = headers.connection;
  if (value === undefined || value === 'keep-alive' || value === 'close') return noNames;
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

/**
 * What the caller gets of the upstream's answer headers, set on `res`: hop-by-hop headers and
 * cookies stay behind, and `Retry-After` is passed on only as sane seconds. Set as they are read,
 * with no copy in between: this runs on every proxied answer. (undici gives header names lowercased.)
 */
export function setDownstreamHeaders(res: ServerResponse, upstream: IncomingHttpHeaders, clock: Clock): void {
  const excluded = namedInConnection(upstream);
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || hopByHop.has(name) || droppedResponseHeaders.has(name) || excluded.has(name)) continue;
    if (name === 'retry-after') {
      // Starship's throttling advice, in seconds and at most 15 min; one we cannot read is dropped.
      const seconds = retryAfterSeconds(value, clock());
      if (seconds !== undefined) res.setHeader(name, String(seconds));
      continue;
    }
    res.setHeader(name, value);
  }
}
