import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { until, untilSessionStored } from '../support/until.js';

let now = Date.parse('2030-06-01T00:00:00Z');
const clock = () => now;
let redisServer: PrivateRedis;
let starship: FakeStarship;
let subject: TestBroker;

beforeAll(async () => {
  redisServer = await startPrivateRedis();
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword, clock, accessTtlS: 600 });
  subject = buildBroker(
    { STARSHIP_BASE_URL: starship.url, REDIS_URL: redisServer.url, TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') },
    { clock },
  );
});
afterAll(async () => {
  await subject.close();
  await starship.close();
  await redisServer.stop();
});

const call = () =>
  request(subject.broker.internalApp).get('/v1/starship/api/v1/products').set('authorization', `Bearer ${serviceKeys.orders}`);

it('keeps proxying while Redis is down, renews in-process, and writes the tokens back when Redis returns', async () => {
  await until(async () => (await request(subject.broker.internalApp).get('/readyz')).body.checks.redis === 'ok', 'redis ready');
  expect((await call()).status).toBe(200);

  await redisServer.stop();
  await until(async () => (await request(subject.broker.internalApp).get('/readyz')).body.checks.redis === 'down', 'redis down');

  const readiness = await request(subject.broker.internalApp).get('/readyz');
  expect(readiness.status).toBe(200);
  expect(readiness.body).toEqual({ status: 'degraded', checks: { redis: 'down', starshipToken: 'valid' } });

  // Traffic goes on with the token in hand: no failure, no waiting on Redis.
  const during = await Promise.all(Array.from({ length: 50 }, () => call()));
  expect(during.map((r) => r.status)).toEqual(Array(50).fill(200));

  // The token expires while Redis is away: the broker renews by itself.
  now += 601_000;
  const renewed = await Promise.all(Array.from({ length: 20 }, () => call()));
  expect(renewed.map((r) => r.status)).toEqual(Array(20).fill(200));
  expect(starship.stats).toMatchObject({ logins: 1, refreshes: 1 });

  await redisServer.start();
  // A fresh Redis (it keeps nothing on disk): the session must be written back.
  await untilSessionStored(redisServer.url);
  expect((await call()).status).toBe(200);
  expect(subject.logs.text()).toContain('written back');
});
