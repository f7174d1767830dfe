import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeBenji } from '../support/fakes.js';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { benjiApiKey, buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { signUserToken } from '../support/jwt.js';

let benji: FakeBenji;
let starship: FakeStarship;
const brokers: TestBroker[] = [];

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await benji.close();
  await starship.close();
});

function broker(env: Record<string, string> = {}) {
  const built = buildBroker({ BENJI_BASE_URL: benji.url, STARSHIP_BASE_URL: starship.url, ...env });
  brokers.push(built);
  return built;
}

const scrape = async (built: TestBroker) => (await request(built.broker.internalApp).get('/metrics')).text;

describe('GET /metrics', () => {
  it('is served on the internal door only, in Prometheus text format', async () => {
    const built = broker();
    const res = await request(built.broker.internalApp).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toContain('process_cpu_user_seconds_total');
    expect((await request(built.broker.publicApp).get('/metrics')).status).toBe(404);
  });

  it('counts requests by door, route and status, upstream calls, renewals and lock waits — with no ids or secrets in labels', async () => {
    const built = broker();
    const userJwt = await signUserToken({ sub: 'user-with-a-distinctive-id' });
    const connect = await request(built.broker.publicApp)
      .post('/v1/benji/connect-token')
      .set('authorization', `Bearer ${userJwt}`)
      .send({ mode: 1 });
    expect(connect.status).toBe(200);
    await request(built.broker.publicApp).get('/no/such/route/12345');
    const proxied = await request(built.broker.internalApp)
      .get('/v1/starship/api/v1/products/1')
      .set('authorization', `Bearer ${serviceKeys.orders}`);
    expect(proxied.status).toBe(200);

    const text = await scrape(built);
    expect(text).toContain(
      'broker_http_request_duration_seconds_count{door="public",route="/v1/benji/connect-token",method="POST",status="200",caller="none"} 1',
    );
    expect(text).toContain(
      'broker_http_request_duration_seconds_count{door="public",route="unmatched",method="GET",status="404",caller="none"} 1',
    );
    expect(text).toContain(
      'broker_http_request_duration_seconds_count{door="internal",route="/v1/starship/{path}",method="GET",status="200",caller="orders"} 1',
    );
    expect(text).toContain('broker_upstream_request_duration_seconds_count{upstream="benji",operation="connect",outcome="200"} 1');
    expect(text).toContain('broker_upstream_request_duration_seconds_count{upstream="starship",operation="login",outcome="200"} 1');
    expect(text).toContain('broker_upstream_request_duration_seconds_count{upstream="starship",operation="proxy",outcome="200"} 1');
    expect(text).toContain('broker_starship_token_renewals_total{kind="login",result="success"} 1');
    expect(text).toContain('broker_starship_lock_wait_seconds_count{outcome="acquired"} 1');
    expect(text).toMatch(/broker_starship_access_token_expires_in_seconds \d+/);
    expect(text).toContain('broker_starship_login_cooldown_seconds 0');

    // Sample values are left out: a byte count or a duration may hold the digits 12345 by chance.
    const namesAndLabels = text.replace(/ [^ \n]+$/gm, '');
    expect(namesAndLabels).toContain('broker_http_request_duration_seconds_count{door="public",route="unmatched"');
    for (const leak of ['user-with-a-distinctive-id', userJwt, connect.body.token as string, serviceKeys.orders, '/products/1', '12345']) {
      expect(namesAndLabels).not.toContain(leak);
    }
    expect(namesAndLabels).not.toMatch(/\b(at|rt)_[0-9a-f]{16,}/);
  });

  it('counts Redis errors', async () => {
    const built = broker({ REDIS_URL: 'redis://127.0.0.1:1' });
    for (let i = 0; i < 100 && !(await scrape(built)).includes('broker_redis_errors_total{source="connection"}'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await scrape(built)).toMatch(/broker_redis_errors_total\{source="connection"\} [1-9]/);
  });
});

describe('GET /readyz', () => {
  it('is ok on both doors with a session in hand, and 503 on both once shutdown begins', async () => {
    const built = broker();
    await built.broker.session!.getAccessToken();
    for (const app of [built.broker.publicApp, built.broker.internalApp]) {
      const res = await request(app).get('/readyz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok', checks: { redis: 'disabled', starshipToken: 'valid' } });
    }
    built.broker.beginShutdown();
    for (const app of [built.broker.publicApp, built.broker.internalApp]) {
      const res = await request(app).get('/readyz');
      expect(res.status).toBe(503);
      expect(res.body.status).toBe('shutting_down');
    }
  });

  it('takes the internal door out while a login cooldown leaves it without a token; the public door stays in', async () => {
    const built = broker();
    starship.fail('login', { kind: 'reply', status: 429, body: {}, headers: { 'retry-after': '120' } });
    const call = await request(built.broker.internalApp)
      .get('/v1/starship/api/v1/products')
      .set('authorization', `Bearer ${serviceKeys.orders}`);
    expect(call.status).toBe(503);
    expect(call.body.code).toBe('upstream_throttled');
    expect(call.headers['retry-after']).toBe('120');

    const internal = await request(built.broker.internalApp).get('/readyz');
    expect(internal.status).toBe(503);
    expect(internal.body).toEqual({ status: 'unavailable', checks: { redis: 'disabled', starshipToken: 'cooldown' } });
    const publicDoor = await request(built.broker.publicApp).get('/readyz');
    expect(publicDoor.status).toBe(200);
    expect(await scrape(built)).toMatch(/broker_starship_login_cooldown_seconds 1[12]\d/);
  });
});
