import { hash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { RedisClient } from '../../redis.js';
import { AppError } from '../../errors.js';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { FrontendUser } from './frontend-auth.js';

export interface ConnectRateLimitOptions {
  perMinute: number;
  /** Shared counters for every replica; memory only when absent. */
  redis: RedisClient | undefined;
  keyPrefix: string;
}

/** Where a caller stands after one more call was counted, for the `ratelimit-*` headers. */
export interface RateLimitVerdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window ends and the full budget is back. */
  resetS: number;
}

/**
 * Counts one connect-token call: one Redis round trip, the same whether it is allowed or not. The
 * client IP is asked for only when there is no user to count (Express works it out on every read).
 */
export type ConnectRateLimit = (user: FrontendUser, ip: () => string | undefined) => Promise<RateLimitVerdict>;

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

  // User ids are hashed so that Redis holds no identifiers of people.
  const userKey = (userId: string) => `user:${hash('sha256', userId, 'base64url')}`;

  return async ({ userId }, ip) => {
    const key = userId === undefined ? `ip:${ip() ?? 'unknown'}` : userKey(userId);
    let result: RateLimiterRes;
    let allowed = true;
    try {
      result = await limiter.consume(key);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      result = error;
      allowed = false;
    }
    return { allowed, limit: perMinute, remaining: result.remainingPoints, resetS: Math.max(1, Math.ceil(result.msBeforeNext / 1000)) };
  };
}

/**
 * Counts one call of `user` and sets the `ratelimit-*` headers; throws `rate_limited` (with
 * Retry-After) when they are over the limit. `what` names what is limited, for the detail.
 */
export async function enforceRateLimit(rateLimit: ConnectRateLimit, user: FrontendUser, req: Request, res: Response, what: string) {
  const { allowed, limit, remaining, resetS } = await rateLimit(user, () => req.ip);
  res.setHeader('ratelimit-limit', String(limit));
  res.setHeader('ratelimit-remaining', String(remaining));
  res.setHeader('ratelimit-reset', String(resetS));
  if (!allowed)
    throw new AppError('rate_limited', `At most ${limit} ${what} per minute; try again in ${resetS} s.`, { retryAfterS: resetS });
}
