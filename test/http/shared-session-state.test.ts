import request from 'supertest';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTokenCipher } from '../../src/credentials/stores/token-cipher.js';
import type { TokenSet } from '../../src/credentials/token-set.js';
import { starshipPassword, starshipUsername } from '../support/broker.js';
import { startClockedStarship, type ClockedStarship } from '../support/clocked-starship.js';
import { deleteKeys, inspectRedis, uniquePrefix } from '../support/redis.js';
import { until } from '../support/until.js';

/*
 * Redis as a hostile or confused party: what the broker does with the session, cooldown and lock it
 * finds there. Through the internal door, against the fake Starship and a real Redis.
 */

const redis = inspectRedis();
const started: ClockedStarship[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await redis.quit();
});

async function starship(options: { accessTtlS?: number } = {}): Promise<ClockedStarship> {
  const s = await startClockedStarship(options);
  started.push(s);
  return s;
}

const keys = (s: ClockedStarship) => ({
  session: `${s.prefix}starship:session`,
  lock: `${s.prefix}starship:lock`,
  cooldown: `${s.prefix}starship:cooldown`,
});

/** What a replica would store: the broker's own cipher, sealed for the session key. */
function sealed(s: ClockedStarship, plaintext: object): string {
  return createTokenCipher(Buffer.from(s.encryptionKey, 'base64')).encrypt(JSON.stringify(plaintext), keys(s).session);
}

function opened(s: ClockedStarship, blob: string | null): TokenSet | undefined {
  const text = blob === null ? undefined : createTokenCipher(Buffer.from(s.encryptionKey, 'base64')).decrypt(blob, keys(s).session);
  return text === undefined ? undefined : (JSON.parse(text) as TokenSet);
}

const yearsMs = 10 * 365 * 24 * 3600_000;

describe('a stored login cooldown', () => {
  it('is trusted for at most 15 minutes from now, and let go as soon as its key is deleted', async () => {
    const s = await starship();
    const broker = s.replica();
    await redis.set(keys(s).cooldown, JSON.stringify({ until: s.now() + yearsMs, reason: 'throttled' }));

    const refused = await broker.call();
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('upstream_throttled');
    expect(Number(refused.headers['retry-after'])).toBe(900);
    expect((await broker.readyz()).body).toEqual({ status: 'unavailable', checks: { redis: 'ok', starshipToken: 'cooldown' } });
    expect(s.fake.stats.logins + s.fake.stats.loginFailures).toBe(0);

    await redis.del(keys(s).cooldown);
    expect((await broker.call()).status).toBe(200);
    expect(s.fake.stats.logins).toBe(1);
    expect((await broker.readyz()).body).toEqual({ status: 'ok', checks: { redis: 'ok', starshipToken: 'valid' } });
  });

  it('left in Redis with no TTL ends 15 minutes after it was first read, not 15 minutes after every read', async () => {
    const s = await starship();
    const broker = s.replica();
    await redis.set(keys(s).cooldown, JSON.stringify({ until: s.now() + yearsMs, reason: 'throttled' }));
    expect((await broker.call()).status).toBe(503);
    expect(await redis.pttl(keys(s).cooldown)).toBeGreaterThan(0); // written back with an end, and a TTL

    s.advance(8 * 60_000);
    const later = await broker.call();
    expect(later.status).toBe(503);
    expect(Number(later.headers['retry-after'])).toBe(7 * 60);

    s.advance(8 * 60_000);
    expect((await broker.call()).status).toBe(200);
    expect(s.fake.stats.logins).toBe(1);
  });

  it('deleted from Redis shows in readiness without waiting for a call', async () => {
    const s = await starship();
    const broker = s.replica();
    await redis.set(keys(s).cooldown, JSON.stringify({ until: s.now() + yearsMs, reason: 'throttled' }));
    expect((await broker.call()).status).toBe(503);
    expect((await broker.readyz()).status).toBe(503);

    await redis.del(keys(s).cooldown);
    await until(async () => (await broker.readyz()).status === 200, 'readiness to let go of the cooldown');
    expect((await broker.readyz()).body).toEqual({ status: 'degraded', checks: { redis: 'ok', starshipToken: 'none' } });
    expect(s.fake.stats.logins + s.fake.stats.loginFailures).toBe(0);
  });

  it('over 64 KiB is ignored as corrupt', async () => {
    const s = await starship();
    const broker = s.replica();
    const cooldown = { until: s.now() + 600_000, reason: 'throttled', note: 'x'.repeat(64 * 1024) };
    await redis.set(keys(s).cooldown, JSON.stringify(cooldown));
    expect((await broker.call()).status).toBe(200);
    expect(s.fake.stats.logins).toBe(1);
  });
});

describe('a stored session', () => {
  it('over 64 KiB is ignored as corrupt, however well formed', async () => {
    const s = await starship();
    // A real pair from Starship, sealed as a replica would, with padding the schema would drop.
    const login = await request(s.fake.url).post('/auth/login').send({ username: starshipUsername, password: starshipPassword });
    const { access_token, refresh_token, access_expires_at, refresh_expires_at } = login.body as Record<string, string>;
    const tokens = {
      accessToken: access_token,
      refreshToken: refresh_token,
      accessExpiresAt: Date.parse(access_expires_at ?? ''),
      refreshExpiresAt: Date.parse(refresh_expires_at ?? ''),
      obtainedAt: s.now(),
      clientId: '123456',
    };
    await redis.set(keys(s).session, sealed(s, { ...tokens, padding: 'x'.repeat(64 * 1024) }), 'PX', 3_600_000);

    const broker = s.replica();
    expect((await broker.call()).status).toBe(200);
    expect(s.fake.stats.logins).toBe(2); // the test's own, and the broker's
    expect(s.apiTokens()).not.toContain(`Bearer ${access_token}`);
  });

  it('copied to another key name does not open: the replica there logs in instead of adopting it', async () => {
    const s = await starship();
    expect((await s.replica().call()).status).toBe(200);

    // Another prefix, the same encryption key: only the key name tells the blobs apart.
    const otherPrefix = uniquePrefix();
    try {
      await redis.set(`${otherPrefix}starship:session`, (await redis.get(keys(s).session)) ?? '', 'PX', 3_600_000);
      const elsewhere = s.replica({ REDIS_KEY_PREFIX: otherPrefix });
      expect((await elsewhere.call()).status).toBe(200);
      expect(s.fake.stats.logins).toBe(2);
      expect(new Set(s.apiTokens()).size).toBe(2);
    } finally {
      await deleteKeys(redis, otherPrefix);
    }
  });

  it('replayed after a refresh is never adopted: no spent refresh token is sent, and every call is served', async () => {
    const s = await starship();
    const [a, b] = [s.replica(), s.replica()];
    expect((await a.call()).status).toBe(200);
    expect((await b.call()).status).toBe(200);
    expect(s.fake.stats.logins).toBe(1);
    const captured = await redis.get(keys(s).session);

    s.advance(700_000); // both in the refresh window: A refreshes, B adopts A's newer pair
    expect((await a.call()).status).toBe(200);
    let refreshed: string | undefined;
    await until(async () => {
      refreshed = opened(s, await redis.get(keys(s).session))?.accessToken;
      return refreshed !== undefined && refreshed !== opened(s, captured)?.accessToken;
    }, 'A’s refreshed pair in Redis');
    await until(async () => {
      expect((await b.call()).status).toBe(200);
      return s.apiTokens().at(-1) === `Bearer ${refreshed}`;
    }, 'B to adopt the refreshed pair');
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 1 });

    await redis.set(keys(s).session, captured ?? '', 'PX', 3_600_000);
    s.advance(901_000); // both replicas need a renewal, and consult the store for it
    const statuses = await Promise.all([a.call(), b.call(), a.call(), b.call()].map(async (call) => (await call).status));
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 2, refreshReuses: 0, refreshFailures: 0 });
    const logs = a.subject.logs.text() + b.subject.logs.text();
    expect(logs).toContain('older than the one in hand');
  });

  it('found older than the set in hand is overwritten with it', async () => {
    const s = await starship();
    const broker = s.replica();
    expect((await broker.call()).status).toBe(200);
    const captured = await redis.get(keys(s).session);
    s.advance(901_000);
    expect((await broker.call()).status).toBe(200);
    const current = opened(s, await redis.get(keys(s).session));
    expect(s.fake.stats.refreshes).toBe(1);

    await redis.set(keys(s).session, captured ?? '', 'PX', 3_600_000);
    // A 401 to the fresh token: not renewed for, but the store is consulted, and repaired.
    s.fake.fail('api', { kind: 'reply', status: 401, body: { error: 'Unauthorized' } });
    expect((await broker.call()).status).toBe(401);
    await until(
      async () => opened(s, await redis.get(keys(s).session))?.accessToken === current?.accessToken,
      'the newer set written back over the replayed one',
    );
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 1 });
  });

  it('restoring a refresh token the broker blanked is not adopted: the broker logs in instead of sending it', async () => {
    const s = await starship();
    const broker = s.replica({ STARSHIP_TIMEOUT_MS: '1000' });
    expect((await broker.call()).status).toBe(200);
    const captured = await redis.get(keys(s).session);

    // A refresh without an answer may have rotated the pair: the broker blanks its refresh token.
    s.advance(901_000);
    s.fake.fail('refresh', { kind: 'hang' });
    expect((await broker.call()).status).toBe(504);
    expect(opened(s, await redis.get(keys(s).session))?.refreshToken).toBe('');

    await redis.set(keys(s).session, captured ?? '', 'PX', 3_600_000);
    s.advance(5_000);
    expect((await broker.call()).status).toBe(200);
    expect(s.fake.requests.filter((r) => r.path === '/auth/refresh')).toHaveLength(1);
    expect(s.fake.stats.logins).toBe(2);
  });
});

describe('the renewal lock', () => {
  it('held with no TTL gets one, so the renewal still happens within the normal wait', async () => {
    const s = await starship();
    // STARSHIP_TIMEOUT_MS=100: the lock's TTL is 2 × 100 ms + 5 s, its wait 5 s longer.
    const broker = s.replica({ STARSHIP_TIMEOUT_MS: '100' });
    await redis.set(keys(s).lock, 'left-by-nobody');

    const call = broker.call();
    const served = call.then((res) => res.status);
    await until(async () => (await redis.pttl(keys(s).lock)) > 0, 'the foreign lock to be given a TTL');
    expect(await redis.pttl(keys(s).lock)).toBeLessThanOrEqual(5_200);
    expect(await served).toBe(200);
    expect(s.fake.stats.logins).toBe(1);
  }, 30_000);

  it('waited on in vain backs off: callers meanwhile get an error at once, not another full wait', async () => {
    const s = await starship();
    const broker = s.replica({ STARSHIP_TIMEOUT_MS: '100' });
    // A replica that keeps re-taking the lock (plausible TTL, never released).
    const hold = () => redis.set(keys(s).lock, 'stuck-replica', 'PX', 5_000);
    let holding = hold();
    await holding;
    const holder = setInterval(() => {
      holding = hold();
    }, 500);
    try {
      const first = await broker.call();
      expect(first.status).toBe(502);
      expect(first.body.code).toBe('upstream_error');

      const second = await broker.call();
      expect(second.status).toBe(502);
      expect(second.headers['retry-after']).toBe('1');
      expect((await broker.readyz()).body).toEqual({ status: 'unavailable', checks: { redis: 'ok', starshipToken: 'none' } });
      expect(await broker.metrics()).toContain('broker_starship_lock_wait_seconds_count{outcome="timeout"} 1');
      expect(s.fake.stats.logins + s.fake.stats.loginFailures).toBe(0);
    } finally {
      clearInterval(holder);
      await holding;
    }
    await redis.del(keys(s).lock);
    s.advance(1_000);
    expect((await broker.call()).status).toBe(200);
  }, 45_000);
});
