import type { Express } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from './config/load-config.js';
import type { Readiness } from './http/base-app.js';
import { connectRateLimit } from './http/connect-rate-limit.js';
import { frontendAuth } from './http/frontend-auth.js';
import { createInternalApp } from './http/internal-app.js';
import { createPublicApp } from './http/public-app.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createRedisClient } from './redis.js';
import { createBenjiClient } from './upstream/benji/benji-client.js';

/** Stand-ins a test may pass instead of what the config would build. */
export interface BrokerOverrides {
  logger?: Logger;
}

export interface Broker {
  readonly publicApp: Express;
  readonly internalApp: Express;
  readonly logger: Logger;
  /** Readiness turns 503 so load balancers stop sending; in-flight requests carry on. */
  beginShutdown(): void;
  /** Releases connections (Redis, upstream pools). Call after the listeners have closed. */
  close(): Promise<void>;
}

/** The composition root: every collaborator is built here, by hand, from the config. */
export function createBroker(config: Config, overrides: BrokerOverrides = {}): Broker {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  const redis: Redis | undefined = config.redis === undefined ? undefined : createRedisClient(config.redis.url, logger);
  const benji = createBenjiClient(config.benji);

  if (config.frontendAuth.mode === 'none') {
    logger.warn('FRONTEND_AUTH=none: connect tokens are issued to anonymous callers, without a user id');
  }

  let shuttingDown = false;
  const readiness = (): Readiness => {
    const checks = { redis: redis === undefined ? 'disabled' : redis.status === 'ready' ? 'ok' : 'down' };
    if (shuttingDown) return { status: 'shutting_down', checks };
    return { status: checks.redis === 'down' ? 'degraded' : 'ok', checks };
  };
  const shared = { logger, trustProxy: config.http.trustProxy, readiness };

  const publicApp = createPublicApp({
    ...shared,
    corsOrigins: config.http.corsOrigins,
    connectToken: {
      benji,
      policy: {
        displayName: config.benji.displayName,
        allowedModes: config.benji.allowedModes,
        maxTransferAmount: config.benji.maxTransferAmount,
      },
      authenticate: frontendAuth(config.frontendAuth),
      rateLimit: connectRateLimit({ perMinute: config.connectTokenRateLimit, redis, keyPrefix: config.redis?.keyPrefix ?? '' }),
    },
  });
  const internalApp = createInternalApp(shared);

  return {
    publicApp,
    internalApp,
    logger,
    beginShutdown() {
      shuttingDown = true;
    },
    async close() {
      await benji.close();
      if (redis !== undefined) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
