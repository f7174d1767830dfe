import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from './broker.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from './redis.js';
import { secret } from './secrets.js';

/** One broker replica of a {@link ClockedStarship}, driven through its internal door. */
export interface Replica {
  subject: TestBroker;
  call(path?: string): request.Test;
  readyz(): Promise<request.Response>;
  metrics(): Promise<string>;
}

/**
 * The fake Starship and any number of broker replicas sharing one Redis key prefix and one injected
 * clock, so a test can move time for the upstream and every replica at once.
 */
export interface ClockedStarship {
  fake: FakeStarship;
  prefix: string;
  encryptionKey: string;
  now(): number;
  advance(ms: number): void;
  /** A broker on the shared prefix, with fixed jitter (a first backoff is 750 ms). */
  replica(env?: Record<string, string | undefined>): Replica;
  /** The Authorization header of each call Starship received under /api/v1, in order. */
  apiTokens(): Array<string | undefined>;
  close(): Promise<void>;
}

export async function startClockedStarship({ accessTtlS = 900 }: { accessTtlS?: number } = {}): Promise<ClockedStarship> {
  let now = Date.parse('2030-03-01T00:00:00Z');
  const clock = () => now;
  const fake = await startFakeStarship({ username: starshipUsername, password: starshipPassword, clock, accessTtlS });
  const prefix = uniquePrefix();
  const encryptionKey = secret(randomBytes(32).toString('base64'));
  const replicas: TestBroker[] = [];

  return {
    fake,
    prefix,
    encryptionKey,
    now: clock,
    advance: (ms) => void (now += ms),
    replica(env = {}) {
      const subject = buildBroker(
        { STARSHIP_BASE_URL: fake.url, REDIS_URL: testRedisUrl, REDIS_KEY_PREFIX: prefix, TOKEN_ENCRYPTION_KEY: encryptionKey, ...env },
        { clock, random: () => 0.5 },
      );
      replicas.push(subject);
      const app = subject.broker.internalApp;
      return {
        subject,
        call: (path = '/api/v1/products') => request(app).get(`/v1/starship${path}`).set('authorization', `Bearer ${serviceKeys.orders}`),
        readyz: () => request(app).get('/readyz'),
        metrics: async () => (await request(app).get('/metrics')).text,
      };
    },
    apiTokens: () => fake.requests.filter((r) => r.path.startsWith('/api/v1')).map((r) => r.headers.authorization),
    async close() {
      await Promise.all(replicas.map((r) => r.close()));
      await fake.close();
      const redis = inspectRedis();
      await deleteKeys(redis, prefix);
      await redis.quit();
    },
  };
}
