import { Redis } from 'ioredis';
import { testRedisUrl } from './redis.js';

/** Redis is a real part of the product: without one the suite fails here, loudly, instead of skipping. */
export default async function checkRedis(): Promise<void> {
  const redis = new Redis(testRedisUrl, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`Tests need a Redis at ${testRedisUrl} (set TEST_REDIS_URL to use another): ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    redis.disconnect();
  }
}
