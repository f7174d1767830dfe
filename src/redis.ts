import { Redis } from 'ioredis';
import type { Logger } from './observability/logger.js';

/**
 * One Redis connection shared by the whole broker. It fails fast instead of queueing: with Redis
 * down, commands reject at once (no offline queue, short timeouts) and callers fall back to what
 * they hold in memory, so no request ever waits behind a dead Redis.
 */
export function createRedisClient(url: string, logger: Logger, onError: () => void = () => undefined): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    // Commands issued in the same tick (a burst of rate-limit checks) go out in one write.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    commandTimeout: 500,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    lazyConnect: false,
  });
  // Log changes of state, not every failed reconnect attempt.
  let healthy = true;
  redis.on('ready', () => {
    if (!healthy) logger.info('redis reconnected');
    healthy = true;
  });
  redis.on('error', (error: Error & { code?: string }) => {
    onError();
    if (healthy) logger.warn({ reason: error.code ?? error.message }, 'redis unavailable');
    healthy = false;
  });
  return redis;
}
