import { firstConnection, type RedisClient } from '../../redis.js';
import type { Clock } from '../../clock.js';
import type { TokenCipher } from './token-cipher.js';
import { maxStoredValueBytes, type SharedStore } from './shared-store.js';

export interface RedisStoreOptions {
  redis: RedisClient;
  /** Prepended to every name, so several brokers (or tests) can share one Redis. */
  keyPrefix: string;
  /** Seals secrets before they leave the process: Redis is not trusted with tokens. */
  cipher: TokenCipher;
  clock: Clock;
}

// Delete only while the lock still names us: after our ttl ran out someone else may hold it.
const releaseLockScript = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

// Take the lock if free. A lock held with no ttl, or a longer one than ours, was not set by a broker
// (a manual SET, a hostile or restored Redis): it gets our ttl, so it lapses within a normal wait
// instead of blocking every renewal until someone deletes it.
const acquireLockScript = `
if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 or ttl > tonumber(ARGV[2]) then redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0`;

// Read a value only up to the size limit, so an oversized one never crosses the wire.
const boundedGetScript = `if redis.call('strlen', KEYS[1]) > tonumber(ARGV[1]) then return false end
return redis.call('get', KEYS[1])`;

/**
 * The store shared by replicas. Secrets are sealed for their full key name (prefix included), so a
 * blob copied to another key or prefix does not open. Redis errors reject: the caller decides what
 * to do without shared state. Redis expires keys by its own clock; the TTL is set from ours.
 */
export function createRedisStore({ redis, keyPrefix, cipher, clock }: RedisStoreOptions): SharedStore {
  const key = (name: string) => `${keyPrefix}${name}`;
  // Ready now: the store never waits for a first connection (firstConnection remembers per client).
  if (redis.status === 'ready') void firstConnection(redis, 0);

  async function get(name: string): Promise<string | undefined> {
    return ((await redis.eval(boundedGetScript, 1, key(name), maxStoredValueBytes)) as string | null) ?? undefined;
  }
  async function set(name: string, value: string, expiresAt: number): Promise<void> {
    const ttlMs = Math.ceil(expiresAt - clock());
    if (ttlMs > 0) await redis.set(key(name), value, 'PX', ttlMs);
    else await redis.del(key(name));
  }

  return {
    get,
    set,
    async getSecret(name) {
      const blob = await get(name);
      return blob === undefined ? undefined : cipher.decrypt(blob, key(name));
    },
    setSecret: (name, value, expiresAt) => set(name, cipher.encrypt(value, key(name)), expiresAt),
    async delete(name) {
      await redis.del(key(name));
    },
    async acquireLock(name, owner, ttlMs) {
      return (await redis.eval(acquireLockScript, 1, key(name), owner, Math.max(1, Math.ceil(ttlMs)))) === 1;
    },
    async releaseLock(name, owner) {
      await redis.eval(releaseLockScript, 1, key(name), owner);
    },
    onReconnect(listener) {
      redis.on('ready', listener);
    },
    connected: () => redis.status === 'ready',
    // Waited for once: a Redis that is down at boot costs the first renewal this wait, no more.
    firstConnection: (timeoutMs) => firstConnection(redis, timeoutMs),
  };
}
