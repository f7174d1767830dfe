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

// Delete only while the lock still names us: after our ttl ran out someone else may hold it.
const releaseLockScript = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * The Starship session shared between replicas. The session is encrypted (Redis is not trusted
 * with tokens); the lock and cooldown hold nothing secret. Redis errors reject: the caller decides
 * what to do without shared state.
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

  return {
    async read() {
      const blob = await redis.get(sessionKey);
      const plaintext = blob === null ? undefined : cipher.decrypt(blob);
      const tokens = parseJson(tokenSetSchema, plaintext);
      // Redis expires the key by its own clock; ours decides, as in the memory store.
      return tokens !== undefined && clock() < tokens.refreshExpiresAt ? tokens : undefined;
    },
    async write(tokens) {
      await setUntil(sessionKey, cipher.encrypt(JSON.stringify(tokens)), tokens.refreshExpiresAt);
    },
    async acquireLock(owner, ttlMs) {
      return (await redis.set(lockKey, owner, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
    },
    async releaseLock(owner) {
      await redis.eval(releaseLockScript, 1, lockKey, owner);
    },
    async readCooldown() {
      const cooldown = parseJson(cooldownSchema, (await redis.get(cooldownKey)) ?? undefined);
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
