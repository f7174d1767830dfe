import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { captureLogs } from '../support/log-capture.js';
import { createRedisClient } from '../../src/redis.js';
import { createMemoryTokenStore } from '../../src/tokens/memory-token-store.js';
import { createRedisTokenStore } from '../../src/tokens/redis-token-store.js';
import { createTokenCipher, type TokenCipher } from '../../src/tokens/token-cipher.js';
import type { TokenSet } from '../../src/tokens/token-set.js';
import type { TokenStore } from '../../src/tokens/token-store.js';
import { startPrivateRedis } from '../support/private-redis.js';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../support/redis.js';

const hour = 3_600_000;
const silent = createLogger({ level: 'silent', destination: captureLogs().stream });
// The broker's own client (no offline queue): commands sent before 'ready' would reject.
const redis = createRedisClient(testRedisUrl, silent);
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

function tokenSet(now: number, overrides: Partial<TokenSet> = {}): TokenSet {
  return {
    accessToken: `access-${randomBytes(8).toString('hex')}`,
    refreshToken: `refresh-${randomBytes(8).toString('hex')}`,
    accessExpiresAt: now + 15 * 60_000,
    refreshExpiresAt: now + hour,
    obtainedAt: now,
    clientId: 'broker-client',
    ...overrides,
  };
}

function redisStore(prefix: string, clock: () => number, storeCipher: TokenCipher = cipher): TokenStore {
  return createRedisTokenStore({ redis, keyPrefix: prefix, cipher: storeCipher, clock });
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
  store: TokenStore;
  /** The store's clock: session and cooldown expiry are judged by it in both stores. */
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
        store: createMemoryTokenStore(clock.now),
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

describe.each(backends)('$name token store', ({ setup }) => {
  let h: Harness;
  beforeEach(() => {
    h = setup();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('reads nothing when empty', async () => {
    expect(await h.store.read()).toBeUndefined();
    expect(await h.store.readCooldown()).toBeUndefined();
  });

  it('reads back what it wrote, every field', async () => {
    const tokens = tokenSet(h.clock.now());
    await h.store.write(tokens);
    expect(await h.store.read()).toEqual(tokens);
  });

  it('overwrites the previous set', async () => {
    await h.store.write(tokenSet(h.clock.now()));
    const newer = tokenSet(h.clock.now(), { clientId: 'other-client' });
    await h.store.write(newer);
    expect(await h.store.read()).toEqual(newer);
  });

  it('forgets the session once its refresh token expires', async () => {
    await h.store.write(tokenSet(h.clock.now()));
    h.clock.advance(hour - 1);
    expect(await h.store.read()).toBeDefined();
    h.clock.advance(1);
    expect(await h.store.read()).toBeUndefined();
  });

  it('does not keep a set that is already expired when written, nor the one before it', async () => {
    const now = h.clock.now();
    await h.store.write(tokenSet(now));
    await h.store.write(tokenSet(now, { refreshExpiresAt: now - 1 }));
    expect(await h.store.read()).toBeUndefined();
  });

  it('gives the lock to one owner at a time, released only by its owner', async () => {
    expect(await h.store.acquireLock('a', 60_000)).toBe(true);
    expect(await h.store.acquireLock('b', 60_000)).toBe(false);
    await h.store.releaseLock('b');
    expect(await h.store.acquireLock('b', 60_000)).toBe(false);
    await h.store.releaseLock('a');
    expect(await h.store.acquireLock('b', 60_000)).toBe(true);
    expect(await h.store.acquireLock('a', 60_000)).toBe(false);
  });

  it('lets the lock go once its ttl has run out', async () => {
    expect(await h.store.acquireLock('a', h.lockTtlMs)).toBe(true);
    expect(await h.afterLockExpiry(() => h.store.acquireLock('b', 60_000))).toBe(true);
  });

  it('keeps the cooldown until it ends', async () => {
    const cooldown = { until: h.clock.now() + 60_000, reason: 'throttled' } as const;
    await h.store.writeCooldown(cooldown);
    expect(await h.store.readCooldown()).toEqual(cooldown);
    h.clock.advance(59_999);
    expect(await h.store.readCooldown()).toEqual(cooldown);
    h.clock.advance(1);
    expect(await h.store.readCooldown()).toBeUndefined();
  });
});

describe('redis token store, in Redis', () => {
  const prefixes: string[] = [];
  function prefixed(): string {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    return prefix;
  }
  afterEach(async () => {
    await Promise.all(prefixes.splice(0).map((prefix) => deleteKeys(redis, prefix)));
  });

  it('stores the session encrypted, expiring with the refresh token', async () => {
    const prefix = prefixed();
    const now = Date.now();
    const tokens = tokenSet(now);
    await redisStore(prefix, () => now).write(tokens);

    const stored = (await redis.get(`${prefix}starship:session`)) ?? '';
    expect(stored).toMatch(/^v2\./);
    expect(stored).not.toContain(tokens.accessToken);
    expect(stored).not.toContain(tokens.refreshToken);
    const pttl = await redis.pttl(`${prefix}starship:session`);
    expect(pttl).toBeGreaterThan(hour - 5_000);
    expect(pttl).toBeLessThanOrEqual(hour);
  });

  it('deletes the session key when the set written is already expired', async () => {
    const prefix = prefixed();
    const store = redisStore(prefix, Date.now);
    await store.write(tokenSet(Date.now()));
    await store.write(tokenSet(Date.now(), { refreshExpiresAt: Date.now() - 1 }));
    expect(await redis.exists(`${prefix}starship:session`)).toBe(0);
  });

  it('gives the lock and the cooldown Redis expiries of their own', async () => {
    const prefix = prefixed();
    const now = Date.now();
    const store = redisStore(prefix, () => now);
    await store.acquireLock('a', 30_000);
    await store.writeCooldown({ until: now + 60_000, reason: 'credentials_rejected' });
    expect(await redis.get(`${prefix}starship:lock`)).toBe('a');
    expect(await redis.pttl(`${prefix}starship:lock`)).toBeGreaterThan(25_000);
    expect(await redis.pttl(`${prefix}starship:cooldown`)).toBeGreaterThan(55_000);

    await store.writeCooldown({ until: now - 1, reason: 'throttled' });
    expect(await redis.exists(`${prefix}starship:cooldown`)).toBe(0);
  });

  it('reads nothing from a session written under another key', async () => {
    const prefix = prefixed();
    await redisStore(prefix, Date.now).write(tokenSet(Date.now()));
    expect(await redisStore(prefix, Date.now, createTokenCipher(randomBytes(32))).read()).toBeUndefined();
  });

  it('reads nothing from a tampered or invalid session', async () => {
    const prefix = prefixed();
    const key = `${prefix}starship:session`;
    const store = redisStore(prefix, Date.now);
    await store.write(tokenSet(Date.now()));
    const parts = ((await redis.get(key)) ?? '').split('.');
    parts[4] = (parts[4]?.startsWith('A') ? 'B' : 'A') + (parts[4]?.slice(1) ?? '');
    await redis.set(key, parts.join('.'));
    expect(await store.read()).toBeUndefined();

    // Decrypts fine, but is not a TokenSet.
    await redis.set(key, cipher.encrypt(JSON.stringify({ accessToken: 'a', refreshExpiresAt: Date.now() + hour }), key));
    expect(await store.read()).toBeUndefined();
    await redis.set(key, cipher.encrypt('not json', key));
    expect(await store.read()).toBeUndefined();
  });

  it('gives a lock with no ttl, or a longer one than it would set, its own ttl instead of waiting on it forever', async () => {
    const prefix = prefixed();
    const key = `${prefix}starship:lock`;
    const store = redisStore(prefix, Date.now);
    for (const foreign of [() => redis.set(key, 'stuck'), () => redis.set(key, 'stuck', 'PX', 3_600_000)]) {
      await foreign();
      expect(await store.acquireLock('a', 30_000)).toBe(false);
      expect(await redis.get(key)).toBe('stuck');
      const pttl = await redis.pttl(key);
      expect(pttl).toBeGreaterThan(25_000);
      expect(pttl).toBeLessThanOrEqual(30_000);
    }
    // A lock a broker could have set is left as it is.
    await redis.set(key, 'other-replica', 'PX', 20_000);
    expect(await store.acquireLock('a', 30_000)).toBe(false);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(20_000);
  });

  it('ignores a session or cooldown over 64 KiB as corrupt, however well formed', async () => {
    const prefix = prefixed();
    const store = redisStore(prefix, Date.now);
    const sessionKey = `${prefix}starship:session`;
    const tokens = tokenSet(Date.now());
    const padded = (extra: number) => cipher.encrypt(JSON.stringify({ ...tokens, padding: 'x'.repeat(extra) }), sessionKey);
    await redis.set(sessionKey, padded(1_000));
    expect(await store.read()).toEqual(tokens);
    await redis.set(sessionKey, padded(64 * 1024));
    expect(await store.read()).toBeUndefined();

    const cooldown = { until: Date.now() + 60_000, reason: 'throttled' };
    await redis.set(`${prefix}starship:cooldown`, JSON.stringify({ ...cooldown, padding: 'x'.repeat(1_000) }));
    expect(await store.readCooldown()).toEqual(cooldown);
    await redis.set(`${prefix}starship:cooldown`, JSON.stringify({ ...cooldown, padding: 'x'.repeat(64 * 1024) }));
    expect(await store.readCooldown()).toBeUndefined();
  });

  it('keeps stores under different prefixes apart', async () => {
    const first = redisStore(prefixed(), Date.now);
    const second = redisStore(prefixed(), Date.now);
    await first.write(tokenSet(Date.now()));
    await first.writeCooldown({ until: Date.now() + 60_000, reason: 'throttled' });
    expect(await first.acquireLock('a', 60_000)).toBe(true);

    expect(await second.read()).toBeUndefined();
    expect(await second.readCooldown()).toBeUndefined();
    expect(await second.acquireLock('b', 60_000)).toBe(true);
  });

  it('knows when it is connected, waits for the first connection, and calls onReconnect after a restart', async () => {
    const server = await startPrivateRedis();
    const client: Redis = createRedisClient(server.url, silent);
    try {
      const store = createRedisTokenStore({ redis: client, keyPrefix: prefixed(), cipher, clock: Date.now });
      expect(store.connected()).toBe(false); // still connecting
      await store.firstConnection(5_000);
      expect(store.connected()).toBe(true);

      const reconnected = new Promise<void>((resolve) => store.onReconnect(resolve));
      await server.stop();
      expect(await poll(async () => !store.connected(), 5_000)).toBe(true);
      await server.start();
      await reconnected;
      expect(store.connected()).toBe(true);
      await store.write(tokenSet(Date.now()));
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it('fails fast when Redis is unreachable: commands reject instead of queueing, the first-connection wait is bounded', async () => {
    const client = createRedisClient('redis://127.0.0.1:1', silent);
    try {
      const store = createRedisTokenStore({ redis: client, keyPrefix: prefixed(), cipher, clock: Date.now });
      // The rejection comes from the disabled offline queue: nothing waits for a connection.
      await expect(store.read()).rejects.toThrow(/enableOfflineQueue/);
      await expect(store.write(tokenSet(Date.now()))).rejects.toThrow(/enableOfflineQueue/);
      await expect(store.acquireLock('a', 1_000)).rejects.toThrow(/enableOfflineQueue/);
      await store.firstConnection(50);
      expect(store.connected()).toBe(false);
    } finally {
      client.disconnect();
    }
  });
});
