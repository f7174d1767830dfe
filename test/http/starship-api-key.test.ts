import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { secret } from '../support/secrets.js';

/*
 * STARSHIP_AUTH=api-key: every call carries the account's key and secret, HMAC-signed when the
 * credential has signing on. The fake Starship checks the signature from the request as it received
 * it, with its own code: a call that reaches its echo was signed the way Starship checks.
 */

const credential = {
  key: secret('sk_test_api-key-suite-4e8c1a7f'),
  secret: secret('api-key-suite-secret-93b6d0e2'),
  signingSecret: secret('api-key-suite-signing-7a2f5c'),
};
const apiKeyEnv = (overrides: Record<string, string> = {}): Record<string, string> => ({
  STARSHIP_AUTH: 'api-key',
  STARSHIP_USERNAME: '',
  STARSHIP_PASSWORD: '',
  STARSHIP_API_KEY: credential.key,
  STARSHIP_API_SECRET: credential.secret,
  STARSHIP_SIGNING_SECRET: credential.signingSecret,
  ...overrides,
});

let now = Date.parse('2030-05-01T12:00:00Z');
/** How far the broker's clock is from Starship's. */
let skewMs = 0;
const prefix = uniquePrefix();
const redis = inspectRedis();
let starship: FakeStarship;
const brokers: TestBroker[] = [];

function broker(env: Record<string, string> = {}): TestBroker {
  const built = buildBroker(
    { STARSHIP_BASE_URL: starship.url, REDIS_URL: testRedisUrl, REDIS_KEY_PREFIX: prefix, LOG_LEVEL: 'debug', ...apiKeyEnv(env) },
    { clock: () => now + skewMs },
  );
  brokers.push(built);
  return built;
}

beforeAll(async () => {
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword, apiKey: credential, clock: () => now });
});
afterEach(() => {
  starship.requests.length = 0;
  skewMs = 0;
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await starship.close();
  await deleteKeys(redis, prefix);
  await redis.quit();
});

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string;
}

const asOrders = (call: request.Test) => call.set('authorization', `Bearer ${serviceKeys.orders}`);

describe('signed calls, as Starship checks them', () => {
  let subject: TestBroker;
  beforeAll(() => {
    subject = broker();
  });
  const get = (pathAndQuery: string) => asOrders(request(subject.broker.internalApp).get(`/v1/starship/api/v1/echo/${pathAndQuery}`));

  it.each([
    ['no query', 'plain', ''],
    ['a query in any order', 'list?page=2&a=1&z=9', 'page=2&a=1&z=9'],
    ['repeated names', 'list?tag=b&tag=a&tag=10&tag=a', 'tag=b&tag=a&tag=10&tag=a'],
    ['percent-encoded names and values', 'find?q=caf%C3%A9&r=%2F%20+x&na%6De=v', 'q=caf%C3%A9&r=%2F%20+x&na%6De=v'],
    ['names without values, and empty values', 'list?flag&a=&b', 'flag&a=&b'],
    ['an encoded path', 'a%20b/c:d?x=1', 'x=1'],
  ])('signs a GET with %s', async (_name, pathAndQuery, query) => {
    const res = await get(pathAndQuery);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const echo = res.body as Echo;
    expect(echo.query).toBe(query);
    expect(echo.headers).toMatchObject({ 'x-api-key': credential.key, 'x-api-secret': credential.secret });
    expect(echo.headers['x-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(echo.headers.authorization).toBeUndefined();
  });

  it('signs the exact body bytes: JSON with non-ASCII characters, an empty body, no body', async () => {
    const app = subject.broker.internalApp;
    const json = JSON.stringify({ note: 'ünïcødé ✓ 🍪', amount: 25 });
    const posted = await asOrders(request(app).post('/v1/starship/api/v1/echo/orders'))
      .set('content-type', 'application/json; charset=utf-8')
      .send(json);
    expect(posted.status).toBe(200);
    expect((posted.body as Echo).body).toBe(json);

    const empty = await asOrders(request(app).put('/v1/starship/api/v1/echo/empty')).set('content-type', 'application/json').send('');
    expect(empty.status).toBe(200);
    for (const method of ['patch', 'delete'] as const) {
      expect((await asOrders(request(app)[method]('/v1/starship/api/v1/echo/nobody'))).status, method).toBe(200);
    }
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a]);
    const binary = await asOrders(request(app).post('/v1/starship/api/v1/echo/binary?b=2&a=1'))
      .set('content-type', 'application/octet-stream')
      .send(bytes);
    expect(binary.status).toBe(200);
  });

  it('is accepted with the clocks 5 minutes apart either way, refused a second more: the 401 is passed through, not replayed', async () => {
    for (const skew of [300_000, -300_000]) {
      skewMs = skew;
      expect((await get(`skew?ms=${skew}`)).status, String(skew)).toBe(200);
    }
    for (const skew of [301_000, -301_000]) {
      skewMs = skew;
      starship.requests.length = 0;
      const refused = await get(`skew?ms=${skew}`);
      expect(refused.status).toBe(401);
      expect(refused.body).toEqual({
        error: { name: 'UnauthorizedError', code: 'E_UNAUTHORIZED_ACCESS', message: 'Signature timestamp outside the allowed window' },
      });
      expect(starship.requests.filter((r) => r.path.startsWith('/api/v1'))).toHaveLength(1);
    }
  });

  it('never forwards a service’s own X-API-Key, X-API-Secret or X-Signature', async () => {
    const res = await get('headers')
      .set('x-api-key', 'sk_live_from-the-service')
      .set('x-api-secret', 'service-secret')
      .set('x-signature', 't=1,v1=00');
    expect(res.status).toBe(200);
    const { headers } = res.body as Echo;
    expect(headers['x-api-key']).toBe(credential.key);
    expect(headers['x-api-secret']).toBe(credential.secret);
    expect(headers['x-signature']).not.toBe('t=1,v1=00');
  });

  it('needs no login, session, lock or warm-up: readiness says static, the admin routes have no session', async () => {
    await subject.broker.warmUp();
    expect((await get('plain')).status).toBe(200);
    expect(starship.stats.logins + starship.stats.loginFailures + starship.stats.refreshes).toBe(0);
    expect(await redis.keys(`${prefix}starship:*`)).toEqual([]);

    const app = subject.broker.internalApp;
    expect((await request(app).get('/readyz')).body).toEqual({ status: 'ok', checks: { redis: 'ok', starshipToken: 'static' } });
    const asOps = (call: request.Test) => call.set('authorization', `Bearer ${serviceKeys.ops}`);
    const status = await asOps(request(app).get('/v1/admin/starship/session'));
    expect(status.status).toBe(200);
    expect(status.body).toEqual({ state: 'static', accessExpiresAt: null, refreshExpiresAt: null, clientId: null, cooldownUntil: null });
    const renew = await asOps(request(app).post('/v1/admin/starship/session/renew'));
    expect(renew.status).toBe(409);
    expect(renew.body.code).toBe('no_session');
  });
});

describe('a key Starship refuses', () => {
  it('passes the 401 through (no renewal, no replay), logs it at error once a minute at most, and counts it', async () => {
    const refused = broker({ STARSHIP_API_SECRET: secret('not-the-account-secret-61d0') });
    const call = () => asOrders(request(refused.broker.internalApp).get('/v1/starship/api/v1/products'));
    for (let i = 0; i < 2; i++) {
      const res = await call();
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('E_UNAUTHORIZED_ACCESS');
    }
    expect(starship.requests.filter((r) => r.path === '/api/v1/products')).toHaveLength(2);
    const logged = () =>
      refused.logs.entries().filter((e) => e.level === 'error' && String(e.msg).startsWith('Starship rejected the API key'));
    expect(logged()).toHaveLength(1);
    now += 61_000;
    expect((await call()).status).toBe(401);
    expect(logged()).toHaveLength(2);
    const metrics = (await request(refused.broker.internalApp).get('/metrics')).text;
    expect(metrics).toContain('broker_upstream_credential_rejections_total{upstream="starship",credential="api_key"} 3');
  });
});

describe('signing off', () => {
  it('sends key and secret without a signature, and Starship without signing takes them', async () => {
    const unsigned = await startFakeStarship({
      username: starshipUsername,
      password: starshipPassword,
      apiKey: { key: credential.key, secret: credential.secret },
    });
    try {
      const plain = buildBroker({ STARSHIP_BASE_URL: unsigned.url, ...apiKeyEnv({ STARSHIP_SIGNING_SECRET: '' }) });
      brokers.push(plain);
      const res = await asOrders(request(plain.broker.internalApp).get('/v1/starship/api/v1/echo/unsigned?b=1'));
      expect(res.status).toBe(200);
      expect((res.body as Echo).headers['x-signature']).toBeUndefined();
    } finally {
      await unsigned.close();
    }
  });
});
