import { hash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '../errors.js';
import type { FrontendUser } from './frontend-auth.js';

export interface ConnectRateLimitOptions {
  perMinute: number;
  /** Shared counters for every replica; memory only when absent. */
  redis: Redis | undefined;
  keyPrefix: string;
}

/**
 * Counts one connect-token call, or throws `rate_limited` once the caller is over the limit. The
 * client IP is asked for only when there is no user to count (Express works it out on every read).
 */
export type ConnectRateLimit = (user: FrontendUser, ip: () => string | undefined) => Promise<{ limit: number; remaining: number }>;

/**
 * Connect tokens per minute per verified user (per client IP when anonymous). With Redis the count is
 * shared by all replicas; when Redis fails, each replica falls back to its own memory count rather
 * than failing the request — a limit that is briefly per-replica beats a 500.
 */
export function connectRateLimit({ perMinute, redis, keyPrefix }: ConnectRateLimitOptions): ConnectRateLimit {
  const memory = new RateLimiterMemory({ points: perMinute, duration: 60 });
  const limiter =
    redis === undefined
      ? memory
      : new RateLimiterRedis({
          storeClient: redis,
          points: perMinute,
          duration: 60,
          keyPrefix: `${keyPrefix}ratelimit:connect`,
          insuranceLimiter: memory,
          rejectIfRedisNotReady: true,
        });

  // User ids are hashed so that Redis holds no identifiers of people. A user's calls come in runs,
  // so the hashes of recent users are kept (a SHA-256 per call was ~1% of a call's CPU).
  const userKeys = new Map<string, string>();
  const userKey = (userId: string): string => {
    let key = userKeys.get(userId);
    if (key === undefined) {
      key = `user:${hash('sha256', userId, 'base64url')}`;
      if (userKeys.size >= 10_000) userKeys.clear();
      userKeys.set(userId, key);
    }
    return key;
  };

  return async ({ userId }, ip) => {
    try {
      const key = userId === undefined ? `ip:${ip() ?? 'unknown'}` : userKey(userId);
      const result = await limiter.consume(key);
      return { limit: perMinute, remaining: result.remainingPoints };
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      throw new AppError('rate_limited', `At most ${perMinute} connect tokens per minute; try again later.`, {
        retryAfterS: Math.max(1, Math.ceil(error.msBeforeNext / 1000)),
      });
    }
  };
}
