import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../src/sandbox/fake-benji.js';
import { startFakeBenji } from '../support/fakes.js';
import { benjiApiKey, buildBroker, type TestBroker } from '../support/broker.js';
import { signUserToken } from '../support/jwt.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';

let benji: FakeBenji;
const brokers: TestBroker[] = [];
const redis = inspectRedis();
const prefix = uniquePrefix();

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await benji.close();
  await deleteKeys(redis, prefix);
  await redis.quit();
});

function broker(env: Record<string, string>) {
  const built = buildBroker({ BENJI_BASE_URL: benji.url, CONNECT_TOKEN_RATE_LIMIT: '3', ...env });
  brokers.push(built);
  return built;
}

async function ask(app: TestBroker['broker']['publicApp'], sub?: string) {
  const call = request(app).post('/v1/benji/connect-token');
  if (sub !== undefined) call.set('authorization', `Bearer ${await signUserToken({ sub })}`);
  return call.send({ mode: 'connect' });
}

async function waitForRedis(built: TestBroker) {
  for (let i = 0; i < 100; i++) {
    const ready = await request(built.broker.publicApp).get('/readyz');
    if (ready.body.checks.redis === 'ok') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('broker never connected to Redis');
}

describe('connect-token rate limit', () => {
  it('allows CONNECT_TOKEN_RATE_LIMIT calls per minute per user, then 429 with Retry-After', async () => {
    const { broker: b } = broker({});
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await ask(b.publicApp, 'alice')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);

    const limited = await ask(b.publicApp, 'alice');
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.body.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);

    // Another user has a budget of their own.
    expect((await ask(b.publicApp, 'bob')).status).toBe(200);
  });

  it('counts per client IP when callers are anonymous', async () => {
    const { broker: b } = broker({ FRONTEND_AUTH: 'none', TRUST_PROXY: 'loopback' });
    const from = (ip: string) => request(b.publicApp).post('/v1/benji/connect-token').set('x-forwarded-for', ip).send({ mode: 1 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await from('203.0.113.1')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await from('203.0.113.2')).status).toBe(200);
  });

  it('shares the count between replicas through Redis, under the key prefix, without user ids', async () => {
    const env = { REDIS_URL: testRedisUrl, REDIS_KEY_PREFIX: prefix };
    const first = broker(env);
    const second = broker(env);
    await waitForRedis(first);
    await waitForRedis(second);

    const statuses = [
      (await ask(first.broker.publicApp, 'carol')).status,
      (await ask(second.broker.publicApp, 'carol')).status,
      (await ask(first.broker.publicApp, 'carol')).status,
      (await ask(second.broker.publicApp, 'carol')).status,
    ];
    expect(statuses).toEqual([200, 200, 200, 429]);

    const keys = await redis.keys(`${prefix}*`);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^${prefix}ratelimit:connect:user:`));
    expect(keys[0]).not.toContain('carol');
    expect(await redis.pttl(keys[0] ?? '')).toBeGreaterThan(0);
  });

  it('falls back to a per-replica count when Redis is unreachable, never a 500', async () => {
    const built = broker({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: prefix });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await ask(built.broker.publicApp, 'dave')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const ready = await request(built.broker.publicApp).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'degraded', checks: { redis: 'down', starshipToken: 'none' } });
  });
});
