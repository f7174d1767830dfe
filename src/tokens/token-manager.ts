import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../clock.js';
import { AppError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { noMetrics, type TokenMetrics } from '../observability/metrics.js';
import type { AuthFailure, AuthResult } from '../upstream/starship/starship-client.js';
import type { Cooldown, TokenSet } from './token-set.js';
import type { TokenStore } from './token-store.js';

/*
 * The Starship session lifecycle, in one place. Rules, and why:
 *
 * 1. Steady state touches nothing: the current set lives in memory and a proxied call reads it from
 *    there, with no Redis round trip.
 * 2. Renewal (refresh, else login) starts once the access token enters its refresh window
 *    (STARSHIP_REFRESH_BEFORE_S before expiry, at most half its lifetime). Callers keep using the
 *    current token while it runs; only a caller with no valid token waits for it.
 * 3. One renewal per process at a time (`inFlight`, a single-flight promise), and one across all
 *    replicas (the store's lock: SET NX PX with an owner, compare-and-delete release, bounded wait).
 * 4. After taking the lock, re-read the store: another replica may have rotated already. Whoever
 *    loses the race adopts the winner's tokens instead of refreshing. A refresh always uses the
 *    newest refresh token known, and the new pair is written to the store before the lock is
 *    released, so a rotated refresh token is never sent twice.
 * 5. Refresh rejected (expired, reused, revoked) → one full login. A refresh that may have reached
 *    Starship without a readable answer (timeout, cut connection) may have rotated the pair, so its
 *    refresh token is not sent again either. Either way the dead refresh token is blanked in the store
 *    too, so no other replica sends it. Network errors, 5xx and timeouts keep the access token and
 *    retry later, with exponential backoff and jitter.
 * 6. Login throttled (429) → a cooldown shared through the store, honouring Retry-After (60 s when
 *    absent, at most 15 min); login rejected for bad credentials → 60 s cooldown so retries cannot
 *    lock the account. While it lasts nobody calls login, and callers needing a token get 503.
 * 7. Store disconnected (Redis down) → carry on with what is in memory, renew in-process only, and
 *    write the current set back, under the lock, once the store is connected again. Store calls fail
 *    fast; no caller ever queues behind Redis. A store that is connected but answers with errors is
 *    not "down": renewal then fails and backs off rather than run without the shared lock. At start
 *    the first renewal waits (briefly) for the first connection, so a booting replica does not skip
 *    the shared lock and cooldown just because its connection is still being made.
 * 8. The store is the source of truth for which set is current: a stored set that differs from ours
 *    is adopted, unless ours is newer and not yet written (we renewed while Redis was away).
 */

export interface SessionAuth {
  login(): Promise<AuthResult>;
  refresh(refreshToken: string): Promise<AuthResult>;
  logout(accessToken: string): Promise<void>;
}

export interface TokenManagerOptions {
  auth: SessionAuth;
  store: TokenStore;
  clock: Clock;
  logger: Logger;
  refreshBeforeS: number;
  /** Upper bound of one upstream auth call; sizes the lock so it outlives a refresh plus a login. */
  upstreamTimeoutMs: number;
  /** For jitter; injectable so tests are deterministic. */
  random?: () => number;
  lockPollMs?: number;
  metrics?: TokenMetrics;
}

export type SessionState = 'none' | 'valid' | 'refreshing' | 'expired' | 'cooldown';

export interface SessionStatus {
  state: SessionState;
  accessExpiresAt: string | null;
  refreshExpiresAt: string | null;
  clientId: string | null;
  cooldownUntil: string | null;
}

/** What readiness and metrics read on every probe or scrape: memory only, no I/O. */
export interface SessionSnapshot {
  state: SessionState;
  accessExpiresAt: number | undefined;
  cooldownUntil: number | undefined;
  /**
   * No usable token and Starship login is cooling down: every call will fail until `cooldownUntil`.
   * (A transient failure's short backoff does not count: the next call retries.)
   */
  blocked: boolean;
}

export interface TokenManager {
  /** A usable access token, renewing first only when none is in hand. Throws AppError when it cannot. */
  getAccessToken(): Promise<string>;
  /** Starship refused this token (401): stop using it, so the next caller renews. */
  reportRejected(accessToken: string): void;
  /** A fresh login now (admin). With revokePrevious, logs the old session out first (credential rotation). */
  forceLogin(options: { revokePrevious: boolean }): Promise<void>;
  status(): Promise<SessionStatus>;
  snapshot(): SessionSnapshot;
  /** Tries to log in once at start; failure is logged, never thrown. */
  warmUp(): Promise<void>;
}

const maxBackoffMs = 30_000;
/** How long a first renewal waits for the store's first connection (Redis connect timeout). */
const firstConnectionWaitMs = 2_000;
const defaultCooldownS = 60;
const maxCooldownS = 15 * 60;

export function createTokenManager(options: TokenManagerOptions): TokenManager {
  const { auth, store, clock, logger } = options;
  const random = options.random ?? Math.random;
  const lockPollMs = options.lockPollMs ?? 50;
  const metrics = options.metrics ?? noMetrics;
  // A holder makes at most a refresh and a login, each bounded by the upstream timeout.
  const lockTtlMs = 2 * options.upstreamTimeoutMs + 5_000;
  const lockWaitMs = lockTtlMs + 5_000;
  const instance = randomUUID();
  let lockCount = 0;

  let current: TokenSet | undefined;
  let rejectedAccessToken: string | undefined;
  let inFlight: Promise<void> | undefined;
  let cooldown: Cooldown | undefined;
  let failures = 0;
  /** No refresh or login before this time (backoff after a failure, or a login cooldown). */
  let retryAt = 0;
  let lastFailure: AppError | undefined;
  let unsaved: TokenSet | undefined;
  let storeReachable = true;

  store.onReconnect(() => {
    storeReachable = true;
    if (current !== undefined && inFlight === undefined) renew(writeBack).catch(() => undefined);
  });

  // --- judging a set --------------------------------------------------------------------------

  /** Safety margin so a token does not expire between our check and Starship's. */
  const marginMs = (set: TokenSet) => Math.min(5_000, (set.accessExpiresAt - set.obtainedAt) / 10);

  function usable(set: TokenSet | undefined, now: number): set is TokenSet {
    return set !== undefined && set.accessToken !== rejectedAccessToken && set.accessExpiresAt - marginMs(set) > now;
  }

  function refreshDueAt(set: TokenSet): number {
    const lifetimeMs = set.accessExpiresAt - set.obtainedAt;
    return set.accessExpiresAt - Math.min(options.refreshBeforeS * 1000, lifetimeMs / 2);
  }

  const needsRenewal = (set: TokenSet | undefined, now: number) => !usable(set, now) || now >= refreshDueAt(set);

  /** An empty refresh token marks one Starship refused, or may already have rotated: only login renews. */
  const canRefresh = (set: TokenSet, now: number) => set.refreshToken !== '' && set.refreshExpiresAt - marginMs(set) > now;

  // --- the store, failing soft ----------------------------------------------------------------

  function storeFailed(action: string, error: unknown): void {
    metrics.storeError(action);
    if (storeReachable) logger.warn({ action, reason: (error as Error).message }, 'token store unreachable; using tokens in memory');
    storeReachable = false;
  }

  /** Takes the stored set when it differs from ours (another replica renewed). True if adopted. */
  async function adoptFromStore(): Promise<boolean> {
    let stored: TokenSet | undefined;
    try {
      stored = await store.read();
    } catch (error) {
      storeFailed('read', error);
      return false;
    }
    if (stored === undefined || (stored.accessToken === current?.accessToken && stored.refreshToken === current.refreshToken)) return false;
    // Ours renewed while the store was away and is not written yet: keep it unless the stored one is
    // later still (Starship's expiry times order sets issued by it).
    if (unsaved !== undefined && current !== undefined && stored.accessExpiresAt <= current.accessExpiresAt) return false;
    current = stored;
    unsaved = undefined;
    logger.debug({ accessExpiresAt: iso(stored.accessExpiresAt) }, 'starship tokens adopted from store');
    return true;
  }

  async function save(tokens: TokenSet): Promise<void> {
    try {
      await store.write(tokens);
      unsaved = undefined;
    } catch (error) {
      storeFailed('write', error);
      unsaved = tokens;
    }
  }

  /**
   * After an outage, under the lock: store the set we hold when the store lacks it (a restarted Redis
   * keeps nothing) or holds an older one we replaced meanwhile; adopt the stored one when it is later.
   */
  async function writeBack(): Promise<void> {
    await withLock({ adopt: false }, async () => {
      if (current === undefined || (await adoptFromStore())) return;
      const stored = await store.read().catch(() => undefined);
      if (stored !== undefined && stored.accessToken === current.accessToken && stored.refreshToken === current.refreshToken) return;
      await save(current);
      if (unsaved === undefined) logger.info('starship tokens written back to store');
    });
  }

  async function activeCooldown(now: number): Promise<Cooldown | undefined> {
    try {
      const shared = await store.readCooldown();
      if (shared !== undefined && (cooldown === undefined || shared.until > cooldown.until)) cooldown = shared;
    } catch (error) {
      storeFailed('read cooldown', error);
    }
    return cooldown !== undefined && cooldown.until > now ? cooldown : undefined;
  }

  async function startCooldown(next: Cooldown): Promise<void> {
    cooldown = next;
    try {
      await store.writeCooldown(next);
    } catch (error) {
      storeFailed('write cooldown', error);
    }
  }

  // --- the lock ---------------------------------------------------------------------------------

  /**
   * 'held': ours, release it. 'local': the store is disconnected, go on in-process only.
   * 'adopted' (only with adopt: true): while we waited, another replica stored tokens that need no
   * renewal, so there is nothing left to do.
   */
  async function lock(owner: string, { adopt }: { adopt: boolean }): Promise<'held' | 'local' | 'adopted'> {
    const startedAt = performance.now();
    const deadline = startedAt + lockWaitMs;
    const waited = (outcome: 'acquired' | 'adopted' | 'store_down') => metrics.lockWait((performance.now() - startedAt) / 1000, outcome);
    for (;;) {
      try {
        if (await store.acquireLock(owner, lockTtlMs)) {
          waited('acquired');
          return 'held';
        }
      } catch (error) {
        storeFailed('lock', error);
        if (store.connected()) {
          // Connected but failing (out of memory, read-only replica…): renewing without the shared
          // lock could send a refresh token twice, so fail this renewal and retry after a pause.
          throw block(clock() + 1_000, new AppError('upstream_error', 'The shared token store failed; retrying shortly.'));
        }
        waited('store_down');
        return 'local';
      }
      if (performance.now() > deadline) {
        throw new AppError('upstream_error', 'Starship token renewal did not finish in time.', {
          logFields: { reason: 'lock wait exceeded' },
        });
      }
      await sleep(lockPollMs);
      if (adopt && (await adoptFromStore()) && !needsRenewal(current, clock())) {
        waited('adopted');
        return 'adopted';
      }
    }
  }

  /** Runs `work` holding the lock (or in-process only while the store is disconnected). */
  async function withLock(options: { adopt: boolean }, work: () => Promise<void>): Promise<void> {
    const owner = `${instance}:${++lockCount}`;
    const state = await lock(owner, options);
    if (state === 'adopted') return;
    try {
      await work();
    } finally {
      if (state === 'held') await store.releaseLock(owner).catch((error: unknown) => storeFailed('unlock', error));
    }
  }

  // --- renewal ----------------------------------------------------------------------------------

  /** Single-flight: concurrent callers in this process share one renewal. */
  function renew(work: () => Promise<void> = renewOnce): Promise<void> {
    inFlight ??= work().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  async function renewOnce(): Promise<void> {
    // A booting replica waits for its first Redis connection rather than renew without the lock.
    await store.firstConnection(firstConnectionWaitMs);
    // Another replica may have renewed already: a read is cheaper than a lock.
    if ((await adoptFromStore()) && !needsRenewal(current, clock())) return;
    if (clock() < retryAt) throw blockedError();

    await withLock({ adopt: true }, async () => {
      // Re-read under the lock: the previous holder may have rotated just before we got it.
      if ((await adoptFromStore()) && !needsRenewal(current, clock())) return;
      await refreshOrLogin();
    });
  }

  async function refreshOrLogin(): Promise<void> {
    const set = current;
    if (set !== undefined && canRefresh(set, clock())) {
      const result = await auth.refresh(set.refreshToken);
      if (result.ok) return accept(result.tokens, 'refresh');
      const { failure } = result;
      const spent = failure.kind === 'rejected' || (failure.kind === 'unavailable' && failure.maybeProcessed);
      // Never send this refresh token again, here or on another replica: blank it in the store too.
      if (spent) await save((current = { ...set, refreshToken: '' }));
      if (failure.kind !== 'rejected') return failed(failure, 'refresh');
      metrics.renewal('refresh', 'rejected');
      logger.warn({ upstreamStatus: failure.status, upstreamError: failure.error }, 'starship refresh rejected; logging in');
    }
    await login();
  }

  async function login(): Promise<void> {
    const blocked = await activeCooldown(clock());
    if (blocked !== undefined) throw block(blocked.until, throttled(blocked));

    const result = await auth.login();
    if (result.ok) return accept(result.tokens, 'login');
    const { failure } = result;
    if (failure.kind === 'throttled') {
      metrics.renewal('login', 'throttled');
      const waitS = clampCooldownS(failure.retryAfterS);
      const next: Cooldown = { until: clock() + waitS * 1000, reason: 'throttled' };
      await startCooldown(next);
      logger.warn({ retryAfterS: waitS }, 'starship login throttled; cooling down');
      throw block(next.until, throttled(next));
    }
    if (failure.kind === 'rejected') {
      metrics.renewal('login', 'rejected');
      const next: Cooldown = { until: clock() + defaultCooldownS * 1000, reason: 'credentials_rejected' };
      await startCooldown(next);
      logger.error(
        { upstreamStatus: failure.status, upstreamError: failure.error },
        'starship login rejected: check STARSHIP_USERNAME and STARSHIP_PASSWORD',
      );
      throw block(
        next.until,
        new AppError('upstream_error', 'Starship rejected the broker’s credentials.', { logFields: { upstream: 'starship' } }),
      );
    }
    return failed(failure, 'login');
  }

  async function accept(tokens: TokenSet, kind: 'login' | 'refresh'): Promise<void> {
    metrics.renewal(kind, 'success');
    current = tokens;
    failures = 0;
    retryAt = 0;
    lastFailure = undefined;
    // Written before the lock is released: the next holder must see the rotated refresh token.
    await save(tokens);
    logger.info(
      { clientId: tokens.clientId, accessExpiresAt: iso(tokens.accessExpiresAt) },
      kind === 'login' ? 'starship login succeeded' : 'starship tokens refreshed',
    );
  }

  /** Transient failure (or a throttled refresh): keep the tokens, retry after a backoff with jitter. */
  function failed(failure: AuthFailure, during: 'refresh' | 'login'): never {
    failures += 1;
    const throttledS = failure.kind === 'throttled' ? clampCooldownS(failure.retryAfterS) : undefined;
    const backoffMs =
      throttledS !== undefined ? throttledS * 1000 : Math.min(1000 * 2 ** (failures - 1), maxBackoffMs) * (0.5 + random() / 2);
    const timeout = failure.kind === 'unavailable' && failure.timeout;
    metrics.renewal(during, timeout ? 'timeout' : failure.kind);
    logger.warn(
      { during, failure: failure.kind, upstreamStatus: 'status' in failure ? failure.status : undefined, retryInMs: Math.round(backoffMs) },
      'starship token renewal failed',
    );
    const code = throttledS !== undefined ? 'upstream_throttled' : timeout ? 'upstream_timeout' : 'upstream_error';
    throw block(
      clock() + backoffMs,
      new AppError(code, `Starship could not renew the session (${during}).`, {
        logFields: { upstream: 'starship', during, failure: failure.kind },
      }),
    );
  }

  /** Holds off refresh and login until `until`; callers that need a token meanwhile get `error`. */
  function block(until: number, error: AppError): AppError {
    retryAt = until;
    lastFailure = error;
    return blockedError();
  }

  /** The last failure, with Retry-After counted from now. */
  function blockedError(): AppError {
    const failure = lastFailure ?? new AppError('upstream_error', 'No Starship session is available.');
    return new AppError(failure.code, failure.message, {
      retryAfterS: Math.max(1, Math.ceil((retryAt - clock()) / 1000)),
      logFields: failure.logFields,
      cause: failure,
    });
  }

  function throttled(active: Cooldown): AppError {
    return new AppError('upstream_throttled', 'Starship login is cooling down; try again later.', {
      logFields: { upstream: 'starship', reason: active.reason },
    });
  }

  // --- the interface --------------------------------------------------------------------------

  function stateAt(now: number, cooling: Cooldown | undefined): SessionState {
    if (usable(current, now)) return inFlight === undefined ? 'valid' : 'refreshing';
    if (cooling !== undefined) return 'cooldown';
    return current === undefined ? 'none' : 'expired';
  }

  async function getAccessToken(): Promise<string> {
    const now = clock();
    const set = current;
    if (usable(set, now)) {
      if (now >= refreshDueAt(set) && now >= retryAt) {
        // Renew in the background; this caller and others go on with the token in hand.
        renew().catch(() => undefined);
      }
      return set.accessToken;
    }
    await renew();
    if (!usable(current, clock())) throw blockedError();
    return current.accessToken;
  }

  return {
    getAccessToken,

    reportRejected(accessToken) {
      if (current?.accessToken === accessToken) {
        rejectedAccessToken = accessToken;
        logger.warn({ accessExpiresAt: iso(current.accessExpiresAt) }, 'starship rejected the access token; renewing');
      }
    },

    async forceLogin({ revokePrevious }) {
      // Queue behind any renewal in flight, then take the single-flight slot for the login itself.
      while (inFlight !== undefined) await inFlight.catch(() => undefined);
      await renew(() =>
        withLock({ adopt: false }, async () => {
          await adoptFromStore();
          if (revokePrevious && current !== undefined) {
            await auth.logout(current.accessToken);
            logger.warn('starship session logged out for credential rotation');
          }
          await login();
        }),
      );
    },

    snapshot() {
      const now = clock();
      const cooling = cooldown !== undefined && cooldown.until > now ? cooldown : undefined;
      return {
        state: stateAt(now, cooling),
        accessExpiresAt: current?.accessExpiresAt,
        cooldownUntil: cooling?.until,
        blocked: cooling !== undefined && !usable(current, now),
      };
    },

    async status() {
      const now = clock();
      const cooling = await activeCooldown(now);
      const set = current;
      return {
        state: stateAt(now, cooling),
        accessExpiresAt: set === undefined ? null : iso(set.accessExpiresAt),
        refreshExpiresAt: set === undefined ? null : iso(set.refreshExpiresAt),
        clientId: set?.clientId ?? null,
        cooldownUntil: cooling === undefined ? null : iso(cooling.until),
      };
    },

    async warmUp() {
      try {
        await getAccessToken();
      } catch (error) {
        logger.warn({ code: (error as AppError).code }, 'starship session not ready at start; will retry on first use');
      }
    },
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Retry-After from a throttled login or refresh: 60 s when absent, 1 s to 15 min. */
const clampCooldownS = (retryAfterS: number | undefined) => Math.min(Math.max(retryAfterS ?? defaultCooldownS, 1), maxCooldownS);
