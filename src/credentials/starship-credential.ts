import type { Pool } from 'undici';
import type { Clock } from '../clock.js';
import type { StarshipAuthConfig } from '../config/load-config.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Scrub } from '../observability/secret-scrubber.js';
import type { Tracing } from '../observability/tracing.js';
import { createStarshipAuth } from '../upstream/starship/starship-auth.js';
import type { Upstream } from '../upstream/upstream-http.js';
import type { Credential } from './credential.js';
import { createStarshipApiKeyCredential } from './starship-api-key.js';
import {
  createStarshipSession,
  sessionStates,
  starshipSessionCredential,
  type SessionSnapshot,
  type StarshipSession,
} from './starship-session.js';
import type { SharedStore } from './stores/shared-store.js';

/** What readiness reports of Starship: a session's state, or `static` for a key that never expires. */
export const starshipCredentialStates = [...sessionStates, 'static'] as const;
export type StarshipCredentialState = (typeof starshipCredentialStates)[number];

export interface StarshipStatus extends Omit<SessionSnapshot, 'state'> {
  state: StarshipCredentialState;
}

/** The broker's credential for Starship, whichever scheme the account uses (STARSHIP_AUTH). */
export interface StarshipCredential {
  readonly credential: Credential;
  /** The session, when the account uses one (the admin routes, the session gauges). */
  readonly session: StarshipSession | undefined;
  /** Memory only: readiness asks on every probe. */
  snapshot(): StarshipStatus;
  /** Tries to be ready before the first call (a session logs in); never throws. */
  warmUp(): Promise<void>;
}

export interface StarshipCredentialDeps {
  upstream: Upstream;
  /** The session's own pool (login, refresh, logout), apart from proxied calls. */
  authPool: Pool;
  store: SharedStore;
  timeoutMs: number;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  scrub: Scrub;
  /** Jitter source for renewal backoff. */
  random?: (() => number) | undefined;
  tracing: Tracing;
}

const staticStatus: StarshipStatus = { state: 'static', accessExpiresAt: undefined, cooldownUntil: undefined, blocked: false };

export function createStarshipCredential(auth: StarshipAuthConfig, deps: StarshipCredentialDeps): StarshipCredential {
  const { upstream, authPool, store, timeoutMs, clock, logger, metrics, scrub, random, tracing } = deps;
  if (auth.kind === 'api-key') {
    return {
      credential: createStarshipApiKeyCredential({
        apiKey: auth.apiKey,
        apiSecret: auth.apiSecret,
        signingSecret: auth.signingSecret,
        clock,
        logger,
        onRejected: () => metrics.credentialRejected('starship', 'api_key'),
      }),
      session: undefined,
      snapshot: () => staticStatus,
      warmUp: async () => undefined,
    };
  }
  const session = createStarshipSession({
    auth: createStarshipAuth({ upstream, pool: authPool, username: auth.username, password: auth.password, clock, scrub }),
    store,
    clock,
    logger,
    metrics,
    refreshBeforeS: auth.refreshBeforeS,
    upstreamTimeoutMs: timeoutMs,
    tracing,
    ...(random !== undefined && { random }),
  });
  metrics.watchSession(
    { accessExpiresAt: () => session.snapshot().accessExpiresAt, cooldownUntil: () => session.snapshot().cooldownUntil },
    clock,
  );
  return { credential: starshipSessionCredential(session), session, snapshot: () => session.snapshot(), warmUp: () => session.warmUp() };
}
