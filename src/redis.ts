import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisConnectionConfig } from './config/load-config.js';
import type { Logger } from './observability/logger.js';

/** One Redis, a Sentinel-managed primary, or a cluster: the same commands on each. */
export type RedisClient = Redis | Cluster;

/**
 * One Redis connection shared by the whole broker (and, with `blocking`, one for a worker whose reads block). It fails fast instead of queueing: with Redis
 * down, commands reject at once (no offline queue, short timeouts) and callers fall back to what
 * they hold in memory, so no request ever waits behind a dead Redis.
 */
export function createRedisClient(
  connection: RedisConnectionConfig,
  logger: Logger,
  onError: () => void = () => undefined,
  { blocking = false }: { blocking?: boolean } = {},
): RedisClient {
  const options: RedisOptions = {
    enableOfflineQueue: false,
    // Commands issued in the same tick (a burst of rate-limit checks) go out in one write.
    enableAutoPipelining: !blocking,
    maxRetriesPerRequest: 0,
    // A blocking read (the webhook worker's XREADGROUP BLOCK) waits longer than any command should.
    commandTimeout: blocking ? 5_000 : 500,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    lazyConnect: false,
  };
  const tls = connection.kind !== 'url' && connection.tls ? { tls: {} } : {};
  let redis: RedisClient;
  if (connection.kind === 'url') redis = new Redis(connection.url, options);
  else if (connection.kind === 'sentinel') {
    redis = new Redis({
      ...options,
      ...tls,
      sentinels: connection.sentinels.map(({ host, port }) => ({ host, port })),
      name: connection.name,
      ...(connection.password !== undefined && { password: connection.password }),
      ...(connection.sentinelPassword !== undefined && { sentinelPassword: connection.sentinelPassword }),
      ...(connection.tls && { enableTLSForSentinelMode: true, sentinelTLS: {} }),
      // A failover is a reconnect to the newly promoted primary, found by asking the sentinels again.
      sentinelRetryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    });
  } else {
    const { enableOfflineQueue, enableAutoPipelining, retryStrategy: _perNode, ...nodeOptions } = options;
    redis = new Cluster(
      connection.nodes.map(({ host, port }) => ({ host, port })),
      {
        enableOfflineQueue,
        enableAutoPipelining,
        clusterRetryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
        // Managed clusters with TLS announce host names their certificates are issued for: connect
        // by name, not by the address it resolves to (ioredis's advice for ElastiCache and alike).
        ...(connection.tls && {
          dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address),
        }),
        redisOptions: { ...nodeOptions, ...tls, ...(connection.password !== undefined && { password: connection.password }) },
      },
    );
  }
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

const firstReadiness = new WeakMap<RedisClient, Promise<void>>();

/**
 * Resolves once `redis` has connected for the first time, or after `timeoutMs`; at once after that.
 * Until the first connection a failing command means "still connecting", not "Redis is down".
 */
export function firstConnection(redis: RedisClient, timeoutMs: number): Promise<void> {
  let wait = firstReadiness.get(redis);
  if (wait === undefined) {
    wait =
      redis.status === 'ready'
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              redis.off('ready', done);
              resolve();
            };
            const timer = setTimeout(done, timeoutMs);
            redis.once('ready', done);
          });
    firstReadiness.set(redis, wait);
  }
  return wait;
}
