import { Pool, type Dispatcher } from 'undici';
import { z } from 'zod';
import type { Clock } from '../../clock.js';
import { AppError } from '../../errors.js';
import type { TokenSet } from '../../tokens/token-set.js';
import { noMetrics, type UpstreamMetrics } from '../../observability/metrics.js';
import { noScrub, type Scrub } from '../../observability/secret-scrubber.js';
import {
  isTimeout,
  outcomeOf,
  parseJson,
  readCapped,
  retryAfterSeconds,
  transportError,
  upstreamText,
  type Cancellation,
} from '../upstream-call.js';

/** Why a login or refresh did not produce tokens; the token manager decides what each means. */
export type AuthFailure =
  | { kind: 'rejected'; status: number; error: string | undefined }
  | { kind: 'throttled'; retryAfterS: number | undefined }
  /** maybeProcessed: the request may have reached Starship (no answer, or an unreadable one). */
  | { kind: 'unavailable'; timeout: boolean; status: number | undefined; maybeProcessed: boolean };

/** Auth results are values: a refused login is an answer, not an exception. */
export type AuthResult = { ok: true; tokens: TokenSet } | { ok: false; failure: AuthFailure };

export interface ForwardRequest {
  method: string;
  /** Path and query, already checked against the allow-list; appended to the configured origin. */
  target: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  accessToken: string;
  /** Aborts the call; the client also uses it for its own deadline (one per call). */
  cancel: Cancellation;
}

export interface StarshipClient {
  login(): Promise<AuthResult>;
  refresh(refreshToken: string): Promise<AuthResult>;
  /** Revokes every token of the account, on every replica. Only for credential rotation. */
  logout(accessToken: string): Promise<void>;
  /** One proxied call; the response body is a stream for the caller to pipe or dump. */
  forward(request: ForwardRequest): Promise<Dispatcher.ResponseData>;
  close(): Promise<void>;
}

export interface StarshipClientOptions {
  baseUrl: string;
  username: string;
  password: string;
  timeoutMs: number;
  clock: Clock;
  metrics?: UpstreamMetrics;
  /** Removes configured secrets from text Starship sent, before it is logged. */
  scrub?: Scrub;
}

const tokenFields = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1),
  access_expires_at: z.string(),
  refresh_expires_at: z.string(),
  client_id: z.union([z.string(), z.number()]),
});
/** Some Starship pages wrap successes as {success, data}; accept both shapes. */
const tokenReply = z.union([tokenFields, z.object({ data: tokenFields }).transform((wrapped) => wrapped.data)]);
const errorReply = z
  .object({ error: z.union([z.string(), z.object({ code: z.unknown(), name: z.string().optional() }).loose()]).optional() })
  .loose();

export function createStarshipClient(options: StarshipClientOptions): StarshipClient {
  const origin = new URL(options.baseUrl).origin;
  const metrics = options.metrics ?? noMetrics;
  const scrub = options.scrub ?? noScrub;
  const poolOptions = {
    keepAliveTimeout: 30_000,
    connect: { timeout: options.timeoutMs },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  };
  // Proxied calls and the session's own calls get separate pools, so that a flood of slow or
  // streaming calls can never queue a refresh behind them until the token expires.
  const proxyPool = new Pool(origin, { ...poolOptions, connections: 128 });
  const authPool = new Pool(origin, { ...poolOptions, connections: 4 });

  /** Times one call; the outcome is its HTTP status, or timeout/error when none came. */
  async function timed<T extends { statusCode: number }>(operation: string, call: () => Promise<T>): Promise<T> {
    const startedAt = performance.now();
    try {
      const result = await call();
      metrics.observe('starship', operation, String(result.statusCode), (performance.now() - startedAt) / 1000);
      return result;
    } catch (error) {
      metrics.observe('starship', operation, outcomeOf(error), (performance.now() - startedAt) / 1000);
      throw error;
    }
  }

  async function authCall(operation: 'login' | 'refresh', body: unknown): Promise<AuthResult> {
    const signal = AbortSignal.timeout(options.timeoutMs);
    let response: { statusCode: number; headers: Record<string, string | string[] | undefined>; text: string | undefined };
    try {
      response = await timed(operation, async () => {
        const reply = await authPool.request({
          path: `/auth/${operation}`,
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(body),
          signal,
        });
        return {
          statusCode: reply.statusCode,
          headers: reply.headers,
          text: await readCapped(reply.body, reply.headers['content-length']),
        };
      });
    } catch (error) {
      return {
        ok: false,
        failure: { kind: 'unavailable', timeout: isTimeout(error, signal.aborted), status: undefined, maybeProcessed: !neverSent(error) },
      };
    }

    // A reply over the cap reads as no payload: a 200 then counts as unreadable, an error keeps its
    // status and loses only its error name.
    const { statusCode: status, headers, text } = response;
    const payload = text === undefined ? undefined : parseJson(text);
    if (status === 200 || status === 201) {
      const tokens = tokenReply.safeParse(payload);
      const parsed = tokens.success ? toTokenSet(tokens.data, options.clock()) : undefined;
      // A 200 we cannot read may still have rotated the refresh token.
      return parsed === undefined
        ? { ok: false, failure: { kind: 'unavailable', timeout: false, status, maybeProcessed: true } }
        : { ok: true, tokens: parsed };
    }
    if (status === 429) {
      return { ok: false, failure: { kind: 'throttled', retryAfterS: retryAfterSeconds(headers['retry-after'], options.clock()) } };
    }
    if (status === 400 || status === 401 || status === 403)
      return { ok: false, failure: { kind: 'rejected', status, error: upstreamText(errorName(payload), scrub) } };
    return { ok: false, failure: { kind: 'unavailable', timeout: false, status, maybeProcessed: false } };
  }

  return {
    login: () => authCall('login', { username: options.username, password: options.password }),
    refresh: (refreshToken) => authCall('refresh', { refresh_token: refreshToken }),
    async logout(accessToken) {
      const signal = AbortSignal.timeout(options.timeoutMs);
      try {
        const response = await timed('logout', async () => {
          const reply = await authPool.request({
            path: '/auth/logout',
            method: 'POST',
            headers: { authorization: `Bearer ${accessToken}` },
            signal,
          });
          // Only the status counts; the body is read (at most the cap) so the connection can be reused.
          await readCapped(reply.body, reply.headers['content-length']);
          return reply;
        });
        // 401: the token was already revoked, which is what logout is for.
        if (response.statusCode >= 300 && response.statusCode !== 401) {
          throw new AppError('upstream_error', 'Starship did not confirm the logout.', {
            logFields: { upstream: 'starship', upstreamStatus: response.statusCode },
          });
        }
      } catch (error) {
        throw transportError('starship', error, signal.aborted);
      }
    },
    async forward({ method, target, headers, body, accessToken, cancel }) {
      // STARSHIP_TIMEOUT_MS bounds everything up to the response headers, the wait for a free
      // connection included; after that the stream is bounded by undici's idle bodyTimeout.
      // undici sees only later cancellations: a caller that left while its body was read is gone already.
      if (cancel.cancelled) throw transportError('starship', cancel.reason ?? new CallerGone());
      const timer = setTimeout(() => cancel.abort(new HeadersDeadline()), options.timeoutMs);
      try {
        return await timed('proxy', () =>
          proxyPool.request({
            path: target,
            method: method as Dispatcher.HttpMethod,
            headers: { ...headers, authorization: `Bearer ${accessToken}` },
            body,
            signal: cancel,
          }),
        );
      } catch (error) {
        if (cancel.reason instanceof HeadersDeadline) {
          throw new AppError('upstream_timeout', 'starship did not answer in time.', { logFields: { upstream: 'starship' }, cause: error });
        }
        throw transportError('starship', error);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      // Called once the listeners have drained: whatever is still open upstream has no caller left.
      await Promise.all([proxyPool.destroy(), authPool.destroy()]);
    },
  };
}

class HeadersDeadline extends Error {
  override name = 'TimeoutError';
}

class CallerGone extends Error {
  override name = 'AbortError';
}

/** Failures that happen before a request leaves: Starship cannot have acted on it. */
const notSentCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
function neverSent(error: unknown): boolean {
  return notSentCodes.has((error as { code?: string }).code ?? '');
}

function toTokenSet(fields: z.output<typeof tokenFields>, now: number): TokenSet | undefined {
  const accessExpiresAt = Date.parse(fields.access_expires_at);
  const refreshExpiresAt = Date.parse(fields.refresh_expires_at);
  if (!Number.isFinite(accessExpiresAt) || !Number.isFinite(refreshExpiresAt)) return undefined;
  return {
    accessToken: fields.access_token,
    refreshToken: fields.refresh_token,
    accessExpiresAt,
    refreshExpiresAt,
    obtainedAt: now,
    clientId: String(fields.client_id),
  };
}

function errorName(payload: unknown): string | undefined {
  const parsed = errorReply.safeParse(payload);
  if (!parsed.success) return undefined;
  const { error } = parsed.data;
  return typeof error === 'string' ? error : error?.name;
}
