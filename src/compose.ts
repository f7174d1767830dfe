import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import type { DestinationStream } from 'pino';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config/load-config.js';
import type { Readiness } from './http/door-app.js';
import { refuseConnect } from './http/internal/connect-refusal.js';
import { connectRateLimit } from './http/public/connect-rate-limit.js';
import { frontendAuth } from './http/public/frontend-auth.js';
import { internalAuth, requireAdmin, serviceIdentifier } from './http/internal/internal-auth.js';
import { createInternalApp } from './http/internal/internal-app.js';
import { internalOpenApi } from './http/internal/internal-openapi.js';
import { publicOpenApi } from './http/public/public-openapi.js';
import { createPublicApp } from './http/public/public-app.js';
import type { Door } from './http/request-logging.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createSecretScrubber } from './observability/secret-scrubber.js';
import { createRedisClient } from './redis.js';
import { createBenjiClient } from './upstream/benji/benji-client.js';
import { createMemoryTokenStore } from './tokens/memory-token-store.js';
import { createRedisTokenStore } from './tokens/redis-token-store.js';
import { createTokenCipher } from './tokens/token-cipher.js';
import { createTokenManager, type TokenManager } from './tokens/token-manager.js';
import type { TokenStore } from './tokens/token-store.js';
import { createStarshipClient } from './upstream/starship/starship-client.js';

/** What the broker needs besides its config, from its entry point (main.ts, the demo, a test). */
export interface BrokerOptions extends BrokerOverrides {
  /** The build's version, which main.ts reads from package.json. */
  version: string;
  /** Where the broker's log lines go (every line is scrubbed of configured secrets first). */
  logDestination: DestinationStream;
}

/** Stand-ins a test may pass instead of what the config would build. */
export interface BrokerOverrides {
  clock?: Clock;
  /** Jitter source for renewal backoff. */
  random?: () => number;
}

export interface Broker {
  readonly publicApp: Express;
  readonly internalApp: Express;
  /** For the internal door's server: CONNECT never reaches the app, so this answers it (405). */
  readonly refuseConnect: (req: IncomingMessage, socket: Duplex) => void;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tokens: TokenManager;
  /** The shared Redis connection, when configured (readiness and tests look at its state). */
  readonly redis: Redis | undefined;
  /** Tries the Starship login once (after listening); never throws. */
  warmUp(): Promise<void>;
  /** Readiness turns 503 so load balancers stop sending; in-flight requests carry on. */
  beginShutdown(): void;
  /** Releases connections (Redis, upstream pools). Call after the listeners have closed. */
  close(): Promise<void>;
}

/** The composition root: every collaborator is built here, by hand, from the config. */
export function createBroker(config: Config, { version, logDestination, ...overrides }: BrokerOptions): Broker {
  const scrubber = createSecretScrubber(configuredSecrets(config));
  const logger = createLogger({ level: config.logLevel, scrubLine: scrubber.line, destination: logDestination });
  const metrics = createMetrics();
  const redis: Redis | undefined =
    config.redis === undefined ? undefined : createRedisClient(config.redis.url, logger, () => metrics.redisError('connection'));
  const clock = overrides.clock ?? systemClock;
  const benji = createBenjiClient({ ...config.benji, metrics, clock, scrub: scrubber.text });
  const starship = createStarshipClient({ ...config.starship, clock, metrics, scrub: scrubber.text });
  const tokens = createTokenManager({
    metrics,
    auth: starship,
    store: tokenStore(config, redis, clock, logger),
    clock,
    logger,
    refreshBeforeS: config.starship.refreshBeforeS,
    upstreamTimeoutMs: config.starship.timeoutMs,
    ...(overrides.random !== undefined && { random: overrides.random }),
  });

  if (config.frontendAuth.mode === 'none') {
    logger.warn('FRONTEND_AUTH=none: connect tokens are issued to anonymous callers, without a user id');
  }

  metrics.watchSession(
    { accessExpiresAt: () => tokens.snapshot().accessExpiresAt, cooldownUntil: () => tokens.snapshot().cooldownUntil },
    clock,
  );

  let shuttingDown = false;
  /**
   * Read from memory on every probe, and meant to say what a call would get now. The public door
   * needs neither Redis nor Starship to serve, so only shutdown takes it out. The internal door is
   * unavailable while every proxied call would fail at once (no usable token, and a backoff or a
   * login cooldown holds renewal off), degraded while calls would first wait for a renewal.
   */
  const readiness = (door: Door) => (): Readiness => {
    const session = tokens.snapshot();
    const checks: Readiness['checks'] = {
      redis: redis === undefined ? 'disabled' : redis.status === 'ready' ? 'ok' : 'down',
      starshipToken: session.state,
    };
    if (shuttingDown) return { status: 'shutting_down', checks };
    if (door === 'internal' && session.blocked) return { status: 'unavailable', checks };
    const tokenInHand = session.state === 'valid' || session.state === 'refreshing';
    return { status: checks.redis === 'down' || (door === 'internal' && !tokenInHand) ? 'degraded' : 'ok', checks };
  };
  const shared = { logger, metrics, trustProxy: config.http.trustProxy, version };

  const publicApp = createPublicApp({
    ...shared,
    readiness: readiness('public'),
    openapi: publicOpenApi(),
    corsOrigins: config.http.corsOrigins,
    connectToken: {
      benji,
      policy: {
        displayName: config.benji.displayName,
        allowedModes: config.benji.allowedModes,
        maxTransferAmount: config.benji.maxTransferAmount,
      },
      identifyUser: frontendAuth(config.frontendAuth, clock, metrics),
      rateLimit: connectRateLimit({ perMinute: config.connectTokenRateLimit, redis, keyPrefix: config.redis?.keyPrefix ?? '' }),
    },
  });
  const identifyService = serviceIdentifier(config.internalAuth.keys);
  const internalApp = createInternalApp({
    ...shared,
    readiness: readiness('internal'),
    openapi: internalOpenApi(),
    starshipProxy: { starship, tokens, allow: config.starship.proxyAllow, identifyService, clock },
    admin: { tokens, authorize: [internalAuth(identifyService), requireAdmin(config.internalAuth.adminCallers)] },
  });

  return {
    publicApp,
    internalApp,
    refuseConnect: refuseConnect(logger),
    logger,
    metrics,
    tokens,
    redis,
    warmUp: () => tokens.warmUp(),
    beginShutdown() {
      shuttingDown = true;
    },
    async close() {
      await Promise.all([benji.close(), starship.close()]);
      if (redis !== undefined) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** Redis shares the session between replicas (encrypted at rest); without it, memory serves one replica. */
function tokenStore(config: Config, redis: Redis | undefined, clock: Clock, logger: Logger): TokenStore {
  if (redis === undefined || config.redis === undefined || config.tokenEncryptionKey === undefined) {
    logger.warn('REDIS_URL unset: Starship tokens live in process memory; run one replica only');
    return createMemoryTokenStore(clock);
  }
  return createRedisTokenStore({ redis, keyPrefix: config.redis.keyPrefix, cipher: createTokenCipher(config.tokenEncryptionKey), clock });
}

/**
 * Every secret value of the configuration, in the forms it could take in text: what an upstream
 * sends back is scrubbed of these before it is logged, and so is every log line.
 */
function configuredSecrets(config: Config): string[] {
  const secrets = [config.benji.apiKey, config.starship.username, config.starship.password];
  if (config.frontendAuth.mode === 'jwt' && config.frontendAuth.secret !== undefined) secrets.push(config.frontendAuth.secret);
  for (const { key } of config.internalAuth.keys) secrets.push(key);
  const encryptionKey = config.tokenEncryptionKey;
  if (encryptionKey !== undefined) {
    // The variable may have been written padded or not, in base64 or base64url.
    const base64 = encryptionKey.toString('base64');
    secrets.push(base64, base64.replace(/=+$/, ''), encryptionKey.toString('base64url'));
  }
  const redisPassword = config.redis === undefined ? '' : new URL(config.redis.url).password;
  if (redisPassword !== '') secrets.push(redisPassword, decodedOrSame(redisPassword));
  return secrets;
}

function decodedOrSame(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
