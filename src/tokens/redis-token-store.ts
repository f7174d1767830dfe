import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { TokenCipher } from './token-cipher.js';
import type { Cooldown, TokenSet } from './token-set.js';
import type { TokenStore } from './token-store.js';

export interface RedisTokenStoreOptions {
  redis: Redis;
  /** Prepended to every key, so several brokers (or tests) can share one Redis. */
  keyPrefix: string;
  cipher: TokenCipher;
  clock: Clock;
}

const tokenSetSchema = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  accessExpiresAt: z.number(),
  refreshExpiresAt: z.number(),
  obtainedAt: z.number(),
  clientId: z.string(),
}) satisfies z.ZodType<TokenSet>;

const cooldownSchema = z.object({
  until: z.number(),
  reason: z.enum(['throttled', 'credentials_rejected']),
}) satisfies z.ZodType<Cooldown>;

/** Anything stored that is larger is not something the broker wrote: it is ignored as corrupt. */
export const maxStoredValueBytes = 64 * 1024;

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
 * The Starship session shared between replicas. The session is encrypted for its key name (Redis is
 * not trusted with tokens, nor to keep a blob where it was written); the lock and cooldown hold
 * nothing secret. Nothing read is trusted for its size either. Redis errors reject: the caller
 * decides what to do without shared state.
 */
export function createRedisTokenStore({ redis, keyPrefix, cipher, clock }: RedisTokenStoreOptions): TokenStore {
  const sessionKey = `${keyPrefix}starship:session`;
  const lockKey = `${keyPrefix}starship:lock`;
  const cooldownKey = `${keyPrefix}starship:cooldown`;
  // Until the first connection a failing command means "still connecting", not "Redis is down".
  let firstWait: Promise<void> | undefined = redis.status === 'ready' ? Promise.resolve() : undefined;

  /** Stores `value` until `expiresAt` by our clock; something already over is removed instead. */
  async function setUntil(key: string, value: string, expiresAt: number): Promise<void> {
    const ttlMs = Math.ceil(expiresAt - clock());
    if (ttlMs > 0) await redis.set(key, value, 'PX', ttlMs);
    else await redis.del(key);
  }

  async function boundedGet(key: string): Promise<string | undefined> {
    const value = (await redis.eval(boundedGetScript, 1, key, maxStoredValueBytes)) as string | null;
    return value ?? undefined;
  }

  return {
    async read() {
      const blob = await boundedGet(sessionKey);
      const plaintext = blob === undefined ? undefined : cipher.decrypt(blob, sessionKey);
      const tokens = parseJson(tokenSetSchema, plaintext);
      // Redis expires the key by its own clock; ours decides, as in the memory store.
      return tokens !== undefined && clock() < tokens.refreshExpiresAt ? tokens : undefined;
    },
    async write(tokens) {
      await setUntil(sessionKey, cipher.encrypt(JSON.stringify(tokens), sessionKey), tokens.refreshExpiresAt);
    },
    async acquireLock(owner, ttlMs) {
      return (await redis.eval(acquireLockScript, 1, lockKey, owner, Math.max(1, Math.ceil(ttlMs)))) === 1;
    },
    async releaseLock(owner) {
      await redis.eval(releaseLockScript, 1, lockKey, owner);
    },
    async readCooldown() {
      const cooldown = parseJson(cooldownSchema, await boundedGet(cooldownKey));
      return cooldown !== undefined && clock() < cooldown.until ? cooldown : undefined;
    },
    async writeCooldown(cooldown) {
      await setUntil(cooldownKey, JSON.stringify({ until: cooldown.until, reason: cooldown.reason }), cooldown.until);
    },
    onReconnect(listener) {
      redis.on('ready', listener);
    },
    connected: () => redis.status === 'ready',
    firstConnection(timeoutMs) {
      // Waited for once: a Redis that is down at boot costs the first renewal this wait, no more.
      firstWait ??= new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          redis.off('ready', done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        redis.once('ready', done);
        if (redis.status === 'ready') done();
      });
      return firstWait;
    },
  };
}

function parseJson<T>(schema: z.ZodType<T>, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
