import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createRedisClient, type RedisClient } from '../../src/redis.js';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { createStarshipSession, type StarshipSession } from '../../src/credentials/starship-session.js';
import { createMemoryStore } from '../../src/credentials/stores/memory-store.js';
import { createRedisStore } from '../../src/credentials/stores/redis-store.js';
import type { SharedStore } from '../../src/credentials/stores/shared-store.js';
import { createTokenCipher } from '../../src/credentials/stores/token-cipher.js';
import { noMetrics } from '../../src/observability/metrics.js';
import { noScrub } from '../../src/observability/secret-scrubber.js';
import { createStarshipAuth } from '../../src/upstream/starship/starship-auth.js';
import { createUpstream, createUpstreamPool } from '../../src/upstream/upstream-http.js';
import { captureLogs, type LogCapture } from '../support/log-capture.js';
import { startPrivateRedis } from '../support/private-redis.js';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../support/redis.js';

const username = 'manager-test-user';
const password = 'manager-test-password-8d1f';
const start = Date.parse('2030-01-01T00:00:00Z');
const encryptionKey = randomBytes(32);

/** A controllable clock shared by the broker side and the fake Starship. */
function testClock() {
  let now = start;
  return { clock: () => now, advance: (ms: number) => void (now += ms), set: (ms: number) => void (now = ms) };
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function fakeStarship(clock: () => number, accessTtlS = 900) {
  const starship = await startFakeStarship({ username, password, clock, accessTtlS });
  cleanups.push(() => starship.close());
  return starship;
}

async function redisClient(url = testRedisUrl): Promise<RedisClient> {
  const redis = createRedisClient({ kind: 'url', url }, createLogger({ level: 'silent', destination: captureLogs().stream }));
  cleanups.push(() => redis.quit().catch(() => redis.disconnect()));
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  return redis;
}

interface Replica {
  manager: StarshipSession;
  logs: LogCapture;
  storeCalls: () => number;
}

/** One broker replica's session: the real Starship auth client and session, on a given store. */
function replica(
  fake: FakeStarship,
  store: SharedStore,
  clock: () => number,
  options: { refreshBeforeS?: number; timeoutMs?: number } = {},
): Replica {
  const timeoutMs = options.timeoutMs ?? 2_000;
  const pool = createUpstreamPool(fake.url, { connections: 4, timeoutMs });
  cleanups.push(() => pool.destroy());
  const upstream = createUpstream({ name: 'starship', timeoutMs, metrics: noMetrics });
  const auth = createStarshipAuth({ upstream, pool, username, password, clock, scrub: noScrub });
  let calls = 0;
  // Counts the store calls the manager makes; the store itself is the real one.
  const counted = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || property === 'onReconnect') return value;
      return (...args: unknown[]) => {
        calls += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const logs = captureLogs();
  const manager = createStarshipSession({
    auth,
    store: counted,
    clock,
    logger: createLogger({ level: 'debug', destination: logs.stream }),
    refreshBeforeS: options.refreshBeforeS ?? 300,
    upstreamTimeoutMs: timeoutMs,
    random: () => 0.5,
    lockPollMs: 10,
  });
  return { manager, logs, storeCalls: () => calls };
}

function redisStore(redis: RedisClient, keyPrefix: string, clock: () => number): SharedStore {
  cleanups.push(() => deleteKeys(redis, keyPrefix));
  return createRedisStore({ redis, keyPrefix, cipher: createTokenCipher(encryptionKey), clock });
}

/** Waits until a background renewal has settled (it runs on real timers). */
async function settle(check: () => boolean) {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
}

describe('token manager, one replica', () => {
  it('logs in on first need, then serves from memory with no store round trip', async () => {
    const { clock } = testClock();
    const fake = await fakeStarship(clock);
    const one = replica(fake, createMemoryStore(clock), clock);

    const token = await one.manager.getAccessToken();
    expect(fake.stats.logins).toBe(1);
    const callsAfterLogin = one.storeCalls();
    for (let i = 0; i < 1000; i++) expect(await one.manager.getAccessToken()).toBe(token);
    expect(one.storeCalls()).toBe(callsAfterLogin);
    expect(fake.stats.logins).toBe(1);
  });

  it('refreshes in the background inside the refresh window while callers keep the current token', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock, 900);
    const one = replica(fake, createMemoryStore(time.clock), time.clock, { refreshBeforeS: 300 });
    const first = await one.manager.getAccessToken();

    time.advance(599_000); // 301 s before expiry: not yet in the window
    expect(await one.manager.getAccessToken()).toBe(first);
    expect(fake.stats.refreshes).toBe(0);

    time.advance(2_000); // 299 s before expiry: in the window
    expect(await one.manager.getAccessToken()).toBe(first);
    // The fake counts the refresh before its answer reaches the broker: wait for the broker too.
    await settle(() => fake.stats.refreshes === 1 && one.manager.snapshot().state === 'valid');
    const second = await one.manager.getAccessToken();
    expect(second).not.toBe(first);
    expect(fake.stats).toMatchObject({ logins: 1, refreshes: 1, refreshReuses: 0 });
  });

  it('caps the refresh window at half the access token lifetime', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock, 60); // 60 s tokens, window asked for is 300 s
    const one = replica(fake, createMemoryStore(time.clock), time.clock, { refreshBeforeS: 300 });
    await one.manager.getAccessToken();
    time.advance(29_000);
    await one.manager.getAccessToken();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.stats.refreshes).toBe(0);
    time.advance(2_000);
    await one.manager.getAccessToken();
    await settle(() => fake.stats.refreshes === 1);
  });

  it('serves 100 parallel callers with an expiring token at once, from one background refresh', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock, 900);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    const first = await one.manager.getAccessToken();
    time.advance(700_000); // inside the refresh window, still valid

    const tokens = await Promise.all(Array.from({ length: 100 }, () => one.manager.getAccessToken()));
    expect(new Set(tokens)).toEqual(new Set([first]));
    await settle(() => fake.stats.refreshes === 1 && one.manager.snapshot().state === 'valid');
    expect(fake.stats).toMatchObject({ logins: 1, refreshes: 1, refreshReuses: 0 });
    expect(await one.manager.getAccessToken()).not.toBe(first);
  });

  it('makes 100 parallel callers with an expired token wait for exactly one refresh', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock, 900);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    const first = await one.manager.getAccessToken();
    time.advance(901_000);

    const tokens = await Promise.all(Array.from({ length: 100 }, () => one.manager.getAccessToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(first);
    expect(fake.stats).toMatchObject({ logins: 1, refreshes: 1, refreshReuses: 0 });
  });

  it('logs in again when the refresh token is rejected (revoked or expired)', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    await one.manager.getAccessToken();
    fake.revokeAll();
    time.advance(901_000);

    await one.manager.getAccessToken();
    expect(fake.stats).toMatchObject({ logins: 2, refreshes: 0, refreshFailures: 1 });
  });

  it('keeps the tokens through refresh failures, backs off, and answers 502 with Retry-After once none is valid', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    const first = await one.manager.getAccessToken();

    time.advance(700_000); // in the window: the background refresh fails
    fake.fail('refresh', { kind: 'reply', status: 503, body: { error: 'unavailable' } });
    expect(await one.manager.getAccessToken()).toBe(first);
    await settle(() => fake.stats.refreshFailures === 1 && one.manager.snapshot().state === 'valid'); // the broker has taken the failure in too
    expect(await one.manager.getAccessToken()).toBe(first); // still in hand, inside the backoff
    expect(fake.stats.refreshFailures).toBe(1);

    time.advance(201_000); // expired, and the backoff (750 ms with this jitter) has passed
    fake.fail('refresh', { kind: 'reply', status: 500, body: {} });
    const error = await one.manager.getAccessToken().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'upstream_error', retryAfterS: expect.any(Number) });
    // Inside the next backoff nobody calls Starship.
    await expect(one.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_error' });
    expect(fake.stats.refreshFailures).toBe(2);

    time.advance(5_000);
    expect(await one.manager.getAccessToken()).not.toBe(first);
    expect(fake.stats).toMatchObject({ logins: 1, refreshes: 1 });
  });

  it('never sends a rejected refresh token again, even when the login after it fails', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    await one.manager.getAccessToken();
    fake.revokeAll();
    time.advance(901_000);
    fake.fail('login', { kind: 'reply', status: 500, body: {} });

    await expect(one.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_error' });
    time.advance(5_000);
    await one.manager.getAccessToken();
    const refreshes = fake.requests.filter((r) => r.path === '/auth/refresh');
    expect(refreshes).toHaveLength(1);
    expect(fake.stats).toMatchObject({ logins: 2, loginFailures: 1, refreshFailures: 1 });
  });

  it('does not resend a refresh token whose refresh got no answer (it may have rotated): it logs in', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock, { timeoutMs: 200 });
    await one.manager.getAccessToken();
    time.advance(901_000);
    fake.fail('refresh', { kind: 'hang' });
    await expect(one.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_timeout' });

    time.advance(5_000);
    await one.manager.getAccessToken();
    expect(fake.requests.filter((r) => r.path === '/auth/refresh')).toHaveLength(1);
    expect(fake.stats.logins).toBe(2);
  });

  it('treats a throttled refresh as throttled, waiting at most 15 minutes', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    await one.manager.getAccessToken();
    time.advance(901_000);
    fake.fail('refresh', { kind: 'reply', status: 429, body: {}, headers: { 'retry-after': '86400' } });
    await expect(one.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_throttled', retryAfterS: 900 });
  });

  it('answers 504 when Starship does not answer the refresh in time', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock, { timeoutMs: 200 });
    await one.manager.getAccessToken();
    time.advance(901_000);
    fake.fail('refresh', { kind: 'hang' });
    await expect(one.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_timeout' });
  });

  it.each([
    ['honours Retry-After', { 'retry-after': '120' }, 120],
    ['waits 60 s without Retry-After', undefined, 60],
    ['waits at most 15 minutes', { 'retry-after': '7200' }, 900],
  ])('cools down after a throttled login: %s', async (_name, headers, waitS) => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    fake.fail('login', { kind: 'reply', status: 429, body: { error: 'Too Many Requests' }, ...(headers !== undefined && { headers }) });

    await expect(one.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_throttled', retryAfterS: waitS });
    time.advance((waitS - 1) * 1000);
    await expect(one.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_throttled', retryAfterS: 1 });
    expect(fake.stats.loginFailures).toBe(1);
    expect(fake.stats.logins).toBe(0);

    time.advance(1_000);
    await one.manager.getAccessToken();
    expect(fake.stats.logins).toBe(1);
    const status = await one.manager.status();
    expect(status).toMatchObject({ state: 'valid', cooldownUntil: null });
  });

  it('cools down for 60 s after the credentials are rejected, logging an error, so the account is not locked out', async () => {
    const time = testClock();
    const fake = await startFakeStarship({ username, password: 'the-real-password-is-different', clock: time.clock });
    cleanups.push(() => fake.close());
    const one = replica(fake, createMemoryStore(time.clock), time.clock);

    await expect(one.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_error', retryAfterS: 60 });
    for (let i = 0; i < 5; i++) await expect(one.manager.getAccessToken()).rejects.toMatchObject({ retryAfterS: 60 });
    expect(fake.stats.loginFailures).toBe(1);
    expect(await one.manager.status()).toMatchObject({ state: 'cooldown', cooldownUntil: new Date(start + 60_000).toISOString() });
    expect(one.logs.entries().some((e) => e.level === 'error' && String(e.msg).includes('login rejected'))).toBe(true);
    expect(one.logs.text()).not.toContain(password);
  });

  it('reports its state without ever showing a token', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    expect(await one.manager.status()).toEqual({
      state: 'none',
      accessExpiresAt: null,
      refreshExpiresAt: null,
      clientId: null,
      cooldownUntil: null,
    });
    const token = await one.manager.getAccessToken();
    const status = await one.manager.status();
    expect(status).toEqual({
      state: 'valid',
      accessExpiresAt: new Date(start + 900_000).toISOString(),
      refreshExpiresAt: new Date(start + 7 * 24 * 3600_000).toISOString(),
      clientId: '123456',
      cooldownUntil: null,
    });
    expect(JSON.stringify(status)).not.toContain(token);
  });

  it('forces a fresh login on demand, and logs the old session out only for credential rotation', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const one = replica(fake, createMemoryStore(time.clock), time.clock);
    const first = await one.manager.getAccessToken();
    await one.manager.forceLogin({ revokePrevious: false });
    const second = await one.manager.getAccessToken();
    expect(second).not.toBe(first);
    expect(fake.stats).toMatchObject({ logins: 2, logouts: 0 });

    await one.manager.forceLogin({ revokePrevious: true });
    expect(fake.stats).toMatchObject({ logins: 3, logouts: 1 });
    expect(await one.manager.getAccessToken()).not.toBe(second);
  });
});

describe('token manager, several replicas on one Redis', () => {
  async function replicas(count: number, time: ReturnType<typeof testClock>, fake: FakeStarship) {
    const prefix = uniquePrefix();
    const all: Replica[] = [];
    for (let i = 0; i < count; i++) {
      // Each replica has its own Redis connection, as separate processes would.
      const redis = await redisClient();
      all.push(replica(fake, redisStore(redis, prefix, time.clock), time.clock));
    }
    return all;
  }

  it('logs in once, then refreshes once per cycle across replicas, never reusing a refresh token', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock, 900);
    const all = await replicas(4, time, fake);

    const first = await Promise.all(all.flatMap((r) => Array.from({ length: 25 }, () => r.manager.getAccessToken())));
    expect(new Set(first).size).toBe(1);
    expect(fake.stats.logins).toBe(1);

    for (let cycle = 1; cycle <= 3; cycle++) {
      time.advance(901_000); // every replica's token has expired
      const tokens = await Promise.all(all.flatMap((r) => Array.from({ length: 25 }, () => r.manager.getAccessToken())));
      expect(new Set(tokens).size).toBe(1);
      expect(fake.stats).toMatchObject({ logins: 1, refreshes: cycle, refreshReuses: 0, refreshFailures: 0 });
    }
  });

  it('refreshes once per cycle across replicas while their tokens cross the refresh window under load', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock, 900);
    const all = await replicas(4, time, fake);
    await Promise.all(all.map((r) => r.manager.getAccessToken()));
    expect(fake.stats.logins).toBe(1);

    for (let cycle = 1; cycle <= 3; cycle++) {
      time.advance(700_000); // inside the window, tokens still valid: nobody waits
      const before = await all[0]!.manager.getAccessToken();
      const tokens = await Promise.all(all.flatMap((r) => Array.from({ length: 50 }, () => r.manager.getAccessToken())));
      expect(tokens.every((t) => typeof t === 'string')).toBe(true);
      // Done once every replica has refreshed or adopted (none is still waiting on the lock).
      await settle(() => fake.stats.refreshes === cycle && all.every((r) => r.manager.snapshot().state === 'valid'));
      const after = await Promise.all(all.map((r) => r.manager.getAccessToken()));
      expect(new Set(after).size).toBe(1);
      expect(after[0]).not.toBe(before);
      expect(fake.stats).toMatchObject({ logins: 1, refreshes: cycle, refreshReuses: 0, refreshFailures: 0 });
    }
  });

  it('lets no replica send a refresh token another replica saw rejected', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const [a, b] = await replicas(2, time, fake);
    await a!.manager.getAccessToken();
    await b!.manager.getAccessToken();
    fake.revokeAll();
    time.advance(901_000);
    fake.fail('login', { kind: 'reply', status: 503, body: {} });

    await expect(a!.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_error' });
    await b!.manager.getAccessToken(); // B must log in, not try the refresh token A saw refused
    expect(fake.requests.filter((r) => r.path === '/auth/refresh')).toHaveLength(1);
    expect(fake.stats.logins).toBe(2);
  });

  it('holds the lock through an admin renewal, so a replica renewing meanwhile adopts its result', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const [a, b] = await replicas(2, time, fake);
    await a!.manager.getAccessToken();
    await b!.manager.getAccessToken();
    time.advance(901_000);
    fake.fail('login', { kind: 'delay', ms: 300 });

    const forced = a!.manager.forceLogin({ revokePrevious: false });
    while (fake.requests.filter((r) => r.path === '/auth/login').length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    const bToken = await b!.manager.getAccessToken();
    await forced;
    expect(bToken).toBe(await a!.manager.getAccessToken());
    expect(fake.stats).toMatchObject({ logins: 2, refreshes: 0 });
  });

  it('still logs in when an admin renewal has to wait for another replica’s refresh', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const [a, b] = await replicas(2, time, fake);
    await a!.manager.getAccessToken();
    time.advance(901_000);
    fake.fail('refresh', { kind: 'delay', ms: 300 });

    const refreshing = b!.manager.getAccessToken();
    while (fake.requests.filter((r) => r.path === '/auth/refresh').length < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    await a!.manager.forceLogin({ revokePrevious: false });
    const refreshed = await refreshing;
    expect(fake.stats).toMatchObject({ logins: 2, refreshes: 1 });
    expect(await a!.manager.getAccessToken()).not.toBe(refreshed);
  });

  it('waits for its first Redis connection instead of renewing without the lock or the cooldown', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const prefix = uniquePrefix();
    const ready = await redisClient();
    const until = start + 600_000;
    await redisStore(ready, prefix, time.clock).set('starship:cooldown', JSON.stringify({ until, reason: 'throttled' }), until);

    // A replica booting now: its connection is still being made when the first call needs a token.
    const booting = createRedisClient(
      { kind: 'url', url: testRedisUrl },
      createLogger({ level: 'silent', destination: captureLogs().stream }),
    );
    cleanups.push(() => booting.quit().catch(() => booting.disconnect()));
    const fresh = replica(fake, redisStore(booting, prefix, time.clock), time.clock);
    await expect(fresh.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_throttled' });
    expect(fake.stats.logins + fake.stats.loginFailures).toBe(0);
  });

  it('fails the renewal, rather than run without the lock, when a connected Redis refuses commands', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const server = await startPrivateRedis();
    cleanups.push(() => server.stop());
    const redis = await redisClient(server.url);
    const admin = await redisClient(server.url);
    const [a, b] = [
      replica(fake, redisStore(redis, 'x:', time.clock), time.clock),
      replica(fake, redisStore(admin, 'x:', time.clock), time.clock),
    ];
    await a.manager.getAccessToken();
    await b.manager.getAccessToken();
    time.advance(901_000);

    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    await expect(a.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_error' });
    expect(fake.stats.refreshes + fake.stats.refreshFailures).toBe(0);

    await admin.config('SET', 'maxmemory', '0');
    time.advance(2_000);
    const [tokenA, tokenB] = [await a.manager.getAccessToken(), await b.manager.getAccessToken()];
    expect(tokenA).toBe(tokenB);
    expect(fake.stats).toMatchObject({ logins: 1, refreshes: 1, refreshReuses: 0 });
  });

  it('recovers from revocation with one login across replicas', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const all = await replicas(3, time, fake);
    const token = await all[0]!.manager.getAccessToken();
    for (const r of all) expect(await r.manager.getAccessToken()).toBe(token);

    time.advance(60_000); // a token refused moments after it was obtained is not renewed for it
    fake.revokeAll();
    expect(await Promise.all(all.map((r) => r.manager.reportRejected(token)))).toEqual([true, true, true]);
    const renewed = await Promise.all(all.map((r) => r.manager.getAccessToken()));
    expect(new Set(renewed).size).toBe(1);
    expect(renewed[0]).not.toBe(token);
    expect(fake.stats.logins).toBe(2);
  });

  it('shares a login cooldown: no replica calls login until Retry-After has passed', async () => {
    const time = testClock();
    const fake = await fakeStarship(time.clock);
    const all = await replicas(3, time, fake);
    fake.fail('login', { kind: 'reply', status: 429, body: {}, headers: { 'retry-after': '30' } });

    await expect(all[0]!.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_throttled', retryAfterS: 30 });
    for (const r of all.slice(1))
      await expect(r.manager.getAccessToken()).rejects.toMatchObject({ code: 'upstream_throttled', retryAfterS: 30 });
    expect(fake.stats.loginFailures + fake.stats.logins).toBe(1);

    time.advance(30_000);
    const tokens = await Promise.all(all.map((r) => r.manager.getAccessToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(fake.stats.logins).toBe(1);
  });
});
