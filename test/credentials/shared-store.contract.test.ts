import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/credentials/stores/memory-store.js';
import { createRedisStore } from '../../src/credentials/stores/redis-store.js';
import type { SharedStore } from '../../src/credentials/stores/shared-store.js';
import { createTokenCipher, type TokenCipher } from '../../src/credentials/stores/token-cipher.js';
import { createLogger } from '../../src/observability/logger.js';
import { createRedisClient } from '../../src/redis.js';
import { captureLogs } from '../support/log-capture.js';
import { startPrivateRedis } from '../support/private-redis.js';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../support/redis.js';

/*
 * One contract for both stores credentials share state through (memory for one replica, Redis for
 * many), then what only the Redis store promises: sealed secrets, TTLs, distrust of what it finds.
 */

const hour = 3_600_000;
const silent = createLogger({ level: 'silent', destination: captureLogs().stream });
// The broker's own client (no offline queue): commands sent before 'ready' would reject.
const redis = createRedisClient({ kind: 'url', url: testRedisUrl }, silent);
const cipher = createTokenCipher(randomBytes(32));

beforeAll(async () => {
  if (redis.status !== 'ready') await once(redis, 'ready');
});
afterAll(async () => {
  await redis.quit();
});

interface FakeClock {
  now: () => number;
  advance: (ms: number) => void;
}

/** Starts at real time so that Redis TTLs computed from it are meaningful. */
function fakeClock(): FakeClock {
  let now = Date.now();
  return { now: () => now, advance: (ms) => (now += ms) };
}

function redisStore(prefix: string, clock: () => number, storeCipher: TokenCipher = cipher): SharedStore {
  return createRedisStore({ redis, keyPrefix: prefix, cipher: storeCipher, clock });
}

async function poll(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return check();
}

interface Harness {
  store: SharedStore;
  /** The store's clock: expiries are judged by it in both stores. */
  clock: FakeClock;
  lockTtlMs: number;
  /** Lets a lock of lockTtlMs run out (memory: the clock; Redis: real time), then whether `take` succeeds. */
  afterLockExpiry(take: () => Promise<boolean>): Promise<boolean>;
  cleanup(): Promise<void>;
}

const backends: Array<{ name: string; setup: () => Harness }> = [
  {
    name: 'memory',
    setup: () => {
      const clock = fakeClock();
      return {
        store: createMemoryStore(clock.now),
        clock,
        lockTtlMs: 5_000,
        afterLockExpiry: async (take) => {
          clock.advance(4_999);
          if (await take()) throw new Error('lock taken before its ttl ran out');
          clock.advance(1);
          return take();
        },
        cleanup: async () => {},
      };
    },
  },
  {
    name: 'redis',
    setup: () => {
      const clock = fakeClock();
      const prefix = uniquePrefix();
      return {
        store: redisStore(prefix, clock.now),
        clock,
        lockTtlMs: 50,
        afterLockExpiry: (take) => poll(take, 1_000),
        cleanup: () => deleteKeys(redis, prefix),
      };
    },
  },
];

describe.each(backends)('$name store', ({ setup }) => {
  let h: Harness;
  beforeEach(() => {
    h = setup();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('reads nothing when empty', async () => {
    expect(await h.store.get('a:value')).toBeUndefined();
    expect(await h.store.getSecret('a:secret')).toBeUndefined();
  });

  it('reads back what it wrote, values and secrets alike, and overwrites', async () => {
    await h.store.set('a:value', 'one', h.clock.now() + hour);
    await h.store.setSecret('a:secret', 'token-one', h.clock.now() + hour);
    expect(await h.store.get('a:value')).toBe('one');
    expect(await h.store.getSecret('a:secret')).toBe('token-one');
    await h.store.setSecret('a:secret', 'token-two', h.clock.now() + hour);
    expect(await h.store.getSecret('a:secret')).toBe('token-two');
  });

  it('does not keep a value already expired when written, nor the one before it; deletes on request', async () => {
    const now = h.clock.now();
    await h.store.setSecret('a:secret', 'old', now + hour);
    await h.store.setSecret('a:secret', 'new', now - 1);
    expect(await h.store.getSecret('a:secret')).toBeUndefined();
    await h.store.set('a:value', 'x', now + hour);
    await h.store.delete('a:value');
    expect(await h.store.get('a:value')).toBeUndefined();
  });

  it('keeps names apart', async () => {
    await h.store.set('a:value', 'a', h.clock.now() + hour);
    expect(await h.store.get('b:value')).toBeUndefined();
  });

  it('gives a lock to one owner at a time, released only by its owner, locks by name', async () => {
    expect(await h.store.acquireLock('a:lock', 'a', 60_000)).toBe(true);
    expect(await h.store.acquireLock('a:lock', 'b', 60_000)).toBe(false);
    expect(await h.store.acquireLock('b:lock', 'b', 60_000)).toBe(true);
    await h.store.releaseLock('a:lock', 'b');
    expect(await h.store.acquireLock('a:lock', 'b', 60_000)).toBe(false);
    await h.store.releaseLock('a:lock', 'a');
    expect(await h.store.acquireLock('a:lock', 'b', 60_000)).toBe(true);
    expect(await h.store.acquireLock('a:lock', 'a', 60_000)).toBe(false);
  });

  it('lets a lock go once its ttl has run out', async () => {
    expect(await h.store.acquireLock('a:lock', 'a', h.lockTtlMs)).toBe(true);
    expect(await h.afterLockExpiry(() => h.store.acquireLock('a:lock', 'b', 60_000))).toBe(true);
  });
});

describe('memory store', () => {
  // Redis expires keys by its own clock, from a TTL set by ours (below): what it holds carries its own
  // expiry where it matters (a session's refresh token, a cooldown's end), judged by the credential.
  it('forgets a value once it expires, by the injected clock', async () => {
    const clock = fakeClock();
    const store = createMemoryStore(clock.now);
    await store.setSecret('a:secret', 'token', clock.now() + hour);
    await store.set('a:value', 'x', clock.now() + 60_000);
    clock.advance(59_999);
    expect(await store.get('a:value')).toBe('x');
    clock.advance(1);
    expect(await store.get('a:value')).toBeUndefined();
    clock.advance(hour);
    expect(await store.getSecret('a:secret')).toBeUndefined();
  });
});

describe('redis store, in Redis', () => {
  const prefixes: string[] = [];
  function prefixed(): string {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    return prefix;
  }
  afterEach(async () => {
    await Promise.all(prefixes.splice(0).map((prefix) => deleteKeys(redis, prefix)));
  });

  it('seals secrets (values stay plain), with a Redis expiry from the broker’s clock', async () => {
    const prefix = prefixed();
    const now = Date.now();
    const store = redisStore(prefix, () => now);
    await store.setSecret('starship:session', 'access-token-9f1c refresh-token-2b7e', now + hour);
    await store.set('starship:cooldown', 'plain', now + 60_000);

    const stored = (await redis.get(`${prefix}starship:session`)) ?? '';
    expect(stored).toMatch(/^v2\./);
    expect(stored).not.toContain('access-token-9f1c');
    expect(await redis.get(`${prefix}starship:cooldown`)).toBe('plain');
    const pttl = await redis.pttl(`${prefix}starship:session`);
    expect(pttl).toBeGreaterThan(hour - 5_000);
    expect(pttl).toBeLessThanOrEqual(hour);
    expect(await redis.pttl(`${prefix}starship:cooldown`)).toBeGreaterThan(55_000);
  });

  it('opens a secret only with its key, under its own key name: copied to another name or prefix, or tampered, it reads as absent', async () => {
    const [prefix, other] = [prefixed(), prefixed()];
    const store = redisStore(prefix, Date.now);
    await store.setSecret('benji:link:a', 'user-a-tokens', Date.now() + hour);
    const blob = (await redis.get(`${prefix}benji:link:a`)) ?? '';

    await redis.set(`${prefix}benji:link:b`, blob);
    expect(await store.getSecret('benji:link:b')).toBeUndefined();
    await redis.set(`${other}benji:link:a`, blob);
    expect(await redisStore(other, Date.now).getSecret('benji:link:a')).toBeUndefined();
    expect(await redisStore(prefix, Date.now, createTokenCipher(randomBytes(32))).getSecret('benji:link:a')).toBeUndefined();

    const parts = blob.split('.');
    parts[4] = (parts[4]?.startsWith('A') ? 'B' : 'A') + (parts[4]?.slice(1) ?? '');
    await redis.set(`${prefix}benji:link:a`, parts.join('.'));
    expect(await store.getSecret('benji:link:a')).toBeUndefined();
  });

  it('gives a lock its own Redis expiry, and a lock with no ttl, or a longer one than it would set, its own ttl', async () => {
    const prefix = prefixed();
    const key = `${prefix}starship:lock`;
    const store = redisStore(prefix, Date.now);
    await store.acquireLock('starship:lock', 'a', 30_000);
    expect(await redis.get(key)).toBe('a');
    expect(await redis.pttl(key)).toBeGreaterThan(25_000);
    await redis.del(key);

    for (const foreign of [() => redis.set(key, 'stuck'), () => redis.set(key, 'stuck', 'PX', 3_600_000)]) {
      await foreign();
      expect(await store.acquireLock('starship:lock', 'a', 30_000)).toBe(false);
      expect(await redis.get(key)).toBe('stuck');
      const pttl = await redis.pttl(key);
      expect(pttl).toBeGreaterThan(25_000);
      expect(pttl).toBeLessThanOrEqual(30_000);
    }
    // A lock a broker could have set is left as it is.
    await redis.set(key, 'other-replica', 'PX', 20_000);
    expect(await store.acquireLock('starship:lock', 'a', 30_000)).toBe(false);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(20_000);
  });

  it('ignores a value or a secret over 64 KiB as corrupt', async () => {
    const prefix = prefixed();
    const store = redisStore(prefix, Date.now);
    const sealed = (text: string) => cipher.encrypt(text, `${prefix}starship:session`);
    await redis.set(`${prefix}starship:session`, sealed('x'.repeat(1_000)));
    expect(await store.getSecret('starship:session')).toBe('x'.repeat(1_000));
    await redis.set(`${prefix}starship:session`, sealed('x'.repeat(64 * 1024)));
    expect(await store.getSecret('starship:session')).toBeUndefined();

    await redis.set(`${prefix}starship:cooldown`, 'y'.repeat(64 * 1024));
    expect(await store.get('starship:cooldown')).toBe('y'.repeat(64 * 1024));
    await redis.set(`${prefix}starship:cooldown`, 'y'.repeat(64 * 1024 + 1));
    expect(await store.get('starship:cooldown')).toBeUndefined();
  });

  it('keeps stores under different prefixes apart', async () => {
    const first = redisStore(prefixed(), Date.now);
    const second = redisStore(prefixed(), Date.now);
    await first.setSecret('starship:session', 'tokens', Date.now() + hour);
    await first.set('starship:cooldown', 'x', Date.now() + 60_000);
    expect(await first.acquireLock('starship:lock', 'a', 60_000)).toBe(true);

    expect(await second.getSecret('starship:session')).toBeUndefined();
    expect(await second.get('starship:cooldown')).toBeUndefined();
    expect(await second.acquireLock('starship:lock', 'b', 60_000)).toBe(true);
  });

  it('knows when it is connected, waits for the first connection, and calls onReconnect after a restart', async () => {
    const server = await startPrivateRedis();
    const client = createRedisClient({ kind: 'url', url: server.url }, silent);
    try {
      const store = createRedisStore({ redis: client, keyPrefix: prefixed(), cipher, clock: Date.now });
      expect(store.connected()).toBe(false); // still connecting
      await store.firstConnection(5_000);
      expect(store.connected()).toBe(true);

      const reconnected = new Promise<void>((resolve) => store.onReconnect(resolve));
      await server.stop();
      expect(await poll(async () => !store.connected(), 5_000)).toBe(true);
      await server.start();
      await reconnected;
      expect(store.connected()).toBe(true);
      await store.set('a:value', 'x', Date.now() + 60_000);
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it('fails fast when Redis is unreachable: commands reject instead of queueing, the first-connection wait is bounded', async () => {
    const client = createRedisClient({ kind: 'url', url: 'redis://127.0.0.1:1' }, silent);
    try {
      const store = createRedisStore({ redis: client, keyPrefix: prefixed(), cipher, clock: Date.now });
      // The rejection comes from the disabled offline queue: nothing waits for a connection.
      await expect(store.getSecret('starship:session')).rejects.toThrow(/enableOfflineQueue/);
      await expect(store.setSecret('starship:session', 'x', Date.now() + hour)).rejects.toThrow(/enableOfflineQueue/);
      await expect(store.acquireLock('starship:lock', 'a', 1_000)).rejects.toThrow(/enableOfflineQueue/);
      await store.firstConnection(50);
      expect(store.connected()).toBe(false);
    } finally {
      client.disconnect();
    }
  });
});
