import type { Pool } from 'undici';
import { z } from 'zod';
import type { Clock } from '../../clock.js';
import { AppError } from '../../errors.js';
import type { Scrub } from '../../observability/secret-scrubber.js';
import { parseJson, replyLimitBytes, retryAfterSeconds, upstreamText, type Upstream } from '../upstream-http.js';
import { benjiModeNumbers, type BenjiModeNumber } from './benji-modes.js';

export interface ConnectTokenRequest {
  mode: BenjiModeNumber;
  displayName?: string | undefined;
  userExternalId?: string | undefined;
  transfer?: { amount: number; allowsEditing: boolean } | undefined;
}

export interface ConnectToken {
  token: string;
  /** Empty when hosted connect is not enabled for the account. */
  connectUrl: string;
}

export interface BenjiClient {
  createConnectToken(request: ConnectTokenRequest, context: { requestId: string }): Promise<ConnectToken>;
}

export interface BenjiClientOptions {
  /** Benji's API over its pool (upstream-http.ts): deadline, timing and transport errors. */
  upstream: Upstream;
  pool: Pool;
  /** The base URL's path, when Benji is mounted below the origin ('' otherwise). */
  basePath: string;
  apiKey: string;
  partnershipId: string;
  clock: Clock;
  /** Removes configured secrets from text Benji sent, before it is logged. */
  scrub: Scrub;
}

const successBody = z.object({
  data: z.object({
    token: z.string().min(1),
    connect_url: z.string().nullish(),
  }),
});

/** Benji names its error under `error` on some endpoints and `code` on others. */
const errorBody = z.object({ error: z.string().optional(), code: z.string().optional() }).loose();

export function createBenjiClient({ upstream, pool, basePath, apiKey, partnershipId, clock, scrub }: BenjiClientOptions): BenjiClient {
  const connectPath = `${basePath.replace(/\/+$/, '')}/auth/connect`;
  const oversized = `reply over ${replyLimitBytes} bytes`;

  return {
    async createConnectToken(request, { requestId }) {
      const body = {
        partnership_id: partnershipId,
        mode: request.mode,
        ...(request.displayName !== undefined && { display_name: request.displayName }),
        ...(request.userExternalId !== undefined && { user_external_id: request.userExternalId }),
        ...(request.transfer !== undefined && {
          custom_attributes: {
            actions: [{ mode: benjiModeNumbers.transfer, amount: request.transfer.amount, allows_editing: request.transfer.allowsEditing }],
          },
        }),
      };
      const reply = await upstream.exchange(pool, 'connect', {
        method: 'POST',
        path: connectPath,
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': apiKey, 'x-request-id': requestId },
        body: JSON.stringify(body),
      });
      const payload = reply.text === undefined ? undefined : parseJson(reply.text);
      const tooLarge = reply.text === undefined;

      // An error's status says what happened; its body is only read for the log, so one over the cap
      // costs the error id, not the meaning.
      if (reply.statusCode !== 200) {
        const parsedError = errorBody.safeParse(payload);
        const benjiError = parsedError.success ? upstreamText(parsedError.data.error ?? parsedError.data.code, scrub) : undefined;
        const logFields = { upstream: 'benji', upstreamStatus: reply.statusCode, benjiError, ...(tooLarge && { reason: oversized }) };
        if (reply.statusCode === 429) {
          // At least a second: a 0 (or a date already past) would tell our callers to retry at once.
          const retryAfterS = Math.max(1, retryAfterSeconds(reply.headers['retry-after'], clock()) ?? 60);
          throw new AppError('upstream_throttled', 'Benji is throttling requests; try again later.', { retryAfterS, logFields });
        }
        const detail =
          reply.statusCode === 401 || reply.statusCode === 403
            ? 'Benji rejected the broker’s credentials.'
            : 'Benji could not issue a token.';
        throw new AppError('upstream_error', detail, { logFields });
      }

      const parsed = successBody.safeParse(payload);
      if (!parsed.success) {
        throw new AppError('upstream_error', 'Benji sent a reply the broker does not understand.', {
          logFields: { upstream: 'benji', upstreamStatus: reply.statusCode, reason: tooLarge ? oversized : 'unexpected reply shape' },
        });
      }
      return { token: parsed.data.data.token, connectUrl: parsed.data.data.connect_url ?? '' };
    },
  };
}
