import type { Pool } from 'undici';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import type { Scrub } from '../../observability/secret-scrubber.js';
import { parseJson, retryAfterSeconds, upstreamText, type Upstream } from '../upstream-http.js';

/** A login's or refresh's tokens, as Starship issued them (times in epoch ms). */
export interface StarshipTokens {
  accessToken: string;
  refreshToken: string;
  accessExpiresAt: number;
  refreshExpiresAt: number;
  clientId: string;
}

/** Why a login or refresh did not produce tokens; the session decides what each means. */
export type AuthFailure =
  | { kind: 'rejected'; status: number; error: string | undefined }
  | { kind: 'throttled'; retryAfterS: number | undefined }
  /** maybeProcessed: the request may have reached Starship (no answer, or an unreadable one). */
  | { kind: 'unavailable'; timeout: boolean; status: number | undefined; maybeProcessed: boolean };

/** Auth results are values: a refused login is an answer, not an exception. */
export type AuthResult = { ok: true; tokens: StarshipTokens } | { ok: false; failure: AuthFailure };

/** Starship's session endpoints, for the session credential (credentials/starship-session.ts). */
export interface StarshipAuth {
  login(): Promise<AuthResult>;
  refresh(refreshToken: string): Promise<AuthResult>;
  /** Revokes every token of the account, on every replica. Only for credential rotation. */
  logout(accessToken: string): Promise<void>;
}

export interface StarshipAuthOptions {
  upstream: Upstream;
  /** A pool of the session's own, so that a flood of slow proxied calls never queues a refresh. */
  pool: Pool;
  username: string;
  password: string;
  clock: () => number;
  /** Removes configured secrets from text Starship sent, before it is logged. */
  scrub: Scrub;
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

export function createStarshipAuth({ upstream, pool, username, password, clock, scrub }: StarshipAuthOptions): StarshipAuth {
  const post = (operation: string, headers: Record<string, string>, body?: unknown) =>
    upstream.exchange(pool, operation, {
      method: 'POST',
      path: `/auth/${operation}`,
      headers: { accept: 'application/json', ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  async function authCall(operation: 'login' | 'refresh', body: unknown): Promise<AuthResult> {
    let reply;
    try {
      reply = await post(operation, {}, body);
    } catch (error) {
      const failure = error as AppError;
      return {
        ok: false,
        failure: {
          kind: 'unavailable',
          timeout: failure.code === 'upstream_timeout',
          status: undefined,
          maybeProcessed: !neverSent(failure.cause),
        },
      };
    }

    // A reply over the cap reads as no payload: a 200 then counts as unreadable, an error keeps its
    // status and loses only its error name.
    const { statusCode: status, headers, text } = reply;
    const payload = text === undefined ? undefined : parseJson(text);
    if (status === 200 || status === 201) {
      const tokens = tokenReply.safeParse(payload);
      const parsed = tokens.success ? toTokens(tokens.data) : undefined;
      // A 200 we cannot read may still have rotated the refresh token.
      return parsed === undefined
        ? { ok: false, failure: { kind: 'unavailable', timeout: false, status, maybeProcessed: true } }
        : { ok: true, tokens: parsed };
    }
    if (status === 429)
      return { ok: false, failure: { kind: 'throttled', retryAfterS: retryAfterSeconds(headers['retry-after'], clock()) } };
    if (status === 400 || status === 401 || status === 403)
      return { ok: false, failure: { kind: 'rejected', status, error: upstreamText(errorName(payload), scrub) } };
    return { ok: false, failure: { kind: 'unavailable', timeout: false, status, maybeProcessed: false } };
  }

  return {
    login: () => authCall('login', { username, password }),
    refresh: (refreshToken) => authCall('refresh', { refresh_token: refreshToken }),
    async logout(accessToken) {
      const reply = await post('logout', { authorization: `Bearer ${accessToken}` });
      // 401: the token was already revoked, which is what logout is for.
      if (reply.statusCode >= 300 && reply.statusCode !== 401) {
        throw new AppError('upstream_error', 'Starship did not confirm the logout.', {
          logFields: { upstream: 'starship', upstreamStatus: reply.statusCode },
        });
      }
    },
  };
}

/** Failures that happen before a request leaves: Starship cannot have acted on it. */
const notSentCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
function neverSent(error: unknown): boolean {
  return notSentCodes.has((error as { code?: string } | undefined)?.code ?? '');
}

function toTokens(fields: z.output<typeof tokenFields>): StarshipTokens | undefined {
  const accessExpiresAt = Date.parse(fields.access_expires_at);
  const refreshExpiresAt = Date.parse(fields.refresh_expires_at);
  if (!Number.isFinite(accessExpiresAt) || !Number.isFinite(refreshExpiresAt)) return undefined;
  return {
    accessToken: fields.access_token,
    refreshToken: fields.refresh_token,
    accessExpiresAt,
    refreshExpiresAt,
    clientId: String(fields.client_id),
  };
}

function errorName(payload: unknown): string | undefined {
  const parsed = errorReply.safeParse(payload);
  if (!parsed.success) return undefined;
  const { error } = parsed.data;
  return typeof error === 'string' ? error : error?.name;
}
