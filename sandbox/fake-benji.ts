import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody, send, sendOversized } from './http-kit.js';
import { hostedConnectPage } from './fake-benji-hosted.js';

/**
 * A stand-in for Benji over real HTTP, faithful to the documented contract (docs/upstreams.md):
 *
 * - `POST /auth/connect` (partner key): `{code:"ok", data:{token, connect_url}}`.
 * - The hosted Connect page (`GET /hosted/connect?connect_token=…`): the user approves, and the page
 *   hands the opener an exchange token with `postMessage`, as Benji's SDK does with `onSuccess`.
 * - The auth service (the same server plays `authservice`): `POST /access/token/exchange` and
 *   `GET /access/token/refresh` (a JSON body on a GET, as documented), rotating user token pairs.
 * - The partner API: `GET /users/{id}`, `/transactions/{id}`, `/partnerships/{id}`,
 *   `POST /partnerships/{id}/triggers`, with the partner key or a user access token in `x-api-key`;
 *   each answer says which credential it was called with. `/echo/…` answers the request back.
 *
 * Tests and the demo both run it; tests can script faults, drive its clock, revoke tokens, and read
 * every request it received and every token it issued.
 */
export interface FakeBenjiOptions {
  apiKey: string;
  /** Base of the hosted-connect URL handed out; `''` imitates an account without hosted connect. Default: the fake's own page. */
  connectUrl?: string;
  /** Origins the hosted page may hand an exchange token to (Pilot's allowed origins). Default: none. */
  frontendOrigins?: readonly string[];
  /** Lifetime of a user access token, seconds. Default 90 days. */
  userAccessTtlS?: number;
  /** Lifetime of an exchange token, seconds. Default 15 min. */
  exchangeTtlS?: number;
  /** Epoch ms for every expiry decision and every issued date. Default `Date.now`. */
  clock?: () => number;
  port?: number;
  host?: string;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** One scripted reply, used instead of the normal behaviour for the next request. */
export type Fault =
  | { kind: 'reply'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'raw'; status: number; text: string }
  | { kind: 'delay'; ms: number }
  | { kind: 'hang' }
  | { kind: 'reset' }
  /** A reply body of `bytes` bytes (Content-Length declared when `contentLength`), or an endless one. */
  | { kind: 'oversized'; status: number; bytes?: number; contentLength?: boolean };

/** Which requests a queued fault applies to: `connect` is `/auth/connect`, `api` the partner API. */
export type FaultTarget = 'connect' | 'exchange' | 'refresh' | 'api';

/** A Benji user, as the fake knows them: one per partner-side external id. */
export interface FakeBenjiUser {
  readonly benjiUserId: number;
  readonly userExternalId: string | undefined;
}

export interface FakeBenjiStats {
  exchanges: number;
  refreshes: number;
  /** Refreshes sent with a refresh token already spent (each is good for one refresh). */
  refreshReuses: number;
  refreshFailures: number;
}

export interface FakeBenji {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Every connect token it issued, in order. */
  readonly issuedTokens: string[];
  /** Every user access and refresh token it issued: none may reach a browser or a log. */
  readonly issuedUserTokens: string[];
  /** Every exchange token it issued (meant for the frontend, but never for a log). */
  readonly issuedExchangeTokens: string[];
  readonly stats: Readonly<FakeBenjiStats>;
  /** Successful refreshes per Benji user id. */
  refreshesOf(benjiUserId: number): number;
  /** Queue faults; each is used by exactly one request (to `target`, when given; else to any), in order. */
  fail(...faults: Fault[]): void;
  failOn(target: FaultTarget, ...faults: Fault[]): void;
  setConnectUrl(connectUrl: string): void;
  /** What the hosted page does when a user approves: an exchange token for that user (tests without a browser). */
  issueExchangeToken(userExternalId?: string): string;
  /** The user's current access token stops working (401), as if Benji revoked it; refresh still works. */
  revokeAccess(benjiUserId: number): void;
  /** The user's session is gone: refresh answers `400 invalid_token`, the access token 401. */
  revokeSession(benjiUserId: number): void;
  userFor(userExternalId: string): FakeBenjiUser | undefined;
  close(): Promise<void>;
}

const dayS = 86_400;
const unauthorizedPartner = { error: 'unauthorized_partner', message: 'Invalid API key' };
const unauthorizedRequest = { code: 'unauthorized_request', message: 'The token is not valid' };

interface Session {
  benjiUserId: number;
  accessToken: string;
  refreshToken: string;
  accessExpiresAt: number;
  accessRevoked: boolean;
}

export async function startFakeBenji(options: FakeBenjiOptions): Promise<FakeBenji> {
  const clock = options.clock ?? Date.now;
  const requests: ReceivedRequest[] = [];
  const issuedTokens: string[] = [];
  const issuedUserTokens: string[] = [];
  const issuedExchangeTokens: string[] = [];
  const anyFaults: Fault[] = [];
  const faults: Record<FaultTarget, Fault[]> = { connect: [], exchange: [], refresh: [], api: [] };
  const stats: FakeBenjiStats = { exchanges: 0, refreshes: 0, refreshReuses: 0, refreshFailures: 0 };
  const refreshes = new Map<number, number>();
  /** Connect tokens issued, with the external id they were asked for. */
  const connectTokens = new Map<string, string | undefined>();
  const usersByExternalId = new Map<string, FakeBenjiUser>();
  const exchangeTokens = new Map<string, { benjiUserId: number; expiresAt: number }>();
  const sessionsByAccess = new Map<string, Session>();
  const sessionsByRefresh = new Map<string, Session>();
  const spentRefreshTokens = new Set<string>();
  let nextUserId = 1001;
  let connectUrl = options.connectUrl;
  let origin = '';

  const server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });

  function token(kind: 'at' | 'rt' | 'xt'): string {
    const value = `${kind}_${randomBytes(18).toString('base64url')}`;
    (kind === 'xt' ? issuedExchangeTokens : issuedUserTokens).push(value);
    return value;
  }

  function userOf(userExternalId: string | undefined): FakeBenjiUser {
    const known = userExternalId === undefined ? undefined : usersByExternalId.get(userExternalId);
    if (known !== undefined) return known;
    const user = { benjiUserId: nextUserId++, userExternalId };
    if (userExternalId !== undefined) usersByExternalId.set(userExternalId, user);
    return user;
  }

  function issueExchangeToken(userExternalId?: string): string {
    const exchangeToken = token('xt');
    exchangeTokens.set(exchangeToken, {
      benjiUserId: userOf(userExternalId).benjiUserId,
      expiresAt: clock() + (options.exchangeTtlS ?? 15 * 60) * 1000,
    });
    return exchangeToken;
  }

  /** A new pair for the user: the previous pair (if any) stops working. */
  function openSession(benjiUserId: number, previous?: Session): Session {
    if (previous !== undefined) {
      sessionsByAccess.delete(previous.accessToken);
      sessionsByRefresh.delete(previous.refreshToken);
      spentRefreshTokens.add(previous.refreshToken);
    }
    const session: Session = {
      benjiUserId,
      accessToken: token('at'),
      refreshToken: token('rt'),
      accessExpiresAt: clock() + (options.userAccessTtlS ?? 90 * dayS) * 1000,
      accessRevoked: false,
    };
    sessionsByAccess.set(session.accessToken, session);
    sessionsByRefresh.set(session.refreshToken, session);
    return session;
  }

  const tokenReply = (session: Session) => ({
    code: 'ok',
    data: {
      user_id: session.benjiUserId,
      merchant_id: 77,
      token_data: {
        access_token: session.accessToken,
        refresh_token: session.refreshToken,
        access_token_expires_at: new Date(session.accessExpiresAt).toUTCString(),
      },
    },
  });

  function targetOf(path: string): FaultTarget {
    if (path === '/auth/connect') return 'connect';
    if (path === '/access/token/exchange') return 'exchange';
    if (path === '/access/token/refresh') return 'refresh';
    return 'api';
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? '';
    if (path.startsWith('/hosted/')) return hosted(req, res, url, text);

    const body = parseJson(text);
    requests.push({ method, path, headers: req.headers, body });

    const target = targetOf(path);
    const fault = faults[target].shift() ?? anyFaults.shift();
    if (fault?.kind === 'hang') return; // never answer; the client's timeout must fire
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'delay') await new Promise((resolve) => setTimeout(resolve, fault.ms));
    if (fault?.kind === 'reply') {
      if (target === 'refresh') stats.refreshFailures++;
      return send(res, fault.status, fault.body, fault.headers);
    }
    if (fault?.kind === 'oversized') return sendOversized(res, fault.status, fault.bytes, fault.contentLength);
    if (fault?.kind === 'raw') {
      res.writeHead(fault.status, { 'content-type': 'application/json' });
      return void res.end(fault.text);
    }

    const partner = req.headers['x-api-key'] === options.apiKey;
    if (target === 'connect') {
      if (method !== 'POST') return send(res, 404, { error: 'not_found', message: 'Not found' });
      if (!partner) return send(res, 401, unauthorizedPartner);
      const problem = validate(body);
      if (problem !== undefined) return send(res, 400, { error: 'validation_error', message: problem });
      const connectToken = randomUUID();
      issuedTokens.push(connectToken);
      const externalId = (body as { user_external_id?: unknown }).user_external_id;
      connectTokens.set(connectToken, typeof externalId === 'string' ? externalId : undefined);
      return send(res, 200, { code: 'ok', data: { token: connectToken, connect_url: connectUrl ?? `${origin}/hosted/connect` } });
    }
    if (target === 'exchange') {
      if (method !== 'POST') return send(res, 404, { error: 'not_found', message: 'Not found' });
      if (!partner) return send(res, 401, unauthorizedPartner);
      const exchangeToken = (body as { exchange_token?: unknown } | undefined)?.exchange_token;
      const record = typeof exchangeToken === 'string' ? exchangeTokens.get(exchangeToken) : undefined;
      if (record === undefined) return send(res, 401, { error: 'invalid_exchange_token', message: 'Invalid exchange token' });
      exchangeTokens.delete(exchangeToken as string);
      if (clock() >= record.expiresAt) return send(res, 401, { error: 'expired_exchange_token', message: 'Exchange token expired' });
      stats.exchanges++;
      return send(res, 200, tokenReply(openSession(record.benjiUserId)));
    }
    if (target === 'refresh') {
      if (method !== 'GET') return send(res, 404, { error: 'not_found', message: 'Not found' });
      if (!partner) {
        stats.refreshFailures++;
        return send(res, 401, unauthorizedPartner);
      }
      const { refresh_token: refreshToken, access_token: accessToken } = (body ?? {}) as Record<string, unknown>;
      const session = typeof refreshToken === 'string' ? sessionsByRefresh.get(refreshToken) : undefined;
      if (session === undefined) {
        stats.refreshFailures++;
        if (typeof refreshToken === 'string' && spentRefreshTokens.has(refreshToken)) stats.refreshReuses++;
        return send(res, 400, { error: 'invalid_token', message: 'Invalid refresh token' });
      }
      if (accessToken !== session.accessToken) {
        stats.refreshFailures++;
        return send(res, 401, unauthorizedRequest);
      }
      stats.refreshes++;
      refreshes.set(session.benjiUserId, (refreshes.get(session.benjiUserId) ?? 0) + 1);
      return send(res, 200, tokenReply(openSession(session.benjiUserId, session)));
    }
    return partnerApi(req, res, method, path, url, text, partner);
  }

  function partnerApi(req: IncomingMessage, res: ServerResponse, method: string, path: string, url: URL, text: string, partner: boolean) {
    const key = req.headers['x-api-key'];
    const session = typeof key === 'string' ? sessionsByAccess.get(key) : undefined;
    const userValid = session !== undefined && !session.accessRevoked && clock() < session.accessExpiresAt;
    if (!partner && !userValid) return send(res, 401, session === undefined ? unauthorizedPartner : unauthorizedRequest);
    const as = partner ? { authenticatedAs: 'partner' } : { authenticatedAs: 'user', userId: session?.benjiUserId };
    if (path === '/echo' || path.startsWith('/echo/')) {
      return send(
        res,
        200,
        { method, path, query: url.search.slice(1), headers: req.headers, body: text, ...as },
        { 'set-cookie': 'benji=1' },
      );
    }
    const match = /^\/(users|transactions|partnerships)\/([^/]+)(\/triggers)?$/.exec(path);
    if (match === null) return send(res, 404, { error: 'not_found', message: 'Not found' });
    const [, collection, id, triggers] = match;
    if (triggers !== undefined) {
      if (collection !== 'partnerships' || method !== 'POST') return send(res, 404, { error: 'not_found', message: 'Not found' });
      return send(res, 200, { code: 'ok', data: { trigger_event_id: randomUUID(), ...as } });
    }
    if (method !== 'GET') return send(res, 404, { error: 'not_found', message: 'Not found' });
    return send(res, 200, { code: 'ok', data: { id, type: collection, ...as } });
  }

  async function hosted(req: IncomingMessage, res: ServerResponse, url: URL, text: string): Promise<void> {
    if (req.method === 'GET' && url.pathname === '/hosted/connect') {
      const connectToken = url.searchParams.get('connect_token') ?? '';
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      });
      return void res.end(hostedConnectPage({ known: connectTokens.has(connectToken), frontendOrigins: options.frontendOrigins ?? [] }));
    }
    if (req.method === 'POST' && url.pathname === '/hosted/approve') {
      // The page's own call: Benji signs the user in and asks them to approve; the sandbox just approves.
      const connectToken = (parseJson(text) as { connect_token?: unknown } | undefined)?.connect_token;
      if (typeof connectToken !== 'string' || !connectTokens.has(connectToken)) {
        return send(res, 400, { error: 'invalid_connect_token', message: 'Unknown connect token' });
      }
      const user = userOf(connectTokens.get(connectToken));
      connectTokens.delete(connectToken);
      return send(res, 200, { exchange_token: issueExchangeToken(user.userExternalId), user_id: user.benjiUserId });
    }
    return send(res, 404, { error: 'not_found', message: 'Not found' });
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  origin = `http://${options.host ?? '127.0.0.1'}:${port}`;

  function sessionsOf(benjiUserId: number): Session[] {
    return [...sessionsByAccess.values()].filter((session) => session.benjiUserId === benjiUserId);
  }

  return {
    url: origin,
    requests,
    issuedTokens,
    issuedUserTokens,
    issuedExchangeTokens,
    stats,
    refreshesOf: (benjiUserId) => refreshes.get(benjiUserId) ?? 0,
    fail: (...more) => void anyFaults.push(...more),
    failOn: (target, ...more) => void faults[target].push(...more),
    setConnectUrl(value) {
      connectUrl = value;
    },
    issueExchangeToken,
    revokeAccess(benjiUserId) {
      for (const session of sessionsOf(benjiUserId)) session.accessRevoked = true;
    },
    revokeSession(benjiUserId) {
      for (const session of sessionsOf(benjiUserId)) {
        sessionsByAccess.delete(session.accessToken);
        sessionsByRefresh.delete(session.refreshToken);
      }
    },
    userFor: (userExternalId) => usersByExternalId.get(userExternalId),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function validate(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return 'Body must be a JSON object';
  const { partnership_id: partnershipId, mode, custom_attributes: custom } = body as Record<string, unknown>;
  if (typeof partnershipId !== 'string' && typeof partnershipId !== 'number') return 'partnership_id is required';
  if (mode !== 1 && mode !== 3 && mode !== 4) return 'mode must be 1, 3 or 4';
  if (custom !== undefined) {
    const actions = (custom as { actions?: unknown }).actions;
    if (!Array.isArray(actions)) return 'custom_attributes.actions must be an array';
  }
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return text;
  }
}
