import { z } from 'zod';
import type { Clock } from '../clock.js';
import { AppError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { LinkEvent } from '../observability/metrics.js';
import { noTracing, type Tracing } from '../observability/tracing.js';
import type { BenjiAuth, BenjiUserTokens } from '../upstream/benji/benji-auth.js';
import type { CallHeaders, Credential } from './credential.js';
import { createRenewalLock } from './renewal-lock.js';
import { createSingleFlight } from './single-flight.js';
import { parseStored, type SharedStore } from './stores/shared-store.js';
import { obtainedRecently, refreshDueAt, unexpired } from './token-set.js';
import { userHash } from '../user-hash.js';

/*
 * The lifecycle of a linked user's Benji tokens. Rules, and why:
 *
 * 1. The store is the truth. Every user-token call reads the link from it and keeps no copy, so a
 *    link removed or replaced on one replica is gone from all of them at their next call. A store
 *    that cannot be read is `503 store_unavailable` at once (the Redis client fails fast): nothing
 *    falls back to memory, where a removed link could live on.
 * 2. Every change to a link (stored by an exchange, refreshed, removed) happens under the user's lock
 *    (renewal-lock.ts), so a refresh in flight can never write back a link that was removed or
 *    replaced meanwhile. An exchange takes the lock before it spends the exchange token, so a lock it
 *    cannot have costs the user a retry, not the token.
 * 3. Refresh once the access token is within BENJI_USER_REFRESH_BEFORE_S of expiry (at most half its
 *    lifetime). One refresh per user in this process (a keyed single-flight) and across replicas (the
 *    lock). Under the lock the link is read again: if another replica refreshed it, that result is
 *    used. The refresh sends the stored refresh token and writes the new pair before the lock is
 *    released, so a refresh token is never sent twice. Each write restarts BENJI_LINK_TTL_DAYS.
 * 4. A refresh that fails because Benji is down, slow or throttling keeps the access token in use
 *    while it is unexpired; the next call tries again. Once it has expired, the call gets the failure.
 * 5. A refresh Benji refuses for the user's tokens (invalid_token, unauthorized_request,
 *    expired_token) removes the link: the call answers `404 not_linked` (the user must connect again)
 *    and a warn log names the user by hash. A refusal of the partner key is not the user's doing and
 *    removes nothing.
 * 6. Benji answering 401 to a user-token call renews once and replays once, unless the link already
 *    holds a newer token (replay with it) or the refused token is younger than max(30 s, 1 % of its
 *    lifetime): a fresh token refused says more about the endpoint than the token, and renewing on it
 *    would rotate the user's tokens on every call.
 * 7. Names: `benji:link:<sha256 hex of the user id>` and `benji:lock:<same>`; values are sealed for
 *    their key name (stores/). No user id is stored, logged or counted in clear.
 */

/** A link as the broker answers it: never a token. */
export interface BenjiLink {
  benjiUserId: string;
  merchantId: string;
  /** When the user linked (the exchange), epoch ms. */
  linkedAt: number;
  accessExpiresAt: number;
}

export interface BenjiLinks {
  /** Exchanges the token the Benji SDK handed the frontend and stores the link, replacing any. */
  exchange(userId: string, exchangeToken: string): Promise<BenjiLink>;
  /** The user's link, or undefined. */
  get(userId: string): Promise<BenjiLink | undefined>;
  /** Removes the link; no replica sends the user's token after this resolves. Idempotent. */
  remove(userId: string): Promise<void>;
  /** The credential of calls made as this user: their access token in `x-api-key`. */
  credentialFor(userId: string): Credential;
}

export interface BenjiLinksOptions {
  auth: BenjiAuth;
  store: SharedStore;
  clock: Clock;
  logger: Logger;
  refreshBeforeS: number;
  ttlDays: number;
  /** Upper bound of one call to Benji's auth service; sizes the lock. */
  upstreamTimeoutMs: number;
  onEvent?: (event: LinkEvent) => void;
  lockPollMs?: number;
  /** Each refresh and lock wait is a span, with its outcome (never the user). */
  tracing?: Tracing;
}

const storedLinkSchema = z.object({
  benjiUserId: z.string(),
  merchantId: z.string(),
  accessToken: z.string(),
  refreshToken: z.string(),
  accessExpiresAt: z.number(),
  obtainedAt: z.number(),
  linkedAt: z.number(),
});
type StoredLink = z.output<typeof storedLinkSchema>;

/** A token younger than this, max(30 s, 1 % of its lifetime), is not renewed because of a 401. */
const minRejectAgeMs = 30_000;
const dayMs = 86_400_000;
/** How long a call waits for the store's first connection (Redis connect timeout); at once after that. */
const firstConnectionWaitMs = 2_000;

export function createBenjiLinks(options: BenjiLinksOptions): BenjiLinks {
  const { auth, store, clock, logger, refreshBeforeS } = options;
  const onEvent = options.onEvent ?? (() => undefined);
  const tracing = options.tracing ?? noTracing;
  const ttlMs = options.ttlDays * dayMs;
  // A holder makes at most one call to Benji's auth service, then writes.
  const lockTtlMs = options.upstreamTimeoutMs + 5_000;
  const lock = createRenewalLock({
    store,
    ttlMs: lockTtlMs,
    waitMs: lockTtlMs + 1_000,
    pollMs: options.lockPollMs ?? 50,
    tracing,
    guards: 'benji link',
  });
  const flights = createSingleFlight();
  const names = (user: string) => ({ link: `benji:link:${user}`, lock: `benji:lock:${user}` });

  async function read(user: string): Promise<StoredLink | undefined> {
    try {
      // A replica still making its first connection is not one whose store is down.
      await store.firstConnection(firstConnectionWaitMs);
      return parseStored(storedLinkSchema, await store.getSecret(names(user).link));
    } catch (error) {
      throw storeUnavailable(error);
    }
  }

  async function write(user: string, link: StoredLink): Promise<void> {
    try {
      await store.setSecret(names(user).link, JSON.stringify(link), clock() + ttlMs);
    } catch (error) {
      throw storeUnavailable(error);
    }
  }

  /** Runs `work` holding the user's lock (rule 2); `done` (while waiting) says the work is no longer needed. */
  async function locked(user: string, work: () => Promise<void>, done?: () => Promise<boolean>): Promise<void> {
    await store.firstConnection(firstConnectionWaitMs);
    const wait = await lock.acquire(names(user).lock, done).catch((error: unknown) => {
      throw storeUnavailable(error);
    });
    if (wait.outcome === 'adopted') return;
    if (wait.outcome !== 'held') throw storeUnavailable(wait.outcome === 'timeout' ? 'lock wait ran out' : wait.error);
    try {
      await work();
    } finally {
      await wait.release().catch(() => undefined);
    }
  }

  const stored = (tokens: BenjiUserTokens, linkedAt: number): StoredLink => ({ ...tokens, obtainedAt: clock(), linkedAt });
  const answer = ({ benjiUserId, merchantId, linkedAt, accessExpiresAt }: StoredLink): BenjiLink => ({
    benjiUserId,
    merchantId,
    linkedAt,
    accessExpiresAt,
  });

  /**
   * Refreshes the user's link when `stale` still says it needs it once the lock is held (rules 3–5).
   * Rejects with `not_linked` when Benji refused the refresh, with an AppError when Benji or the
   * store failed.
   */
  function refresh(user: string, stale: (link: StoredLink) => boolean): Promise<void> {
    return flights.run(user, () =>
      locked(
        user,
        async () => {
          const link = await read(user);
          if (link === undefined || !stale(link)) return;
          const result = await tracing.inSpan('benji link refresh', { 'broker.operation': 'refresh' }, async (span) => {
            try {
              const refreshed = await auth.refresh(link);
              span.set({ 'broker.outcome': refreshed.ok ? 'success' : 'refused' });
              if (!refreshed.ok) span.fail('refused');
              return refreshed;
            } catch (error) {
              span.set({ 'broker.outcome': 'failed' });
              onEvent('refresh_failed');
              throw error;
            }
          });
          if (!result.ok) {
            await store.delete(names(user).link).catch((error: unknown) => {
              throw storeUnavailable(error);
            });
            onEvent('refresh_refused');
            logger.warn({ userHash: user, benjiError: result.rejected }, 'Benji refused to refresh a linked user’s tokens; link removed');
            throw notLinked('Benji no longer accepts this user’s link; the user must connect Benji again.');
          }
          await write(user, stored(result.tokens, link.linkedAt));
          onEvent('refreshed');
        },
        async () => {
          const link = await read(user);
          return link === undefined || !stale(link);
        },
      ),
    );
  }

  const due = (link: StoredLink) => clock() >= refreshDueAt(link, refreshBeforeS);

  return {
    async exchange(userId, exchangeToken) {
      const user = userHash(userId);
      let link: StoredLink | undefined;
      await locked(user, async () => {
        const result = await auth.exchange(exchangeToken);
        if (!result.ok) throw new AppError('invalid_exchange_token', 'The exchange token is invalid or has expired; connect Benji again.');
        link = stored(result.tokens, clock());
        await write(user, link);
      });
      // `locked` ran the work (an exchange has no `done`), so the link is set.
      onEvent('linked');
      return answer(link as StoredLink);
    },

    async get(userId) {
      const link = await read(userHash(userId));
      return link === undefined ? undefined : answer(link);
    },

    async remove(userId) {
      const user = userHash(userId);
      await locked(user, async () => {
        try {
          await store.delete(names(user).link);
        } catch (error) {
          throw storeUnavailable(error);
        }
      });
      onEvent('removed');
    },

    credentialFor(userId) {
      const user = userHash(userId);
      const headers = (link: StoredLink): CallHeaders => ({ 'x-api-key': link.accessToken });

      return {
        async headersFor() {
          const link = await read(user);
          if (link === undefined) throw notLinked('This user has not linked a Benji account.');
          if (!due(link)) return headers(link);
          try {
            await refresh(user, due);
          } catch (error) {
            // Rule 4: a token that still works is used while Benji cannot refresh it.
            const notLinkedAnymore = error instanceof AppError && error.code === 'not_linked';
            if (notLinkedAnymore || !unexpired(link, clock())) throw error;
            return headers(link);
          }
          const fresh = await read(user);
          if (fresh === undefined) throw notLinked('This user has not linked a Benji account.');
          return headers(fresh);
        },

        async rejected(used) {
          const refused = used['x-api-key'];
          try {
            const link = await read(user);
            // Gone or renewed elsewhere: ask again (the replay answers not_linked, or uses the new token).
            if (link === undefined || link.accessToken !== refused) return true;
            if (obtainedRecently(link, clock(), minRejectAgeMs)) return false;
            await refresh(user, (current) => current.accessToken === refused);
            return true;
          } catch (error) {
            // A refused refresh removed the link: the replay answers not_linked. Anything else: pass the 401 on.
            return error instanceof AppError && error.code === 'not_linked';
          }
        },
      };
    },
  };
}

function notLinked(detail: string): AppError {
  return new AppError('not_linked', detail);
}

function storeUnavailable(cause: unknown): AppError {
  if (cause instanceof AppError) return cause;
  return new AppError('store_unavailable', 'Linked accounts cannot be read or changed right now; try again shortly.', {
    retryAfterS: 1,
    logFields: { reason: typeof cause === 'string' ? cause : 'store unreachable' },
    cause,
  });
}
