import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';

export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own per test, so tests never see each other's keys on a shared Redis. */
export function uniquePrefix(): string {
  return `{test:${randomUUID()}}:`;
}

/** A plain client for tests to look into Redis; remember to `deleteKeys` and `quit`. */
export function inspectRedis(): Redis {
  return new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
}

/** Deletes every key under `prefix`: on each primary of a cluster, or on the one server. */
export async function deleteKeys(redis: Redis | Cluster, prefix: string): Promise<void> {
  const servers = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const server of servers) {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 500);
      for (const key of keys) await server.del(key);
      cursor = next;
    } while (cursor !== '0');
  }
}

/** Hash-tag braces and other glob characters in a prefix match themselves. */
const escapeGlob = (text: string) => text.replace(/[*?[\]\\]/g, '\\$&');
