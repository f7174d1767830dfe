import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import type { RedisClient } from './redis.js';
import type { DestinationStream } from 'pino';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config/load-config.js';
import { createBenjiLinks } from './credentials/benji-links.js';
import { createStarshipCredential } from './credentials/starship-credential.js';
import { createStaticKeyCredential } from './credentials/static-key.js';
import type { StarshipSession } from './credentials/starship-session.js';
import { createMemoryStore } from './credentials/stores/memory-store.js';
import { createRedisStore } from './credentials/stores/redis-store.js';
import type { SharedStore } from './credentials/stores/shared-store.js';
import { createTokenCipher } from './credentials/stores/token-cipher.js';
import { refuseConnect } from './http/internal/connect-refusal.js';
import { createInternalApp } from './http/internal/internal-app.js';
import { internalAuth, requireAdmin, serviceIdentifier } from './http/internal/internal-auth.js';
import { internalOpenApi } from './http/internal/internal-openapi.js';
import { connectRateLimit } from './http/public/connect-rate-limit.js';
import { frontendAuth } from './http/public/frontend-auth.js';
import { createPublicApp } from './http/public/public-app.js';
import { publicOpenApi } from './http/public/public-openapi.js';
import { readinessOf } from './http/readiness.js';
import type { Door } from './http/request-logging.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createSecretScrubber } from './observability/secret-scrubber.js';
import { createTracing, type Tracing, type TracingSdk } from './observability/tracing.js';
import { createRedisClient } from './redis.js';
import { createBenjiAuth } from './upstream/benji/benji-auth.js';
import { createBenjiClient } from './upstream/benji/benji-client.js';
import { createUpstream, createUpstreamPool } from './upstream/upstream-http.js';
import { createDeliveryWorker, type DeliveryTimings } from './webhooks/delivery-worker.js';
import { createMemoryWebhookQueue } from './webhooks/memory-webhook-queue.js';
import { webhookProviders } from './webhooks/signatures.js';
import { createRedisWebhookQueue } from './webhooks/redis-webhook-queue.js';

/** What the broker needs besides its config, from its entry point (main.ts, the demo, a test). */
export interface BrokerOptions extends BrokerOverrides {
  /** The build's version, which main.ts reads from package.json. */
  version: string;
  /** Where the broker's log lines go (every line is scrubbed of configured secrets first). */
  logDestination: DestinationStream;
  /** The OpenTelemetry SDK (`loadTracingSdk()`), which must be loaded when the config turns tracing on. */
  tracingSdk?: TracingSdk | undefined;
}

/** Stand-ins a test may pass instead of what the config would build. */
export interface BrokerOverrides {
  clock?: Clock;
  /** Jitter source for renewal backoff. */
  random?: () => number;
  /** Shorter waits for the webhook delivery worker (claim time, backoff), so tests need not wait minutes. */
  deliveryTimings?: Partial<DeliveryTimings>;
}

export interface Broker {
  readonly publicApp: Express;
  readonly internalApp: Express;
  /** For the internal door's server: CONNECT never reaches the app, so this answers it (405). */
  readonly refuseConnect: (req: IncomingMessage, socket: Duplex) => void;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** `noTracing` unless the config turns tracing on (tests flush it). */
  readonly tracing: Tracing;
  /** The Starship session, when STARSHIP_AUTH=session (tests look at it). */
  readonly session: StarshipSession | undefined;
  /** The shared Redis connection, when configured (readiness and tests look at its state). */
  readonly redis: RedisClient | undefined;
  /** After listening: tries the Starship login once and starts delivering webhooks; never throws. */
  warmUp(): Promise<void>;
  /** Readiness turns 503 so load balancers stop sending; in-flight requests carry on. */
  beginShutdown(): void;
  /** Releases connections (Redis, upstream pools) and exports the last spans. Call after the listeners have closed. */
  close(): Promise<void>;
}

/** The composition root: every collaborator is built here, by hand, from the config. */
export function createBroker(config: Config, { version, logDestination, tracingSdk, ...overrides }: BrokerOptions): Broker {
  const scrubber = createSecretScrubber(configuredSecrets(config));
  // Export failures are reported after an export, long after the logger below exists.
  const tracing = createTracing(config.tracing, tracingSdk, {
    version,
    onExportFailure: (status) => logger.warn({ status }, 'trace export failed; spans are being dropped until it succeeds'),
  });
  const logger = createLogger({
    level: config.logLevel,
    scrubLine: scrubber.line,
    destination: logDestination,
    ...(tracing.enabled && { mixin: tracing.logFields }),
  });
  const metrics = createMetrics();
  const redis: RedisClient | undefined =
    config.redis === undefined ? undefined : createRedisClient(config.redis.connection, logger, () => metrics.redisError('connection'));
  const clock = overrides.clock ?? systemClock;
  const store = sharedStore(config, redis, clock, logger);

  // Benji: the connect-token calls and the proxied partner-API calls get separate pools (a flood of
  // slow proxied calls must not queue connect tokens), and the auth service, another origin, its own.
  const benjiUrl = new URL(config.benji.baseUrl);
  const benjiUpstream = createUpstream({ name: 'benji', timeoutMs: config.benji.timeoutMs, metrics, tracing });
  const benjiPool = createUpstreamPool(benjiUrl.origin, { connections: 32, timeoutMs: config.benji.timeoutMs });
  const benjiProxyPool = createUpstreamPool(benjiUrl.origin, { connections: 128, timeoutMs: config.benji.timeoutMs });
  const benjiAuthUrl = new URL(config.benji.authBaseUrl);
  const benjiAuthPool = createUpstreamPool(benjiAuthUrl.origin, { connections: 16, timeoutMs: config.benji.timeoutMs });
  const benji = createBenjiClient({
    upstream: benjiUpstream,
    pool: benjiPool,
    basePath: benjiUrl.pathname,
    apiKey: config.benji.apiKey,
    partnershipId: config.benji.partnershipId,
    clock,
    scrub: scrubber.text,
  });
  const benjiLinks = createBenjiLinks({
    auth: createBenjiAuth({
      upstream: benjiUpstream,
      pool: benjiAuthPool,
      basePath: benjiAuthUrl.pathname,
      apiKey: config.benji.apiKey,
      clock,
      scrub: scrubber.text,
    }),
    store,
    clock,
    logger,
    refreshBeforeS: config.benji.links.refreshBeforeS,
    ttlDays: config.benji.links.ttlDays,
    upstreamTimeoutMs: config.benji.timeoutMs,
    onEvent: (event) => metrics.linkEvent(event),
    tracing,
  });
  const benjiPartnerKey = createStaticKeyCredential({
    headers: { 'x-api-key': config.benji.apiKey },
    upstream: 'benji',
    refusedMessage: 'Benji rejected the partner key: check BENJI_API_KEY',
    clock,
    logger,
    onRejected: () => metrics.credentialRejected('benji', 'partner_key'),
  });

  // Starship: proxied calls and a session's own calls get separate pools, so that a flood of slow
  // or streaming calls can never queue a refresh behind them until the token expires.
  const starshipOrigin = new URL(config.starship.baseUrl).origin;
  const starship = createUpstream({ name: 'starship', timeoutMs: config.starship.timeoutMs, metrics, tracing });
  const starshipProxyPool = createUpstreamPool(starshipOrigin, { connections: 128, timeoutMs: config.starship.timeoutMs });
  const starshipAuthPool = createUpstreamPool(starshipOrigin, { connections: 4, timeoutMs: config.starship.timeoutMs });
  const starshipCredential = createStarshipCredential(config.starship.auth, {
    upstream: starship,
    authPool: starshipAuthPool,
    store,
    timeoutMs: config.starship.timeoutMs,
    clock,
    logger,
    metrics,
    scrub: scrubber.text,
    random: overrides.random,
    tracing,
  });

  const webhookQueue = createWebhookQueue(config, redis, clock, logger);
  const { forward } = config.webhooks;
  const deliveryWorker =
    forward === undefined
      ? undefined
      : createDeliveryWorker({
          queue: webhookQueue.queue,
          url: forward.url,
          secret: forward.secret,
          maxAttempts: config.webhooks.maxAttempts,
          clock,
          logger,
          metrics,
          tracing,
          ...(overrides.random !== undefined && { random: overrides.random }),
          ...(overrides.deliveryTimings !== undefined && { timings: overrides.deliveryTimings }),
        });

  if (config.frontendAuth.mode === 'none') {
    logger.warn('FRONTEND_AUTH=none: connect tokens are issued to anonymous callers, without a user id');
  }

  let shuttingDown = false;
  let stoppingWorker: Promise<void> | undefined;
  const readiness = (door: Door) =>
    readinessOf(door, {
      redis: () => (redis === undefined ? 'disabled' : redis.status === 'ready' ? 'ok' : 'down'),
      starship: () => starshipCredential.snapshot(),
      shuttingDown: () => shuttingDown,
    });
  const shared = { logger, metrics, tracing, trustProxy: config.http.trustProxy, version };
  const identifyUser = frontendAuth(config.frontendAuth, clock, metrics);
  const rateLimit = connectRateLimit({ perMinute: config.connectTokenRateLimit, redis, keyPrefix: config.redis?.keyPrefix ?? '' });

  const publicApp = createPublicApp({
    ...shared,
    readiness: readiness('public'),
    openapi: publicOpenApi(webhookProviders.filter((provider) => config.webhooks.secrets[provider].length > 0)),
    corsOrigins: config.http.corsOrigins,
    connectToken: {
      benji,
      policy: config.benji.connectPolicy,
      identifyUser,
      rateLimit,
    },
    // Links belong to verified users: without user auth there are none.
    benjiLinks: config.frontendAuth.mode === 'jwt' ? { links: benjiLinks, identifyUser, rateLimit } : undefined,
    webhooks: {
      queue: webhookQueue.queue,
      secrets: config.webhooks.secrets,
      toleranceS: config.webhooks.toleranceS,
      clock,
      metrics,
      tracing,
    },
  });
  const identifyService = serviceIdentifier(config.internalAuth.keys);
  const internalApp = createInternalApp({
    ...shared,
    readiness: readiness('internal'),
    openapi: internalOpenApi(),
    proxies: [
      {
        mountPath: '/v1/starship',
        upstream: starship,
        pool: starshipProxyPool,
        allow: config.starship.proxyAllow,
        credential: starshipCredential.credential,
        identifyService,
        clock,
      },
      {
        mountPath: '/v1/benji',
        upstream: benjiUpstream,
        pool: benjiProxyPool,
        allow: config.benji.proxyAllow,
        credential: benjiPartnerKey,
        identifyService,
        clock,
      },
      {
        mountPath: '/v1/benji-users',
        upstream: benjiUpstream,
        pool: benjiProxyPool,
        allow: config.benji.proxyAllow,
        credential: { perUser: (userId) => benjiLinks.credentialFor(userId) },
        identifyService,
        clock,
      },
    ],
    benjiLinks: { links: benjiLinks, authorize: internalAuth(identifyService) },
    webhookAdmin: {
      queue: webhookQueue.queue,
      clock,
      authorize: [internalAuth(identifyService), requireAdmin(config.internalAuth.adminCallers)],
    },
    admin: {
      session: starshipCredential.session,
      authorize: [internalAuth(identifyService), requireAdmin(config.internalAuth.adminCallers)],
    },
  });

  return {
    publicApp,
    internalApp,
    refuseConnect: refuseConnect(logger),
    logger,
    metrics,
    tracing,
    session: starshipCredential.session,
    redis,
    async warmUp() {
      deliveryWorker?.start();
      await starshipCredential.warmUp();
    },
    beginShutdown() {
      shuttingDown = true;
      // No new deliveries; the one in flight finishes before close() lets Redis go, within the
      // shutdown deadline (an unacknowledged delivery stays pending for another replica).
      stoppingWorker =
        deliveryWorker === undefined
          ? undefined
          : Promise.race([deliveryWorker.stop(), sleep(config.http.shutdownTimeoutMs, undefined, { ref: false })]);
    },
    async close() {
      await (stoppingWorker ?? deliveryWorker?.stop());
      webhookQueue.close();
      // Once the listeners have drained: whatever is still open upstream has no caller left.
      const pools = [benjiPool, benjiProxyPool, benjiAuthPool, starshipProxyPool, starshipAuthPool];
      await Promise.all(pools.map((pool) => pool.destroy()));
      if (redis !== undefined) await redis.quit().catch(() => redis.disconnect());
      await tracing.shutdown();
    },
  };
}

/**
 * Received webhooks: a Redis Stream when Redis is configured (the worker reads it on a connection of
 * its own, since its reads block), else memory for one replica, with a warning.
 */
function createWebhookQueue(config: Config, redis: RedisClient | undefined, clock: Clock, logger: Logger) {
  const maxLen = config.webhooks.streamMaxLen;
  const receiving = config.webhooks.secrets.benji.length > 0 || config.webhooks.secrets.starship.length > 0;
  if (redis === undefined || config.redis === undefined) {
    if (receiving) logger.warn('REDIS_URL unset: received webhooks are kept in process memory and lost on restart; run one replica only');
    return { queue: createMemoryWebhookQueue({ clock, maxLen }), close: () => undefined };
  }
  const workerRedis =
    config.webhooks.forward === undefined
      ? undefined
      : createRedisClient(config.redis.connection, logger, () => undefined, { blocking: true });
  return {
    queue: createRedisWebhookQueue({ redis, workerRedis, keyPrefix: config.redis.keyPrefix, maxLen }),
    close: () => workerRedis?.disconnect(),
  };
}

/** RedisClient shares state between replicas (secrets sealed at rest); without it, memory serves one replica. */
function sharedStore(config: Config, redis: RedisClient | undefined, clock: Clock, logger: Logger): SharedStore {
  if (redis === undefined || config.redis === undefined) {
    logger.warn(
      'REDIS_URL unset: Starship tokens and linked users’ Benji tokens live in process memory, lost on restart; run one replica only',
    );
    return createMemoryStore(clock);
  }
  return createRedisStore({ redis, keyPrefix: config.redis.keyPrefix, cipher: createTokenCipher(config.redis.encryptionKey), clock });
}

/**
 * Every secret value of the configuration, in the forms it could take in text: what an upstream
 * sends back is scrubbed of these before it is logged, and so is every log line.
 */
function configuredSecrets(config: Config): string[] {
  const secrets = [config.benji.apiKey];
  const { auth } = config.starship;
  if (auth.kind === 'session') secrets.push(auth.username, auth.password);
  else secrets.push(auth.apiKey, auth.apiSecret, ...(auth.signingSecret === undefined ? [] : [auth.signingSecret]));
  if (config.frontendAuth.mode === 'jwt' && config.frontendAuth.secret !== undefined) secrets.push(config.frontendAuth.secret);
  for (const { key } of config.internalAuth.keys) secrets.push(key);
  secrets.push(...config.webhooks.secrets.benji, ...config.webhooks.secrets.starship);
  const forwardSecret = config.webhooks.forward?.secret;
  if (forwardSecret !== undefined) secrets.push(`whsec_${forwardSecret.toString('base64')}`, forwardSecret.toString('base64'));
  const encryptionKey = config.redis?.encryptionKey;
  if (encryptionKey !== undefined) {
    // The variable may have been written padded or not, in base64 or base64url.
    const base64 = encryptionKey.toString('base64');
    secrets.push(base64, base64.replace(/=+$/, ''), encryptionKey.toString('base64url'));
  }
  const connection = config.redis?.connection;
  if (connection?.kind === 'url') {
    const redisPassword = new URL(connection.url).password;
    if (redisPassword !== '') secrets.push(redisPassword, decodedOrSame(redisPassword));
  } else if (connection !== undefined) {
    if (connection.password !== undefined) secrets.push(connection.password);
    if (connection.kind === 'sentinel' && connection.sentinelPassword !== undefined) secrets.push(connection.sentinelPassword);
  }
  return secrets;
}

function decodedOrSame(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
