import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { benjiApiKey, buildBroker, serviceKeys, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { signUserToken } from '../support/jwt.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { until } from '../support/until.js';

/*
 * A linked user's Benji tokens over time, through HTTP: refreshed once per lifetime whatever the
 * number of replicas, never with a refresh token twice; removed when Benji refuses the refresh;
 * renewed and replayed once on a 401; and refused at once, not queued, while Redis is down. The
 * brokers and the fake Benji share one clock, which the tests move.
 */

const hourS = 3600;
let now = Date.now();
const clock = () => now;
const redis = inspectRedis();
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  now = Date.now();
});
afterAll(async () => {
  await redis.quit();
});

const service = `Bearer ${serviceKeys.orders}`;
const userHash = (userId: string) => createHash('sha256').update(userId).digest('hex');

interface World {
  benji: FakeBenji;
  brokers: TestBroker[];
  prefix: string;
}

/** `replicas` brokers sharing one Redis prefix, one fake Benji (tokens living `accessTtlS`), one clock. */
async function world({ replicas = 1, accessTtlS = 2 * hourS, env = {} as Record<string, string> } = {}): Promise<World> {
  const benji = await startFakeBenji({ apiKey: benjiApiKey, clock, userAccessTtlS: accessTtlS });
  const prefix = uniquePrefix();
  const brokers = Array.from({ length: replicas }, () =>
    buildBroker(
      {
        BENJI_BASE_URL: benji.url,
        BENJI_AUTH_BASE_URL: benji.url,
        REDIS_URL: testRedisUrl,
        REDIS_KEY_PREFIX: prefix,
        BENJI_TIMEOUT_MS: '2000',
        ...env,
      },
      { clock },
    ),
  );
  cleanups.push(async () => {
    await Promise.all(brokers.map((b) => b.close()));
    await benji.close();
    await deleteKeys(redis, prefix);
  });
  return { benji, brokers, prefix };
}

async function link(broker: TestBroker, benji: FakeBenji, userId: string): Promise<number> {
  const res = await request(broker.broker.publicApp)
    .post('/v1/benji/exchange')
    .set('authorization', `Bearer ${await signUserToken({ sub: userId })}`)
    .send({ exchangeToken: benji.issueExchangeToken(`ext-${userId}`) });
  expect(res.status).toBe(200);
  return Number(res.body.benjiUserId);
}

const callAs = (broker: TestBroker, userId: string) =>
  request(broker.broker.internalApp).get(`/v1/benji-users/${userId}/users/me`).set('authorization', service);

describe('refresh', () => {
  it('refreshes once per user per lifetime across 4 brokers, never sending a refresh token twice', async () => {
    const { benji, brokers } = await world({ replicas: 4 });
    const alice = await link(brokers[0] as TestBroker, benji, 'alice');
    const bob = await link(brokers[1] as TestBroker, benji, 'bob');

    for (let lifetime = 1; lifetime <= 3; lifetime++) {
      // Into the refresh window (half of a 2 h lifetime, as BENJI_USER_REFRESH_BEFORE_S is a day).
      now += hourS * 1000 + 60_000;
      const calls = await Promise.all(
        Array.from({ length: 48 }, (_, i) => callAs(brokers[i % 4] as TestBroker, i % 3 === 0 ? 'bob' : 'alice')),
      );
      expect(calls.map((r) => r.status)).toEqual(Array(48).fill(200));
      expect(benji.refreshesOf(alice)).toBe(lifetime);
      expect(benji.refreshesOf(bob)).toBe(lifetime);
    }
    expect(benji.stats.refreshReuses).toBe(0);
    expect(benji.stats.refreshFailures).toBe(0);
    // The refresh is a GET with a JSON body and the partner key, as Benji documents it.
    const refresh = benji.requests.find((r) => r.path === '/access/token/refresh');
    expect(refresh?.method).toBe('GET');
    expect(refresh?.headers['x-api-key']).toBe(benjiApiKey);
    expect(refresh?.body).toEqual({ refresh_token: expect.stringMatching(/^rt_/), access_token: expect.stringMatching(/^at_/) });
  });

  it('renews the link’s TTL with each refresh', async () => {
    const { benji, brokers, prefix } = await world({ env: { BENJI_LINK_TTL_DAYS: '1' } });
    await link(brokers[0] as TestBroker, benji, 'carol');
    const key = `${prefix}benji:link:${userHash('carol')}`;
    await redis.pexpire(key, 60_000);
    now += hourS * 1000 + 60_000;
    expect((await callAs(brokers[0] as TestBroker, 'carol')).status).toBe(200);
    expect(await redis.pttl(key)).toBeGreaterThan(23 * hourS * 1000);
  });

  it('removes the link when Benji refuses the refresh, answers 404 not_linked, and logs the user by hash only', async () => {
    const { benji, brokers, prefix } = await world();
    const broker = brokers[0] as TestBroker;
    const dave = await link(broker, benji, 'dave');
    benji.revokeSession(dave);
    now += hourS * 1000 + 60_000;

    const res = await callAs(broker, 'dave');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_linked');
    expect(res.body.detail).toMatch(/connect Benji again/);
    expect(await redis.exists(`${prefix}benji:link:${userHash('dave')}`)).toBe(0);
    const warn = broker.logs.entries().find((line) => String(line.msg).includes('link removed'));
    expect(warn).toMatchObject({ level: 'warn', userHash: userHash('dave'), benjiError: 'invalid_token' });
    expect(broker.logs.text()).not.toContain('"dave"');
    // Nothing more is sent for that user.
    benji.requests.length = 0;
    expect((await callAs(broker, 'dave')).status).toBe(404);
    expect(benji.requests).toHaveLength(0);
  });

  it('keeps using a token that still works while Benji cannot refresh it, and fails once it has expired', async () => {
    const { benji, brokers } = await world();
    const broker = brokers[0] as TestBroker;
    await link(broker, benji, 'erin');
    now += hourS * 1000 + 60_000;
    benji.failOn('refresh', { kind: 'reply', status: 503, body: { error: 'maintenance' } });
    expect((await callAs(broker, 'erin')).status).toBe(200);

    now += hourS * 1000; // past expiry
    benji.failOn('refresh', { kind: 'reply', status: 503, body: { error: 'maintenance' } });
    const expired = await callAs(broker, 'erin');
    expect(expired.status).toBe(502);
    expect(expired.body.code).toBe('upstream_error');
    // The link stays: Benji being down is not the user's doing.
    expect((await callAs(broker, 'erin')).status).toBe(200);
  });

  it('does not remove links when Benji refuses the partner key', async () => {
    const { benji, brokers } = await world();
    const broker = brokers[0] as TestBroker;
    await link(broker, benji, 'frank');
    now += hourS * 1000 + 60_000;
    benji.failOn('refresh', { kind: 'reply', status: 401, body: { error: 'unauthorized_partner' } });
    expect((await callAs(broker, 'frank')).status).toBe(200);
    expect((await callAs(broker, 'frank')).status).toBe(200);
  });
});

describe('Benji answering 401 to a user-token call', () => {
  it('renews once and replays once', async () => {
    const { benji, brokers } = await world();
    const broker = brokers[0] as TestBroker;
    const gina = await link(broker, benji, 'gina');
    now += 5 * 60_000;
    benji.revokeAccess(gina);
    benji.requests.length = 0;

    const res = await callAs(broker, 'gina');
    expect(res.status).toBe(200);
    expect(benji.refreshesOf(gina)).toBe(1);
    expect(benji.requests.map((r) => r.path)).toEqual(['/users/me', '/access/token/refresh', '/users/me']);
  });

  it('passes the 401 through for a token just obtained, without renewing it', async () => {
    const { benji, brokers } = await world();
    const broker = brokers[0] as TestBroker;
    const harry = await link(broker, benji, 'harry');
    benji.revokeAccess(harry);
    const res = await callAs(broker, 'harry');
    expect(res.status).toBe(401);
    expect(benji.refreshesOf(harry)).toBe(0);
  });

  it('answers 404 not_linked when the renewal is refused too', async () => {
    const { benji, brokers } = await world();
    const broker = brokers[0] as TestBroker;
    const ivy = await link(broker, benji, 'ivy');
    now += 5 * 60_000;
    benji.revokeAccess(ivy);
    benji.failOn('refresh', { kind: 'reply', status: 400, body: { error: 'invalid_token' } });
    const res = await callAs(broker, 'ivy');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_linked');
  });
});

describe('Redis down', () => {
  let redisServer: PrivateRedis;
  let subject: TestBroker;
  let benji: FakeBenji;
  beforeAll(async () => {
    redisServer = await startPrivateRedis();
    benji = await startFakeBenji({ apiKey: benjiApiKey });
    subject = buildBroker({
      BENJI_BASE_URL: benji.url,
      BENJI_AUTH_BASE_URL: benji.url,
      REDIS_URL: redisServer.url,
      TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    });
  });
  afterAll(async () => {
    await subject.close();
    await benji.close();
    await redisServer.stop();
  });

  it('answers 503 store_unavailable at once on link routes and user-token calls; connect tokens and the partner proxy go on', async () => {
    await until(() => subject.broker.redis?.status === 'ready', 'redis ready');
    await link(subject, benji, 'jack');
    await redisServer.stop();
    await until(() => subject.broker.redis?.status !== 'ready', 'redis down');
    const user = `Bearer ${await signUserToken({ sub: 'jack' })}`;
    const app = subject.broker.publicApp;

    const startedAt = performance.now();
    const answers = await Promise.all([
      request(app).get('/v1/benji/link').set('authorization', user),
      request(app).delete('/v1/benji/link').set('authorization', user),
      request(app)
        .post('/v1/benji/exchange')
        .set('authorization', user)
        .send({ exchangeToken: benji.issueExchangeToken('ext-jack') }),
      callAs(subject, 'jack'),
      request(subject.broker.internalApp).get('/v1/benji/links/jack').set('authorization', service),
    ]);
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('store_unavailable');
      expect(res.headers['retry-after']).toBe('1');
    }
    // At once: nothing waited for a connection (the Redis client's timeouts are 500 ms and more).
    expect(performance.now() - startedAt).toBeLessThan(450);

    const connect = await request(app).post('/v1/benji/connect-token').set('authorization', user).send({ mode: 'connect' });
    expect(connect.status).toBe(200);
    const partner = await request(subject.broker.internalApp).get('/v1/benji/users/1').set('authorization', service);
    expect(partner.status).toBe(200);
  });
});

describe('without user auth or Redis', () => {
  it('has no link routes with FRONTEND_AUTH=none (404)', async () => {
    const subject = buildBroker({ FRONTEND_AUTH: 'none' });
    cleanups.push(() => subject.close());
    for (const [method, path] of [
      ['post', '/v1/benji/exchange'],
      ['get', '/v1/benji/link'],
      ['delete', '/v1/benji/link'],
    ] as const) {
      const res = await request(subject.broker.publicApp)[method](path);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
  });

  it('keeps links in memory without REDIS_URL, and says so at start', async () => {
    const benji = await startFakeBenji({ apiKey: benjiApiKey });
    const subject = buildBroker({ BENJI_BASE_URL: benji.url, BENJI_AUTH_BASE_URL: benji.url });
    cleanups.push(
      () => subject.close(),
      () => benji.close(),
    );
    expect(subject.logs.text()).toMatch(/linked users’ Benji tokens live in process memory/);
    await link(subject, benji, 'kate');
    expect((await callAs(subject, 'kate')).status).toBe(200);
  });
});

describe('CORS', () => {
  it('answers the preflight of the link routes for GET, POST and DELETE from a configured origin', async () => {
    const subject = buildBroker({ CORS_ORIGINS: 'https://app.example.com' });
    cleanups.push(() => subject.close());
    const res = await request(subject.broker.publicApp)
      .options('/v1/benji/link')
      .set('origin', 'https://app.example.com')
      .set('access-control-request-method', 'DELETE')
      .set('access-control-request-headers', 'authorization');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(res.headers['access-control-allow-methods']).toBe('GET,POST,DELETE');
    const other = await request(subject.broker.publicApp)
      .options('/v1/benji/exchange')
      .set('origin', 'https://evil.example.com')
      .set('access-control-request-method', 'POST');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});
