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

/** Counts one connect-token call, or throws `rate_limited` once the caller is over the limit. */
export type ConnectRateLimit = (user: FrontendUser, ip: string | undefined) => Promise<{ limit: number; remaining: number }>;

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

  return async ({ userId }, ip) => {
    try {
      // User ids are hashed so that Redis holds no identifiers of people.
      const key = userId === undefined ? `ip:${ip ?? 'unknown'}` : `user:${hash('sha256', userId, 'base64url')}`;
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
