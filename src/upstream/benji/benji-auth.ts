import type { Pool } from 'undici';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import type { Scrub } from '../../observability/secret-scrubber.js';
import { parseJson, retryAfterSeconds, upstreamText, type Upstream } from '../upstream-http.js';

/** A linked user's Benji tokens, as Benji's auth service issued them (times in epoch ms). */
export interface BenjiUserTokens {
  benjiUserId: string;
  merchantId: string;
  accessToken: string;
  refreshToken: string;
  accessExpiresAt: number;
}

/**
 * An exchange or refresh either gives tokens or is refused for the user's token (`rejected`: the
 * exchange token is invalid or expired, the refresh token or session is gone). Everything else
 * (Benji down, slow, refusing the partner key, an unreadable reply) rejects with an AppError.
 */
export type BenjiAuthResult = { ok: true; tokens: BenjiUserTokens } | { ok: false; rejected: string };

/** Benji's auth service (`authservice[-staging].withbenji.com`), with the partner key. */
export interface BenjiAuth {
  exchange(exchangeToken: string): Promise<BenjiAuthResult>;
  refresh(tokens: { refreshToken: string; accessToken: string }): Promise<BenjiAuthResult>;
}

export interface BenjiAuthOptions {
  upstream: Upstream;
  pool: Pool;
  /** The auth service's base URL's path ('' when it is the origin). */
  basePath: string;
  apiKey: string;
  clock: () => number;
  scrub: Scrub;
}

/** The error ids that refuse the user's token, not the partner: anything else is not the user's doing. */
const userTokenErrors = {
  exchange: new Set(['invalid_exchange_token', 'expired_exchange_token']),
  refresh: new Set(['invalid_token', 'unauthorized_request', 'expired_token']),
};

const id = z.union([z.string().min(1).max(255), z.number().int()]).transform(String);
const tokenReply = z.object({
  data: z.object({
    user_id: id,
    merchant_id: id.nullish(),
    token_data: z.object({
      access_token: z.string().min(1).max(8192),
      refresh_token: z.string().min(1).max(8192),
      access_token_expires_at: z.string(),
    }),
  }),
});
/** Benji names its error under `error` on some endpoints and `code` on others. */
const errorReply = z.object({ error: z.string().optional(), code: z.string().optional() }).loose();

export function createBenjiAuth({ upstream, pool, basePath, apiKey, clock, scrub }: BenjiAuthOptions): BenjiAuth {
  const base = basePath.replace(/\/+$/, '');

  async function call(operation: 'exchange' | 'refresh', method: 'POST' | 'GET', body: unknown): Promise<BenjiAuthResult> {
    const reply = await upstream.exchange(pool, operation, {
      method,
      // Benji documents the refresh as a GET with a JSON body; undici sends it.
      path: `${base}/access/token/${operation}`,
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': apiKey },
      body: JSON.stringify(body),
    });
    const payload = reply.text === undefined ? undefined : parseJson(reply.text);
    if (reply.statusCode === 200) {
      const parsed = tokenReply.safeParse(payload);
      const tokens = parsed.success ? toTokens(parsed.data.data) : undefined;
      if (tokens === undefined) {
        throw new AppError('upstream_error', 'Benji sent a reply the broker does not understand.', {
          logFields: { upstream: 'benji', operation, upstreamStatus: 200, reason: 'unexpected reply shape' },
        });
      }
      return { ok: true, tokens };
    }
    const parsedError = errorReply.safeParse(payload);
    const benjiError = parsedError.success ? (parsedError.data.error ?? parsedError.data.code) : undefined;
    if ((reply.statusCode === 400 || reply.statusCode === 401) && benjiError !== undefined && userTokenErrors[operation].has(benjiError)) {
      return { ok: false, rejected: benjiError };
    }
    const logFields = { upstream: 'benji', operation, upstreamStatus: reply.statusCode, benjiError: upstreamText(benjiError, scrub) };
    if (reply.statusCode === 429) {
      const retryAfterS = Math.max(1, retryAfterSeconds(reply.headers['retry-after'], clock()) ?? 60);
      throw new AppError('upstream_throttled', 'Benji is throttling requests; try again later.', { retryAfterS, logFields });
    }
    const detail =
      reply.statusCode === 401 || reply.statusCode === 403 ? 'Benji rejected the broker’s credentials.' : 'Benji could not answer.';
    throw new AppError('upstream_error', detail, { logFields });
  }

  return {
    exchange: (exchangeToken) => call('exchange', 'POST', { exchange_token: exchangeToken }),
    refresh: ({ refreshToken, accessToken }) => call('refresh', 'GET', { refresh_token: refreshToken, access_token: accessToken }),
  };
}

/** `access_token_expires_at` is an HTTP date (`Tue, 22 Oct 2024 21:57:02 GMT`); ISO 8601 is read too. */
function toTokens(data: z.output<typeof tokenReply>['data']): BenjiUserTokens | undefined {
  const expiry = data.token_data.access_token_expires_at;
  // Date.parse reads some bare numbers as years: a date has a month name or an ISO `T` in it.
  const accessExpiresAt = /[a-z]/i.test(expiry) ? Date.parse(expiry) : Number.NaN;
  if (!Number.isFinite(accessExpiresAt)) return undefined;
  return {
    benjiUserId: data.user_id,
    merchantId: data.merchant_id ?? '',
    accessToken: data.token_data.access_token,
    refreshToken: data.token_data.refresh_token,
    accessExpiresAt,
  };
}
