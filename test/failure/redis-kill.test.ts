import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RedisClient } from '../../src/redis.js';
import { Pool } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { secret } from '../support/secrets.js';
import { until, untilSessionStored } from '../support/until.js';

let redisServer: PrivateRedis;
let starship: FakeStarship;
let subject: TestBroker;
let server: Server;
let client: Pool;

beforeAll(async () => {
  redisServer = await startPrivateRedis();
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
  subject = buildBroker({
    STARSHIP_BASE_URL: starship.url,
    REDIS_URL: redisServer.url,
    TOKEN_ENCRYPTION_KEY: secret(randomBytes(32).toString('base64')),
  });
  server = createServer(subject.broker.internalApp);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 16 });
});
afterAll(async () => {
  await client.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await subject.close();
  await starship.close();
  await redisServer.stop();
});

/** Commands ioredis holds back for a connection (a private field: observed, never touched). */
const queued = (redis: RedisClient) => (redis as unknown as { offlineQueue: { length: number } }).offlineQueue.length;

it('keeps every proxied call working while Redis is killed under traffic and restarted, then writes the session back', async () => {
  const redis = subject.broker.redis!;
  await until(() => redis.status === 'ready', 'redis ready');

  const outcomes: Array<number | string> = [];
  let stop = false;
  // 16 callers in a loop, as services would keep calling through an outage.
  const workers = Array.from({ length: 16 }, async () => {
    while (!stop) {
      try {
        const res = await client.request({
          path: '/v1/starship/api/v1/products',
          method: 'GET',
          headers: { authorization: `Bearer ${serviceKeys.orders}` },
        });
        await res.body.dump();
        outcomes.push(res.statusCode);
      } catch (error) {
        outcomes.push((error as Error).message);
      }
    }
  });

  await until(() => outcomes.length >= 300, 'traffic before the kill');
  await redisServer.stop();
  await until(() => redis.status !== 'ready', 'the broker to notice');
  const atKill = outcomes.length;
  await until(() => outcomes.length >= atKill + 1_000, 'traffic during the outage');
  // Nothing piles up behind the dead Redis: no offline queue, no commands waiting.
  expect(queued(redis)).toBe(0);

  await redisServer.start();
  // A fresh Redis (it keeps nothing on disk): the session must be written back.
  await untilSessionStored(redisServer.url);
  const atReturn = outcomes.length;
  await until(() => outcomes.length >= atReturn + 300, 'traffic after the return');
  stop = true;
  await Promise.all(workers);

  expect(outcomes.filter((outcome) => outcome !== 200)).toEqual([]);
  expect(starship.stats.logins).toBe(1);
  expect(queued(redis)).toBe(0);
});
