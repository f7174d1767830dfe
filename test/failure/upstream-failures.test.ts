import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { benjiApiKey, buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { signUserToken } from '../support/jwt.js';
import { until } from '../support/until.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';

/**
 * Each upstream misbehaving in each documented way: the caller gets the documented status within the
 * configured timeouts (the suite's own test timeout is the "nothing hangs" check), and a login
 * cooldown started by one broker holds for every broker on the same Redis.
 */
let starship: FakeStarship;
let benji: FakeBenji;
const brokers: TestBroker[] = [];
const redis = inspectRedis();
const prefixes: string[] = [];

beforeAll(async () => {
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
  benji = await startFakeBenji({ apiKey: benjiApiKey });
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await starship.close();
  await benji.close();
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  await redis.quit();
});
afterEach(() => {
  starship.requests.length = 0;
});

/** Two replicas sharing one Redis prefix, as two pods of one deployment would. */
async function replicas() {
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  const env = {
    STARSHIP_BASE_URL: starship.url,
    STARSHIP_TIMEOUT_MS: '300',
    BENJI_BASE_URL: benji.url,
    BENJI_TIMEOUT_MS: '300',
    REDIS_URL: testRedisUrl,
    REDIS_KEY_PREFIX: prefix,
  };
  const pair = [buildBroker(env), buildBroker(env)] as const;
  brokers.push(...pair);
  for (const b of pair) while (b.broker.redis?.status !== 'ready') await new Promise((resolve) => setTimeout(resolve, 10));
  return pair;
}

const proxied = (b: TestBroker, path = '/v1/starship/api/v1/products') =>
  request(b.broker.internalApp).get(path).set('authorization', `Bearer ${serviceKeys.orders}`);
const loginAttempts = () => starship.stats.logins + starship.stats.loginFailures;

describe('Starship failures', () => {
  it('slow beyond STARSHIP_TIMEOUT_MS → 504; slow within it → served', async () => {
    const [a] = await replicas();
    expect((await proxied(a)).status).toBe(200);
    starship.fail('api', { kind: 'hang' });
    const slow = await proxied(a);
    expect(slow.status).toBe(504);
    expect(slow.body.code).toBe('upstream_timeout');
    starship.fail('api', { kind: 'delay', ms: 100 });
    expect((await proxied(a)).status).toBe(200);
  });

  it('its own 5xx pass through unchanged; a reset connection is 502', async () => {
    const [a] = await replicas();
    for (const status of [500, 502, 503]) {
      starship.fail('api', { kind: 'reply', status, body: { error: { code: status } } });
      expect((await proxied(a)).status).toBe(status);
    }
    starship.fail('api', { kind: 'reset' });
    const reset = await proxied(a);
    expect(reset.status).toBe(502);
    expect(reset.body.code).toBe('upstream_error');
  });

  it('login 5xx or reset → 502 for the caller, and the next call tries again', async () => {
    const [a] = await replicas();
    starship.fail('login', { kind: 'reply', status: 500, body: {} });
    expect((await proxied(a)).status).toBe(502);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the first backoff is at most 1 s
    starship.fail('login', { kind: 'reset' });
    expect((await proxied(a)).status).toBe(502);
  });

  it.each([
    ['with Retry-After', { 'retry-after': '45' }, 45],
    ['without Retry-After', undefined, 60],
  ])('login 429 %s → 503 with Retry-After on every replica, and no replica calls login', async (_name, headers, waitS) => {
    const [a, b] = await replicas();
    const before = loginAttempts();
    starship.fail('login', { kind: 'reply', status: 429, body: { error: 'Too Many Requests' }, ...(headers !== undefined && { headers }) });

    const first = await proxied(a);
    expect(first.status).toBe(503);
    expect(first.body.code).toBe('upstream_throttled');
    expect(Number(first.headers['retry-after'])).toBe(waitS);
    for (const replica of [a, b, a, b]) {
      const res = await proxied(replica);
      expect(res.status).toBe(503);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(waitS - 5);
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(waitS);
    }
    expect(loginAttempts()).toBe(before + 1);
    expect(starship.requests.filter((r) => r.path.startsWith('/api/'))).toHaveLength(0);
  });
});

describe('Benji failures', () => {
  const connect = async (b: TestBroker) =>
    request(b.broker.publicApp)
      .post('/v1/benji/connect-token')
      .set('authorization', `Bearer ${await signUserToken({ sub: 'fuzzy' })}`)
      .send({ mode: 'connect' });

  it('slow beyond BENJI_TIMEOUT_MS → 504; 5xx → 502; slow within it → served', async () => {
    const [a] = await replicas();
    benji.fail({ kind: 'hang' });
    expect((await connect(a)).status).toBe(504);
    benji.fail({ kind: 'reply', status: 503, body: { error: 'maintenance' } });
    expect((await connect(a)).status).toBe(502);
    benji.fail({ kind: 'delay', ms: 100 });
    expect((await connect(a)).status).toBe(200);
  });

  it('BENJI_TIMEOUT_MS also counts the wait for a free connection', async () => {
    const [a] = await replicas();
    const user = async (sub: string) => `Bearer ${await signUserToken({ sub })}`;
    const call = async (sub: string) =>
      request(a.broker.publicApp)
        .post('/v1/benji/connect-token')
        .set('authorization', await user(sub))
        .send({ mode: 'connect' });
    // All 32 of the broker's Benji connections hang until their 300 ms are up; the next call waits
    // for one of them, then Benji takes 250 ms. Counted from its start, that is well past 300 ms
    // (it would be a 200 if only the time on a connection counted).
    const received = benji.requests.length;
    benji.fail(...Array.from({ length: 32 }, () => ({ kind: 'hang' as const })), { kind: 'delay', ms: 250 });
    const busy = Array.from({ length: 32 }, async (_, i) => (await call(`busy-${i}`)).status);
    await until(() => benji.requests.length - received >= 32, 'all 32 connections in use');
    const queued = await call('queued');
    expect(queued.status).toBe(504);
    expect(await Promise.all(busy)).toEqual(Array.from({ length: 32 }, () => 504));
  });
});
