import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBytes, send, sendOversized } from './http-kit.js';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * A stand-in for Starship Rewards, over real HTTP, faithful to the documented contract
 * (docs/upstreams.md): `POST /auth/login|refresh|logout` with rotating refresh tokens,
 * `GET /status`, and a few protected `/api/v1/` routes (an echo that also sends the pagination and
 * hop-by-hop headers a proxy must handle, products, orders, a large streamed body), protected by
 * Bearer tokens or, when `apiKey` is set, by the API-key scheme with optional HMAC signing.
 * Tests and the demo both run it; tests can drive its clock, script faults per endpoint, revoke or
 * expire tokens, and read counters and every request it received.
 */
export interface FakeStarshipOptions {
  username: string;
  password: string;
  /** Access token lifetime in seconds. Default 900 (15 min). */
  accessTtlS?: number;
  /** Refresh token lifetime in seconds. Default 7 days. */
  refreshTtlS?: number;
  /** Epoch milliseconds; every expiry decision and every issued `*_expires_at` uses it. Default `Date.now`. */
  clock?: () => number;
  /** When a refresh token is used, also revoke the access token issued with it. Default false. */
  revokeAccessOnRefresh?: boolean;
  /**
   * The account uses Starship's API-key scheme: `/api/v1/*` takes `X-API-Key` + `X-API-Secret`
   * (and, with `signingSecret`, a valid `X-Signature` at most 5 minutes old) and no Bearer token.
   */
  apiKey?: { key: string; secret: string; signingSecret?: string };
  port?: number;
  host?: string;
}

/** How far a signature's timestamp may be from the fake's clock, either way (Starship's 5 minutes). */
export const SIGNATURE_WINDOW_S = 300;

/** Which endpoint a queued fault applies to; `api` is any request under `/api/v1`. */
export type FaultTarget = 'login' | 'refresh' | 'logout' | 'api';

/** One scripted behaviour, used by exactly one request to its target. */
export type Fault =
  | { kind: 'reply'; status: number; body: unknown; headers?: Record<string, string> }
  /** Wait, then behave normally. */
  | { kind: 'delay'; ms: number }
  /** Never answer; the client's timeout must fire. */
  | { kind: 'hang' }
  /** Destroy the socket without an answer. */
  | { kind: 'reset' }
  /** Answer 200 with these many bytes of a longer body, then destroy the socket. */
  | { kind: 'cut'; afterBytes: number }
  /** A reply body of `bytes` bytes (Content-Length declared when `contentLength`), or an endless one. */
  | { kind: 'oversized'; status: number; bytes?: number; contentLength?: boolean };

export interface StarshipReceivedRequest {
  method: string;
  /** Raw path as received, before `?`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as utf8 text, `''` if none. */
  body: string;
}

/**
 * Counters. For login and refresh, every request counts exactly once: in `logins`/`refreshes` when
 * the fake issued tokens, otherwise (rejected, or answered by a reply/hang/reset fault) in
 * `loginFailures`/`refreshFailures`. `refreshReuses` counts refreshes with an already-used
 * refresh token (also counted in `refreshFailures`). `apiCalls` counts every request under
 * `/api/v1`, whatever its outcome. `logouts` counts successful `POST /auth/logout` calls only.
 */
export interface FakeStarshipStats {
  logins: number;
  loginFailures: number;
  refreshes: number;
  refreshFailures: number;
  refreshReuses: number;
  apiCalls: number;
  logouts: number;
  /** Bytes of `GET /api/v1/large` answers produced so far: only as fast as the reader takes them. */
  largeBytes: number;
}

export interface FakeStarship {
  /** Origin, e.g. `http://127.0.0.1:43210`. */
  readonly url: string;
  /** Live counters (see {@link FakeStarshipStats}). */
  readonly stats: Readonly<FakeStarshipStats>;
  /** Every request received, in order (tests may clear it with `requests.length = 0`). */
  readonly requests: StarshipReceivedRequest[];
  /** URLs (path and query) of calls under `/api/v1` whose connection closed before their answer was complete, whichever side closed it. */
  readonly abandoned: string[];
  /** Queue faults for one target; each is used by exactly one request to it, in order. */
  fail(target: FaultTarget, ...faults: Fault[]): void;
  /** Revoke every token issued so far, like a logout from another replica. */
  revokeAll(): void;
  /** Every access token issued so far is expired from now on (refresh tokens are untouched). */
  expireAccessTokens(): void;
  /** Closes the server and every connection, hanging ones included. */
  close(): Promise<void>;
}

export const STARSHIP_CLIENT_ID = 123456;
/** Chunk size of `GET /api/v1/large`. */
export const LARGE_CHUNK_BYTES = 64 * 1024;
const LARGE_MAX_BYTES = 1024 * 1024 * 1024;

/** Byte `i` of `GET /api/v1/large?bytes=N`. */
export function largeBodyByte(i: number): number {
  return i % 251;
}

export const FAKE_STARSHIP_PRODUCTS: ReadonlyArray<{ id: number; name: string }> = [
  { id: 1, name: 'Gift card' },
  { id: 2, name: 'Coffee voucher' },
  { id: 3, name: 'Cinema ticket' },
  { id: 4, name: 'Book token' },
];

/** Pagination headers as Starship sends them on lists (fixed values, the fake does not paginate). */
const PAGINATION_HEADERS: Record<string, string> = {
  'X-Page': '2',
  'X-Per-Page': '25',
  'X-Page-Size': '25',
  'X-Total-Count': '60',
  'X-Total-Pages': '3',
  'X-Has-More': 'true',
};

const INVALID_TOKEN = { error: 'Unauthorized', message: 'Invalid or expired token' } as const;
const unauthorizedAccess = (message: string) => ({ error: { name: 'UnauthorizedError', code: 'E_UNAUTHORIZED_ACCESS', message } });
const INVALID_REFRESH = { error: 'unauthorized', message: 'Invalid refresh token' } as const;
const NOT_FOUND = { error: { name: 'NotFound', code: 404, message: 'Not found' } } as const;

interface AccessRecord {
  expiresAt: number;
  revoked: boolean;
  forcedExpired: boolean;
}

interface RefreshRecord {
  expiresAt: number;
  revoked: boolean;
  used: boolean;
  /** The access token issued together with this refresh token. */
  accessToken: string;
}

export async function startFakeStarship(options: FakeStarshipOptions): Promise<FakeStarship> {
  const clock = options.clock ?? Date.now;
  const accessTtlMs = (options.accessTtlS ?? 900) * 1000;
  const refreshTtlMs = (options.refreshTtlS ?? 7 * 24 * 3600) * 1000;
  const host = options.host ?? '127.0.0.1';

  const requests: StarshipReceivedRequest[] = [];
  const abandoned: string[] = [];
  const stats: FakeStarshipStats = {
    logins: 0,
    loginFailures: 0,
    refreshes: 0,
    refreshFailures: 0,
    refreshReuses: 0,
    apiCalls: 0,
    logouts: 0,
    largeBytes: 0,
  };
  const faults: Record<FaultTarget, Fault[]> = { login: [], refresh: [], logout: [], api: [] };
  const accessTokens = new Map<string, AccessRecord>();
  const refreshTokens = new Map<string, RefreshRecord>();
  const ordersByKey = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let nextOrderId = 1;

  function revokeAll(): void {
    for (const record of accessTokens.values()) record.revoked = true;
    for (const record of refreshTokens.values()) record.revoked = true;
  }

  function issuePair(): Record<string, unknown> {
    const now = clock();
    const accessToken = `at_${randomBytes(24).toString('hex')}`;
    const refreshToken = `rt_${randomBytes(24).toString('hex')}`;
    const accessExpiresAt = now + accessTtlMs;
    const refreshExpiresAt = now + refreshTtlMs;
    accessTokens.set(accessToken, { expiresAt: accessExpiresAt, revoked: false, forcedExpired: false });
    refreshTokens.set(refreshToken, { expiresAt: refreshExpiresAt, revoked: false, used: false, accessToken });
    return {
      access_token: accessToken,
      refresh_token: refreshToken,
      access_expires_at: new Date(accessExpiresAt).toISOString(),
      refresh_expires_at: new Date(refreshExpiresAt).toISOString(),
      client_id: STARSHIP_CLIENT_ID,
    };
  }

  /** The Bearer access token if it is known, not revoked and not expired. */
  function validAccessToken(req: IncomingMessage): string | undefined {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const token = match?.[1];
    if (token === undefined) return undefined;
    const record = accessTokens.get(token);
    if (record === undefined || record.revoked || record.forcedExpired || clock() >= record.expiresAt) return undefined;
    return token;
  }

  const server = createServer((req, res) => {
    res.on('error', () => undefined);
    void handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const bytes = await readBytes(req);
    const text = bytes.toString('utf8');
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = queryAt === -1 ? '' : rawUrl.slice(queryAt + 1);
    const method = req.method ?? '';
    requests.push({ method, path, headers: req.headers, body: text });

    const requestId = req.headers['x-request-id'];
    const echoId: Record<string, string> = typeof requestId === 'string' ? { 'X-Request-Id': requestId } : {};

    const target = targetOf(path);
    if (target === 'api') {
      stats.apiCalls++;
      res.once('close', () => {
        if (!res.writableFinished) abandoned.push(rawUrl);
      });
    }
    const fault = target === undefined ? undefined : faults[target].shift();
    if (fault !== undefined && fault.kind !== 'delay') {
      if (target === 'login') stats.loginFailures++;
      if (target === 'refresh') stats.refreshFailures++;
    }
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'cut') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(fault.afterBytes + 1024) });
      return void res.write(Buffer.alloc(fault.afterBytes, 0x61), () => req.socket.destroy());
    }
    if (fault?.kind === 'reply') return send(res, fault.status, fault.body, fault.headers);
    if (fault?.kind === 'oversized') return sendOversized(res, fault.status, fault.bytes, fault.contentLength);
    if (fault?.kind === 'delay') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, fault.ms);
        timers.add(timer);
      });
      if (res.destroyed) return;
    }

    if (method === 'GET' && path === '/status') return send(res, 200, { status: 'ok' }, echoId);

    if (target === 'login') {
      if (method !== 'POST') {
        stats.loginFailures++;
        return methodNotAllowed(res, echoId);
      }
      const body = jsonBody(req, text);
      const { username, password } = body ?? {};
      if (!isFilled(username) || !isFilled(password)) {
        stats.loginFailures++;
        return send(res, 400, { error: 'validation_error', message: 'Username and password are required' }, echoId);
      }
      if (username !== options.username || password !== options.password) {
        stats.loginFailures++;
        return send(res, 401, { error: 'unauthorized', message: 'Invalid credentials' }, echoId);
      }
      stats.logins++;
      return send(res, 200, issuePair(), echoId);
    }

    if (target === 'refresh') {
      if (method !== 'POST') {
        stats.refreshFailures++;
        return methodNotAllowed(res, echoId);
      }
      const body = jsonBody(req, text);
      const refreshToken = body?.refresh_token;
      if (!isFilled(refreshToken)) {
        stats.refreshFailures++;
        return send(res, 400, { error: 'validation_error', message: 'Refresh token is required' }, echoId);
      }
      const record = refreshTokens.get(refreshToken);
      if (record === undefined || record.used || record.revoked || clock() >= record.expiresAt) {
        stats.refreshFailures++;
        if (record?.used === true) stats.refreshReuses++;
        return send(res, 401, INVALID_REFRESH, echoId);
      }
      record.used = true;
      record.revoked = true;
      if (options.revokeAccessOnRefresh === true) {
        const access = accessTokens.get(record.accessToken);
        if (access !== undefined) access.revoked = true;
      }
      stats.refreshes++;
      return send(res, 200, issuePair(), echoId);
    }

    if (target === 'logout') {
      if (method !== 'POST') return methodNotAllowed(res, echoId);
      if (validAccessToken(req) === undefined) return send(res, 401, INVALID_TOKEN, echoId);
      revokeAll();
      stats.logouts++;
      return send(res, 200, { success: true }, echoId);
    }

    if (target !== 'api') return send(res, 404, NOT_FOUND, echoId);
    if (options.apiKey !== undefined) {
      const refusal = apiKeyRefusal(req, options.apiKey, { method, path, query, body: bytes }, clock());
      if (refusal !== undefined) return send(res, 401, unauthorizedAccess(refusal), echoId);
    } else if (validAccessToken(req) === undefined) return send(res, 401, INVALID_TOKEN, echoId);

    if (path === '/api/v1/echo' || path.startsWith('/api/v1/echo/')) {
      return send(
        res,
        200,
        { method, path, query, headers: req.headers, body: text },
        {
          ...PAGINATION_HEADERS,
          'Set-Cookie': 'upstream_session=abc; HttpOnly',
          Connection: 'X-Upstream-Hop',
          'X-Upstream-Hop': '1',
          ...echoId,
        },
      );
    }
    if (method === 'GET' && path === '/api/v1/products') {
      return send(res, 200, FAKE_STARSHIP_PRODUCTS, { ...PAGINATION_HEADERS, ...echoId });
    }
    const productId = /^\/api\/v1\/products\/(\d+)$/.exec(path)?.[1];
    if (method === 'GET' && productId !== undefined) {
      const product = FAKE_STARSHIP_PRODUCTS.find((p) => p.id === Number(productId));
      return product === undefined ? send(res, 404, NOT_FOUND, echoId) : send(res, 200, product, echoId);
    }
    if (method === 'POST' && path === '/api/v1/orders') {
      const header = req.headers['idempotency-key'];
      const idempotencyKey = typeof header === 'string' ? header : null;
      // Same key, same order: a retried write must not order twice.
      let id = idempotencyKey === null ? undefined : ordersByKey.get(idempotencyKey);
      if (id === undefined) {
        id = nextOrderId++;
        if (idempotencyKey !== null) ordersByKey.set(idempotencyKey, id);
      }
      return send(res, 201, { id, idempotencyKey }, echoId);
    }
    if (method === 'GET' && path === '/api/v1/large') {
      const bytes = Number(new URLSearchParams(query).get('bytes') ?? '');
      if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > LARGE_MAX_BYTES) {
        return send(res, 400, { error: { name: 'BadRequest', code: 400, message: 'bytes must be an integer from 0 to 1 GiB' } }, echoId);
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes), ...echoId });
      return pipeline(Readable.from(largeBody(bytes, (length) => (stats.largeBytes += length))), res).catch(() => undefined);
    }
    return send(res, 404, NOT_FOUND, echoId);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url: origin,
    stats,
    requests,
    abandoned,
    fail: (target, ...more) => void faults[target].push(...more),
    revokeAll,
    expireAccessTokens() {
      for (const record of accessTokens.values()) record.forcedExpired = true;
    },
    close: () =>
      new Promise((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Why a call under the API-key scheme is refused, or undefined when it is let through. The
 * signature is checked from the request as received (raw path, raw query, body bytes), written
 * apart from the broker's signer so that the two can disagree.
 */
function apiKeyRefusal(
  req: IncomingMessage,
  credential: { key: string; secret: string; signingSecret?: string | undefined },
  received: { method: string; path: string; query: string; body: Buffer },
  nowMs: number,
): string | undefined {
  if (req.headers['x-api-key'] !== credential.key || req.headers['x-api-secret'] !== credential.secret) return 'Invalid API key or secret';
  if (credential.signingSecret === undefined) return undefined;
  const header = req.headers['x-signature'];
  const match = typeof header === 'string' ? /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header) : null;
  if (match === null) return 'Missing or malformed signature';
  const [, t = '', v1 = ''] = match;
  if (Math.abs(Math.floor(nowMs / 1000) - Number(t)) > SIGNATURE_WINDOW_S) return 'Signature timestamp outside the allowed window';
  const canonical = `${received.method}\n${received.path}\n${canonicalQuery(received.query)}\n${createHash('sha256').update(received.body).digest('hex')}\n${t}`;
  const expected = createHmac('sha256', credential.signingSecret).update(canonical).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex')) ? undefined : 'Invalid signature';
}

/** The query's pairs as received, by name then value. */
function canonicalQuery(query: string): string {
  const split = (pair: string): [string, string] => {
    const at = pair.indexOf('=');
    return at === -1 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
  };
  const order = (a: string, b: string) => {
    const [[na, va], [nb, vb]] = [split(a), split(b)];
    if (na !== nb) return na < nb ? -1 : 1;
    return va === vb ? 0 : va < vb ? -1 : 1;
  };
  return query
    .split('&')
    .filter((pair) => pair.length > 0)
    .sort(order)
    .join('&');
}

function targetOf(path: string): FaultTarget | undefined {
  if (path === '/auth/login') return 'login';
  if (path === '/auth/refresh') return 'refresh';
  if (path === '/auth/logout') return 'logout';
  if (path === '/api/v1' || path.startsWith('/api/v1/')) return 'api';
  return undefined;
}

/** The JSON object body, or undefined when it is absent, not JSON (by content type or syntax) or not an object. */
function jsonBody(req: IncomingMessage, text: string): Record<string, unknown> | undefined {
  if (!/\bjson\b/i.test(req.headers['content-type'] ?? '')) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isFilled(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function* largeBody(total: number, produced: (bytes: number) => void): Generator<Buffer> {
  // One period-aligned pattern buffer; every chunk is a view into it starting at its offset mod 251.
  const pattern = Buffer.alloc(LARGE_CHUNK_BYTES + 251);
  for (let i = 0; i < pattern.length; i++) pattern[i] = largeBodyByte(i);
  for (let offset = 0; offset < total; offset += LARGE_CHUNK_BYTES) {
    const length = Math.min(LARGE_CHUNK_BYTES, total - offset);
    const start = offset % 251;
    produced(length);
    yield pattern.subarray(start, start + length);
  }
}

function methodNotAllowed(res: ServerResponse, headers: Record<string, string>): void {
  send(res, 405, { error: 'method_not_allowed', message: 'Method not allowed' }, { Allow: 'POST', ...headers });
}
