import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own per test, so tests never see each other's keys on a shared Redis. */
export function uniquePrefix(): string {
  return `test:${randomUUID()}:`;
}

/** A plain client for tests to look into Redis; remember to `deleteKeys` and `quit`. */
export function inspectRedis(): Redis {
  return new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
}

export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}
