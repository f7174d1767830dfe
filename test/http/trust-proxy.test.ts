import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeBenji } from '../support/fakes.js';
import { benjiApiKey, buildBroker, type TestBroker } from '../support/broker.js';

let benji: FakeBenji;
const brokers: TestBroker[] = [];
beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await benji.close();
});

/**
 * Anonymous callers are rate-limited by client IP. With TRUST_PROXY a hop count (or the proxies'
 * addresses), the IP is the one the load balancer saw, whatever a client writes before it in
 * X-Forwarded-For; `true` (refused at start) would take the client's own first entry.
 */
describe('TRUST_PROXY', () => {
  it('as a hop count, takes the address the proxy appended: a client cannot pick its own IP to dodge the limit', async () => {
    const built = buildBroker({ BENJI_BASE_URL: benji.url, FRONTEND_AUTH: 'none', CONNECT_TOKEN_RATE_LIMIT: '3', TRUST_PROXY: '1' });
    brokers.push(built);
    // Each call claims another address first; the load balancer appended the real one last.
    const spoofing = (i: number) =>
      request(built.broker.publicApp)
        .post('/v1/benji/connect-token')
        .set('x-forwarded-for', `198.51.100.${i}, 203.0.113.7`)
        .send({ mode: 1 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await spoofing(i)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('cannot be true', () => {
    expect(() => buildBroker({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY: true would trust any X-Forwarded-For a client sends/);
  });
});
