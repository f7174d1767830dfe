import { Pool } from 'undici';
import { z } from 'zod';
import { systemClock, type Clock } from '../../clock.js';
import { AppError } from '../../errors.js';
import { noMetrics, type UpstreamMetrics } from '../../observability/metrics.js';
import { noScrub, type Scrub } from '../../observability/secret-scrubber.js';
import {
  Cancellation,
  outcomeOf,
  parseJson,
  readCapped,
  replyLimitBytes,
  retryAfterSeconds,
  transportError,
  upstreamText,
} from '../upstream-call.js';

/** Benji's numeric connect modes (there is no 2). */
export const benjiModeNumbers = { connect: 1, transfer: 3, redeem: 4 } as const;

export interface ConnectTokenRequest {
  mode: 1 | 3 | 4;
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
  close(): Promise<void>;
}

export interface BenjiClientOptions {
  baseUrl: string;
  apiKey: string;
  partnershipId: string;
  timeoutMs: number;
  metrics?: UpstreamMetrics;
  clock?: Clock;
  /** Removes configured secrets from text Benji sent, before it is logged. */
  scrub?: Scrub;
}

const successBody = z.object({
  data: z.object({
    token: z.string().min(1),
    connect_url: z.string().nullish(),
  }),
});

/** Benji names its error under `error` on some endpoints and `code` on others. */
const errorBody = z.object({ error: z.string().optional(), code: z.string().optional() }).loose();

export function createBenjiClient(options: BenjiClientOptions): BenjiClient {
  const base = new URL(options.baseUrl);
  // The pool's timeouts stop a stalled connection; the per-call deadline below bounds the whole call.
  const pool = new Pool(base.origin, {
    connections: 32,
    keepAliveTimeout: 30_000,
    connect: { timeout: options.timeoutMs },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  const connectPath = `${base.pathname.replace(/\/+$/, '')}/auth/connect`;
  const clock = options.clock ?? systemClock;
  const scrub = options.scrub ?? noScrub;
  const oversized = `reply over ${replyLimitBytes} bytes`;

  return {
    async createConnectToken(request, { requestId }) {
      const body = {
        partnership_id: options.partnershipId,
        mode: request.mode,
        ...(request.displayName !== undefined && { display_name: request.displayName }),
        ...(request.userExternalId !== undefined && { user_external_id: request.userExternalId }),
        ...(request.transfer !== undefined && {
          custom_attributes: {
            actions: [{ mode: benjiModeNumbers.transfer, amount: request.transfer.amount, allows_editing: request.transfer.allowsEditing }],
          },
        }),
      };
      const startedAt = performance.now();
      const metrics = options.metrics ?? noMetrics;
      // BENJI_TIMEOUT_MS bounds the whole call, the wait for one of the pool's connections included:
      // the pool's own timeouts start only once a request is on a connection.
      const deadline = new Cancellation();
      const timer = setTimeout(() => deadline.abort(), options.timeoutMs);
      const response = await (async () => {
        const {
          statusCode,
          headers,
          body: reply,
        } = await pool.request({
          path: connectPath,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            'x-api-key': options.apiKey,
            'x-request-id': requestId,
          },
          body: JSON.stringify(body),
          signal: deadline,
        });
        const text = await readCapped(reply, headers['content-length']);
        return { statusCode, headers, payload: text === undefined ? undefined : parseJson(text), tooLarge: text === undefined };
      })()
        .catch((error: unknown) => {
          const failure = transportError('benji', error, deadline.cancelled);
          metrics.observe('benji', 'connect', outcomeOf(failure), (performance.now() - startedAt) / 1000);
          throw failure;
        })
        .finally(() => clearTimeout(timer));
      metrics.observe('benji', 'connect', String(response.statusCode), (performance.now() - startedAt) / 1000);
      const { payload, tooLarge } = response;

      // An error's status says what happened; its body is only read for the log, so one over the cap
      // costs the error id, not the meaning.
      if (response.statusCode !== 200) {
        const parsedError = errorBody.safeParse(payload);
        const benjiError = parsedError.success ? upstreamText(parsedError.data.error ?? parsedError.data.code, scrub) : undefined;
        const logFields = { upstream: 'benji', upstreamStatus: response.statusCode, benjiError, ...(tooLarge && { reason: oversized }) };
        if (response.statusCode === 429) {
          // At least a second: a 0 (or a date already past) would tell our callers to retry at once.
          const retryAfterS = Math.max(1, retryAfterSeconds(response.headers['retry-after'], clock()) ?? 60);
          throw new AppError('upstream_throttled', 'Benji is throttling requests; try again later.', { retryAfterS, logFields });
        }
        const detail =
          response.statusCode === 401 || response.statusCode === 403
            ? 'Benji rejected the broker’s credentials.'
            : 'Benji could not issue a token.';
        throw new AppError('upstream_error', detail, { logFields });
      }

      const parsed = successBody.safeParse(payload);
      if (!parsed.success) {
        throw new AppError('upstream_error', 'Benji sent a reply the broker does not understand.', {
          logFields: { upstream: 'benji', upstreamStatus: response.statusCode, reason: tooLarge ? oversized : 'unexpected reply shape' },
        });
      }
      return { token: parsed.data.data.token, connectUrl: parsed.data.data.connect_url ?? '' };
    },

    async close() {
      // Called once the listeners have drained: whatever is still open upstream has no caller left.
      await pool.destroy();
    },
  };
}
