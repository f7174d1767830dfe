import { z } from 'zod';
import type { Clock } from '../clock.js';
import { AppError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { noMetrics, type TokenMetrics } from '../observability/metrics.js';
import { noTracing, type Tracing } from '../observability/tracing.js';
import type { AuthFailure, AuthResult, StarshipAuth, StarshipTokens } from '../upstream/starship/starship-auth.js';
import type { CallHeaders, Credential } from './credential.js';
import { createLoginCooldown } from './login-cooldown.js';
import { createRenewalLock, type LockWait } from './renewal-lock.js';
import { createSingleFlight } from './single-flight.js';
import { parseStored, type SharedStore } from './stores/shared-store.js';
import { canRefresh, compareSets, obtainedRecently, refreshDueAt, unexpired, type Cooldown, type TokenSet } from './token-set.js';

/*
 * The Starship session lifecycle, in one place. Rules, and why:
 *
 * 1. Steady state touches nothing: the current set lives in memory and a proxied call reads it from
 *    there, with no Redis round trip.
 * 2. Renewal (refresh, else login) starts once the access token enters its refresh window
 *    (STARSHIP_REFRESH_BEFORE_S before expiry, at most half its lifetime). Callers keep using the
 *    current token while it runs; only a caller with no valid token waits for it.
 * 3. One renewal per process at a time (a keyed single-flight, single-flight.ts), and one across all
 *    replicas (renewal-lock.ts: SET NX PX with an owner, compare-and-delete release, bounded wait).
 *    A lock with no TTL or a longer one than ours was not set by a broker: it is given our TTL, so it
 *    lapses within one wait. A wait that runs out backs off like a failed renewal, so callers meanwhile
 *    get an error at once instead of each waiting the whole lock wait again.
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
 *    lock the account. While it lasts nobody calls login, and callers needing a login get 503. The
 *    stored cooldown decides whenever the store answers, so one deleted from Redis frees the door at
 *    the next call (or readiness probe); but it is never trusted for more than 15 min from now by our
 *    own clock, so a poisoned or clock-skewed one cannot shut the door for longer.
 * 7. Store disconnected (Redis down) → carry on with what is in memory, renew in-process only, and
 *    write the current set back, under the lock, once the store is connected again. Store calls fail
 *    fast; no caller ever queues behind Redis. A store that is connected but answers with errors is
 *    not "down": renewal then fails and backs off rather than run without the shared lock. At start
 *    the first renewal waits (briefly) for the first connection, so a booting replica does not skip
 *    the shared lock and cooldown just because its connection is still being made.
 * 8. The store says which set is current, but only forward: a stored set is adopted when Starship's
 *    expiry times say it is newer than ours (on a tie, the later received), or when it is ours with
 *    its refresh token blanked (rule 5). An older one (a replayed blob, a Redis that lost writes) is
 *    never adopted, since its refresh token may be spent, and ours is written back over it. Blobs are
 *    sealed for their key name, so one copied from another key does not even open. A replica with
 *    nothing in hand cannot judge and adopts what is stored; a spent refresh token in it then costs
 *    one refused refresh and a login (rule 5).
 * 9. Starship answering 401 renews the session only when the refused token is still the current one,
 *    nothing newer is stored, and it was obtained more than max(30 s, 1 % of its lifetime) ago: a
 *    fresh token refused says more about the endpoint than the token, and renewing on it would
 *    rotate the session on every call. After a renewal the call is replayed once; otherwise the 401
 *    is passed through. While that renewal runs the refused token is not handed out; if the renewal
 *    fails for any reason but Starship also refusing the refresh token (a revoked session), the
 *    token is still valid by its expiry and goes back into use.
 */

export interface StarshipSessionOptions {
  auth: StarshipAuth;
  /** Where the session, the login cooldown and the renewal lock are shared (Redis) or kept (memory). */
  store: SharedStore;
  clock: Clock;
  logger: Logger;
  refreshBeforeS: number;
  /** Upper bound of one upstream auth call; sizes the lock so it outlives a refresh plus a login. */
  upstreamTimeoutMs: number;
  /** For jitter; injectable so tests are deterministic. */
  random?: () => number;
  lockPollMs?: number;
  metrics?: TokenMetrics;
  /** Each login, refresh and lock wait is a span, with its outcome. */
  tracing?: Tracing;
}

/**
 * The states a session can be in, the one place they are spelled (readiness and the admin route
 * derive theirs from here). `rejected`: Starship refused the token in hand (401) before its expiry,
 * and no renewal has replaced it yet.
 */
export const sessionStates = ['none', 'valid', 'refreshing', 'expired', 'rejected', 'cooldown'] as const;
export type SessionState = (typeof sessionStates)[number];

export interface SessionStatus {
  state: SessionState;
  accessExpiresAt: string | null;
  refreshExpiresAt: string | null;
  clientId: string | null;
  cooldownUntil: string | null;
}

/** What readiness and metrics read on every probe or scrape: memory only, no I/O to answer. */
export interface SessionSnapshot {
  state: SessionState;
  accessExpiresAt: number | undefined;
  cooldownUntil: number | undefined;
  /**
   * No usable token, and none can be had before a backoff or a login cooldown ends: until then
   * every call that needs a token fails at once (a call may still pick up a newer set another
   * replica stored).
   */
  blocked: boolean;
}

export interface StarshipSession {
  /** A usable access token, renewing first only when none is in hand. Throws AppError when it cannot. */
  getAccessToken(): Promise<string>;
  /**
   * Starship answered 401 to a call made with this token (rule 9). True: replay the call once with
   * getAccessToken(), the session has been renewed (now, or since the call took its token). False:
   * pass the 401 through. Never rejects.
   */
  reportRejected(accessToken: string): Promise<boolean>;
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
/** A token younger than this, max(30 s, 1 % of its lifetime), is not renewed because of a 401. */
const minRejectAgeMs = 30_000;

/** How a stored set compares with the one in hand (rule 8). */
type StoredSet = 'absent' | 'unreachable' | 'same' | 'older' | 'adopted';

/** Names in the shared store; REDIS_KEY_PREFIX goes in front of each. */
const names = { session: 'starship:session', lock: 'starship:lock', cooldown: 'starship:cooldown' } as const;
/** The single-flight key: there is one Starship session. */
const flightKey = 'starship';

const tokenSetSchema = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  accessExpiresAt: z.number(),
  refreshExpiresAt: z.number(),
  obtainedAt: z.number(),
  clientId: z.string(),
}) satisfies z.ZodType<TokenSet>;

/** How a lock wait is labelled in broker_starship_lock_wait_seconds. */
const lockWaitLabels = { held: 'acquired', adopted: 'adopted', local: 'store_down', timeout: 'timeout', failing: undefined } as const;

export function createStarshipSession(options: StarshipSessionOptions): StarshipSession {
  const { auth, store, clock, logger } = options;
  const random = options.random ?? Math.random;
  const metrics = options.metrics ?? noMetrics;
  const tracing = options.tracing ?? noTracing;
  // A holder makes at most a refresh and a login, each bounded by the upstream timeout.
  const lockTtlMs = 2 * options.upstreamTimeoutMs + 5_000;
  const renewalLock = createRenewalLock({
    store,
    ttlMs: lockTtlMs,
    waitMs: lockTtlMs + 5_000,
    pollMs: options.lockPollMs ?? 50,
    onWait: (seconds, outcome) => {
      const label = lockWaitLabels[outcome];
      if (label !== undefined) metrics.lockWait(seconds, label);
    },
    tracing,
    guards: 'starship session',
  });
  const flights = createSingleFlight();
  const inFlight = () => flights.inFlight(flightKey);

  let current: TokenSet | undefined;
  /** Refused by Starship (401) and not handed out while a renewal replaces it (rule 9). */
  let rejectedAccessToken: string | undefined;
  /** The access token of a set whose refresh token Starship refused: that session is revoked. */
  let refusedSession: string | undefined;
  let failures = 0;
  /** No refresh or login before this time: the backoff after a failure (a cooldown is kept apart). */
  let retryAt = 0;
  let lastFailure: AppError | undefined;
  let storeReachable = true;
  const cooldown = createLoginCooldown({
    store,
    name: names.cooldown,
    maxS: maxCooldownS,
    onStoreError: (action, error) => storeFailed(action, error),
  });

  store.onReconnect(() => {
    storeReachable = true;
    if (current !== undefined && inFlight() === undefined) renew(writeBack).catch(() => undefined);
  });

  // --- judging a set --------------------------------------------------------------------------

  function usable(set: TokenSet | undefined, now: number): set is TokenSet {
    return set !== undefined && set.accessToken !== rejectedAccessToken && unexpired(set, now);
  }

  const needsRenewal = (set: TokenSet | undefined, now: number) => !usable(set, now) || now >= refreshDueAt(set, options.refreshBeforeS);

  /** True when the next renewal would be a refresh, which a login cooldown does not hold off. */
  const refreshable = (now: number) => current !== undefined && canRefresh(current, now);

  // --- the store, failing soft ----------------------------------------------------------------

  function storeFailed(action: string, error: unknown): void {
    metrics.storeError(action);
    if (storeReachable) logger.warn({ action, reason: (error as Error).message }, 'token store unreachable; using tokens in memory');
    storeReachable = false;
  }

  /** The stored session, when it opens, parses and its refresh token has not expired by our clock. */
  async function readStored(): Promise<TokenSet | undefined> {
    const stored = parseStored(tokenSetSchema, await store.getSecret(names.session));
    return stored !== undefined && clock() < stored.refreshExpiresAt ? stored : undefined;
  }

  const writeStored = (set: TokenSet) => store.setSecret(names.session, JSON.stringify(set), set.refreshExpiresAt);

  /** Takes the stored set when it is newer than ours (another replica renewed); see rule 8. */
  async function adoptFromStore(): Promise<StoredSet> {
    let stored: TokenSet | undefined;
    try {
      stored = await readStored();
    } catch (error) {
      storeFailed('read', error);
      return 'unreachable';
    }
    if (stored === undefined) return 'absent';
    if (current !== undefined) {
      const order = compareSets(stored, current);
      if (order === 'same') return 'same';
      if (order === 'older') {
        logger.warn(
          { storedAccessExpiresAt: iso(stored.accessExpiresAt), accessExpiresAt: iso(current.accessExpiresAt) },
          'stored starship session is older than the one in hand; not adopted',
        );
        // Put ours back, so that no other replica adopts the old one either. A renewal in flight
        // writes its own result.
        if (inFlight() === undefined) renew(writeBack).catch(() => undefined);
        return 'older';
      }
    }
    current = stored;
    logger.debug({ accessExpiresAt: iso(stored.accessExpiresAt) }, 'starship tokens adopted from store');
    return 'adopted';
  }

  /** True when written. */
  async function save(tokens: TokenSet): Promise<boolean> {
    try {
      await writeStored(tokens);
      return true;
    } catch (error) {
      storeFailed('write', error);
      return false;
    }
  }

  /**
   * Under the lock: store the set we hold when the store lacks it (after an outage: a restarted Redis
   * keeps nothing) or holds an older one; adopt the stored one when it is newer.
   */
  async function writeBack(): Promise<void> {
    await withLock({ adopt: false }, async () => {
      if (current === undefined) return;
      const found = await adoptFromStore();
      if ((found === 'absent' || found === 'older') && (await save(current))) logger.info('starship tokens written back to store');
    });
  }

  // --- the lock ---------------------------------------------------------------------------------

  /**
   * Runs `work` holding the renewal lock (rule 3), or in-process only while the store is
   * disconnected (rule 7). With `adopt`, a waiter stops waiting as soon as the store holds tokens
   * that need no renewal (another replica renewed), and does nothing.
   */
  async function withLock({ adopt }: { adopt: boolean }, work: () => Promise<void>): Promise<void> {
    const adopted = async () => (await adoptFromStore()) === 'adopted' && !needsRenewal(current, clock());
    const wait: LockWait = await renewalLock.acquire(names.lock, adopt ? adopted : undefined);
    switch (wait.outcome) {
      case 'adopted':
        return;
      case 'failing':
        storeFailed('lock', wait.error);
        // Connected but failing: renewing without the shared lock could send a refresh token twice,
        // so fail this renewal and retry after a pause.
        throw block(clock() + 1_000, new AppError('upstream_error', 'The shared token store failed; retrying shortly.'));
      case 'timeout': {
        failures += 1;
        const delayMs = backoffMs();
        logger.warn({ retryInMs: Math.round(delayMs) }, 'starship renewal lock wait exceeded; backing off');
        throw block(
          clock() + delayMs,
          new AppError('upstream_error', 'Starship token renewal did not finish in time.', { logFields: { reason: 'lock wait exceeded' } }),
        );
      }
      case 'local':
        storeFailed('lock', wait.error);
        return work();
      case 'held':
        try {
          await work();
        } finally {
          await wait.release().catch((error: unknown) => storeFailed('unlock', error));
        }
    }
  }

  // --- renewal ----------------------------------------------------------------------------------

  /** Single-flight: concurrent callers in this process share one renewal. */
  const renew = (work: () => Promise<void> = renewOnce): Promise<void> => flights.run(flightKey, work);

  async function renewOnce(): Promise<void> {
    try {
      // A booting replica waits for its first Redis connection rather than renew without the lock.
      await store.firstConnection(firstConnectionWaitMs);
      // Another replica may have renewed already: a read is cheaper than a lock.
      if ((await adoptFromStore()) === 'adopted' && !needsRenewal(current, clock())) return;
      if (clock() < retryAt) throw blockedError();
      // A cooldown holds off logins only; checked before the lock, so a caller during one costs a read.
      if (!refreshable(clock())) {
        const active = await cooldown.active(clock());
        if (active !== undefined) throw cooldownError(active);
      }

      await withLock({ adopt: true }, async () => {
        // Re-read under the lock: the previous holder may have rotated just before we got it.
        if ((await adoptFromStore()) === 'adopted' && !needsRenewal(current, clock())) return;
        await refreshOrLogin();
      });
    } catch (error) {
      restoreRejected();
      throw error;
    }
  }

  /** Rule 9: a failed renewal puts a refused token back in use, unless its session was revoked. */
  function restoreRejected(): void {
    if (rejectedAccessToken !== undefined && rejectedAccessToken !== refusedSession) rejectedAccessToken = undefined;
  }

  async function refreshOrLogin(): Promise<void> {
    const set = current;
    if (set !== undefined && canRefresh(set, clock())) {
      const result = await traced('refresh', () => auth.refresh(set.refreshToken));
      if (result.ok) return accept(result.tokens, 'refresh');
      const { failure } = result;
      const spent = failure.kind === 'rejected' || (failure.kind === 'unavailable' && failure.maybeProcessed);
      // Never send this refresh token again, here or on another replica: blank it in the store too.
      if (spent) await save((current = { ...set, refreshToken: '' }));
      if (failure.kind !== 'rejected') return failed(failure, 'refresh');
      refusedSession = set.accessToken;
      metrics.renewal('refresh', 'rejected');
      logger.warn({ upstreamStatus: failure.status, upstreamError: failure.error }, 'starship refresh rejected; logging in');
    }
    await login();
  }

  async function login(): Promise<void> {
    const active = await cooldown.active(clock());
    if (active !== undefined) throw cooldownError(active);

    const result = await traced('login', () => auth.login());
    if (result.ok) return accept(result.tokens, 'login');
    const { failure } = result;
    if (failure.kind === 'throttled') {
      metrics.renewal('login', 'throttled');
      const waitS = clampCooldownS(failure.retryAfterS);
      const next: Cooldown = { until: clock() + waitS * 1000, reason: 'throttled' };
      await cooldown.start(next);
      logger.warn({ retryAfterS: waitS }, 'starship login throttled; cooling down');
      throw cooldownError(next);
    }
    if (failure.kind === 'rejected') {
      metrics.renewal('login', 'rejected');
      const next: Cooldown = { until: clock() + defaultCooldownS * 1000, reason: 'credentials_rejected' };
      await cooldown.start(next);
      logger.error(
        { upstreamStatus: failure.status, upstreamError: failure.error },
        'starship login rejected: check STARSHIP_USERNAME and STARSHIP_PASSWORD',
      );
      throw cooldownError(next);
    }
    return failed(failure, 'login');
  }

  async function accept(issued: StarshipTokens, kind: 'login' | 'refresh'): Promise<void> {
    metrics.renewal(kind, 'success');
    const tokens: TokenSet = { ...issued, obtainedAt: clock() };
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

  /** A login or refresh in a span of its own, with its outcome in the metric's words (never a token). */
  function traced(kind: 'login' | 'refresh', call: () => Promise<AuthResult>): Promise<AuthResult> {
    return tracing.inSpan(`starship session ${kind}`, { 'broker.operation': kind }, async (span) => {
      const result = await call();
      if (result.ok) span.set({ 'broker.outcome': 'success' });
      else {
        const { failure } = result;
        const outcome = failure.kind === 'unavailable' && failure.timeout ? 'timeout' : failure.kind;
        span.set({ 'broker.outcome': outcome });
        span.fail(outcome);
      }
      return result;
    });
  }

  /** Exponential, with jitter, by the number of failures in a row. */
  const backoffMs = () => Math.min(1000 * 2 ** (failures - 1), maxBackoffMs) * (0.5 + random() / 2);

  /** Transient failure (or a throttled refresh): keep the tokens, retry after a backoff with jitter. */
  function failed(failure: AuthFailure, during: 'refresh' | 'login'): never {
    failures += 1;
    const throttledS = failure.kind === 'throttled' ? clampCooldownS(failure.retryAfterS) : undefined;
    const delayMs = throttledS !== undefined ? throttledS * 1000 : backoffMs();
    const timeout = failure.kind === 'unavailable' && failure.timeout;
    metrics.renewal(during, timeout ? 'timeout' : failure.kind);
    logger.warn(
      { during, failure: failure.kind, upstreamStatus: 'status' in failure ? failure.status : undefined, retryInMs: Math.round(delayMs) },
      'starship token renewal failed',
    );
    const code = throttledS !== undefined ? 'upstream_throttled' : timeout ? 'upstream_timeout' : 'upstream_error';
    throw block(
      clock() + delayMs,
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
      retryAfterS: retryAfterS(retryAt),
      logFields: failure.logFields,
      cause: failure,
    });
  }

  function cooldownError(active: Cooldown): AppError {
    const fields = { retryAfterS: retryAfterS(active.until), logFields: { upstream: 'starship', reason: active.reason } };
    return active.reason === 'throttled'
      ? new AppError('upstream_throttled', 'Starship login is cooling down; try again later.', fields)
      : new AppError('upstream_error', 'Starship rejected the broker’s credentials.', fields);
  }

  const retryAfterS = (until: number) => Math.max(1, Math.ceil((until - clock()) / 1000));

  // --- the interface --------------------------------------------------------------------------

  function stateAt(now: number, cooling: Cooldown | undefined): SessionState {
    if (usable(current, now)) return inFlight() === undefined ? 'valid' : 'refreshing';
    if (cooling !== undefined) return 'cooldown';
    if (refusedBeforeExpiry(current, now)) return 'rejected';
    return current === undefined ? 'none' : 'expired';
  }

  const refusedBeforeExpiry = (set: TokenSet | undefined, now: number) =>
    set !== undefined && set.accessToken === rejectedAccessToken && set.accessExpiresAt > now;

  /** A background renewal in the refresh window, unless a backoff or (for a login) a cooldown holds it off. */
  const mayRenewInBackground = (now: number) => now >= retryAt && (refreshable(now) || cooldown.cached(now) === undefined);

  async function getAccessToken(): Promise<string> {
    const now = clock();
    const set = current;
    if (usable(set, now)) {
      if (now >= refreshDueAt(set, options.refreshBeforeS) && mayRenewInBackground(now)) {
        // Renew in the background; this caller and others go on with the token in hand.
        renew().catch(() => undefined);
      }
      return set.accessToken;
    }
    try {
      await renew();
    } catch (error) {
      // The renewal after a 401 failed for a transient reason: the refused token is back in use.
      if (usable(current, clock())) return current.accessToken;
      throw error;
    }
    if (!usable(current, clock())) throw blockedError();
    return current.accessToken;
  }

  async function reportRejected(accessToken: string): Promise<boolean> {
    // Renewed since this call took its token: replay with the new one.
    if (current === undefined || current.accessToken !== accessToken) return current !== undefined;
    // Another replica may have replaced the session (a logout for credential rotation): adopting a
    // newer set is not a renewal.
    if ((await adoptFromStore()) === 'adopted') return true;
    const set = current;
    const now = clock();
    if (set.accessToken !== accessToken) return true; // another caller's renewal finished meanwhile
    if (obtainedRecently(set, now, minRejectAgeMs)) {
      logger.debug({ accessExpiresAt: iso(set.accessExpiresAt) }, 'starship refused a fresh access token; 401 passed through');
      return false;
    }
    if (now < retryAt) return false;
    if (rejectedAccessToken !== accessToken) {
      rejectedAccessToken = accessToken;
      logger.warn({ accessExpiresAt: iso(set.accessExpiresAt) }, 'starship rejected the access token; renewing');
    }
    try {
      // Twice at most: the first may only have joined a write-back already in flight.
      for (let attempt = 0; attempt < 2 && current.accessToken === accessToken; attempt++) await renew();
    } catch {
      // The renewal logged why it failed (and put the token back if it may); the caller gets Starship's 401.
      return false;
    }
    return current.accessToken !== accessToken;
  }

  return {
    getAccessToken,

    async reportRejected(accessToken) {
      try {
        return await reportRejected(accessToken);
      } catch {
        return false;
      }
    },

    async forceLogin({ revokePrevious }) {
      // Queue behind any renewal in flight, then take the single-flight slot for the login itself.
      for (let flight = inFlight(); flight !== undefined; flight = inFlight()) await flight.catch(() => undefined);
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
      const cooling = cooldown.cached(now);
      const blockedByCooldown = cooling !== undefined && !refreshable(now);
      const blocked = !usable(current, now) && (now < retryAt || blockedByCooldown);
      // While a cooldown blocks the door, a probe also re-reads it, so one deleted from Redis shows.
      if (blocked && blockedByCooldown) cooldown.recheck(now);
      return { state: stateAt(now, cooling), accessExpiresAt: current?.accessExpiresAt, cooldownUntil: cooling?.until, blocked };
    },

    async status() {
      const now = clock();
      const cooling = await cooldown.active(now);
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

/**
 * The session as a credential for the proxy engine: `Authorization: Bearer <access token>`, and a
 * 401 reported back under rule 9. The header object is made once per token, not per call.
 */
export function starshipSessionCredential(session: StarshipSession): Credential {
  let last: { token: string; headers: CallHeaders } | undefined;
  return {
    async headersFor() {
      const token = await session.getAccessToken();
      if (last?.token !== token) last = { token, headers: { authorization: `Bearer ${token}` } };
      return last.headers;
    },
    rejected: (used) => session.reportRejected((used.authorization ?? '').slice('Bearer '.length)),
  };
}

/** Retry-After from a throttled login or refresh: 60 s when absent, 1 s to 15 min. */
const clampCooldownS = (retryAfterS: number | undefined) => Math.min(Math.max(retryAfterS ?? defaultCooldownS, 1), maxCooldownS);
