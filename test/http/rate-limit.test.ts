import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeBenji } from '../support/fakes.js';
import { benjiApiKey, buildBroker, type TestBroker } from '../support/broker.js';
import { signUserToken } from '../support/jwt.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { until } from '../support/until.js';

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

describe('what the rate limit counts', () => {
  const post = async (app: TestBroker['broker']['publicApp'], sub: string, body: unknown, type = 'application/json') =>
    request(app)
      .post('/v1/benji/connect-token')
      .set('authorization', `Bearer ${await signUserToken({ sub })}`)
      .set('content-type', type)
      .send(typeof body === 'string' ? body : JSON.stringify(body));

  it('counts only calls that reach Benji: bodies refused with 400, 403 or 415 use none of the budget', async () => {
    const { broker: b } = broker({ BENJI_ALLOWED_MODES: 'connect,transfer', BENJI_MAX_TRANSFER_AMOUNT: '100' });
    const refused = [
      [400, { mode: 'payout' }],
      [400, { mode: 'transfer', amount: 101 }],
      [400, '{"mode":'],
      [400, ''],
      [403, { mode: 'redeem' }],
    ] as const;
    for (let round = 0; round < 2; round++) {
      for (const [status, body] of refused) expect((await post(b.publicApp, 'erin', body)).status).toBe(status);
      expect((await post(b.publicApp, 'erin', 'mode=connect', 'application/x-www-form-urlencoded')).status).toBe(415);
    }
    const before = benji.requests.length;
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(b.publicApp, 'erin', { mode: 'connect' })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(benji.requests.length - before).toBe(3);
  });

  it('sends ratelimit-limit, -remaining and -reset on counted answers, and Retry-After with the 429', async () => {
    const { broker: b } = broker({});
    const first = await post(b.publicApp, 'frank', { mode: 'connect' });
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-limit']).toBe('3');
    expect(first.headers['ratelimit-remaining']).toBe('2');
    const reset = Number(first.headers['ratelimit-reset']);
    expect(reset).toBeGreaterThanOrEqual(1);
    expect(reset).toBeLessThanOrEqual(60);

    await post(b.publicApp, 'frank', { mode: 'connect' });
    expect((await post(b.publicApp, 'frank', { mode: 'connect' })).headers['ratelimit-remaining']).toBe('0');
    const limited = await post(b.publicApp, 'frank', { mode: 'connect' });
    expect(limited.status).toBe(429);
    expect(limited.headers['ratelimit-limit']).toBe('3');
    expect(limited.headers['ratelimit-remaining']).toBe('0');
    expect(limited.headers['retry-after']).toBe(limited.headers['ratelimit-reset']);
    expect(limited.body.detail).toBe(`At most 3 connect tokens per minute; try again in ${limited.headers['retry-after']} s.`);

    // A refused body was not counted, so it has no budget to report.
    const invalid = await post(b.publicApp, 'frank', { mode: 'payout' });
    expect(invalid.status).toBe(400);
    expect(invalid.headers['ratelimit-remaining']).toBeUndefined();
  });

  it('exposes the rate-limit headers to a browser on a configured origin (preflight, then the call)', async () => {
    const { broker: b } = broker({ CORS_ORIGINS: 'https://app.example.com' });
    const preflight = await request(b.publicApp)
      .options('/v1/benji/connect-token')
      .set('origin', 'https://app.example.com')
      .set('access-control-request-method', 'POST')
      .set('access-control-request-headers', 'authorization, content-type');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');

    const exposed = (res: request.Response) => String(res.headers['access-control-expose-headers']).split(',');
    const fromBrowser = async () =>
      request(b.publicApp)
        .post('/v1/benji/connect-token')
        .set('origin', 'https://app.example.com')
        .set('authorization', `Bearer ${await signUserToken({ sub: 'heidi' })}`)
        .send({ mode: 'connect' });
    const ok = await fromBrowser();
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(exposed(ok)).toEqual(
      expect.arrayContaining(['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'retry-after', 'x-request-id']),
    );
    await fromBrowser();
    await fromBrowser();
    const limited = await fromBrowser();
    expect(limited.status).toBe(429);
    expect(limited.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(exposed(limited)).toEqual(expect.arrayContaining(['ratelimit-reset', 'retry-after']));
  });

  it('costs one Redis command per counted call and none for a refused body', async () => {
    const own = uniquePrefix();
    const built = broker({ REDIS_URL: testRedisUrl, REDIS_KEY_PREFIX: own, CONNECT_TOKEN_RATE_LIMIT: '100' });
    await waitForRedis(built);
    const app = built.broker.publicApp;
    expect((await post(app, 'ivan', { mode: 'connect' })).status).toBe(200); // loads the counting script

    const monitor = await inspectRedis().monitor();
    const commands: string[][] = [];
    // Round trips only: MONITOR also shows the commands a script runs inside Redis (source "lua").
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua' && args.some((arg) => arg.startsWith(own))) commands.push(args);
    });
    try {
      for (const body of [{ mode: 'payout' }, { mode: 'connect', extra: true }, '{'])
        expect((await post(app, 'ivan', body)).status).toBe(400);
      expect((await post(app, 'ivan', { mode: 'connect' })).status).toBe(200);
      await until(() => commands.length >= 1, 'the counted call in MONITOR');
      expect((await post(app, 'ivan', { mode: 'connect' })).status).toBe(200);
      await until(() => commands.length >= 2, 'the second counted call in MONITOR');
      // Commands arrive in order: had a refused body been counted, its command would be first.
      expect(commands.map((args) => args[0]?.toLowerCase())).toEqual(['evalsha', 'evalsha']);
    } finally {
      monitor.disconnect();
      await deleteKeys(redis, own);
    }
  });
});
