import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { buildBroker, serviceKeys } from '../support/broker.js';
import { brokerWithFakes } from '../support/broker-with-fakes.js';
import { signUserToken } from '../support/jwt.js';

/** A Retry-After an upstream sends reaches our callers as at most 15 min, and never as nonsense. */
const world = brokerWithFakes();

const cases = [
  ['a sane delay', '120', '120'],
  ['an absurd delay', '99999999999', '900'],
  ['a date in 2100', 'Fri, 01 Jan 2100 00:00:00 GMT', '900'],
] as const;

describe('Benji 429 → 503 upstream_throttled', () => {
  const throttled = async (retryAfter: string) => {
    world.benji.fail({ kind: 'reply', status: 429, body: { error: 'rate_limited' }, headers: { 'Retry-After': retryAfter } });
    const res = await request(world.subject.broker.publicApp)
      .post('/v1/benji/connect-token')
      .set('authorization', `Bearer ${await signUserToken({ sub: 'patient-user' })}`)
      .send({ mode: 'connect' });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('upstream_throttled');
    return res.headers['retry-after'];
  };

  it.each(cases)('passes on %s as at most 900 s', async (_name, sent, passedOn) => {
    expect(await throttled(sent)).toBe(passedOn);
  });

  it.each(['0', 'Thu, 01 Jan 2015 00:00:00 GMT'])('passes on %s as 1 s, never as "retry at once"', async (sent) => {
    expect(await throttled(sent)).toBe('1');
  });

  it.each(['-5', '-99999999', 'soon', '1e9'])('treats %s as unreadable: the default 60 s', async (sent) => {
    expect(await throttled(sent)).toBe('60');
  });
});

describe('Starship throttling', () => {
  const proxied = () =>
    request(world.subject.broker.internalApp).get('/v1/starship/api/v1/products').set('authorization', `Bearer ${serviceKeys.orders}`);

  it.each(cases)('a proxied 429 passes on %s as at most 900 s', async (_name, sent, passedOn) => {
    world.starship.fail('api', { kind: 'reply', status: 429, body: { error: 'Too Many Requests' }, headers: { 'Retry-After': sent } });
    const res = await proxied();
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe(passedOn);
  });

  it.each(['-5', 'soon'])('a proxied 429 with Retry-After %s passes without the header', async (sent) => {
    world.starship.fail('api', { kind: 'reply', status: 429, body: { error: 'Too Many Requests' }, headers: { 'Retry-After': sent } });
    const res = await proxied();
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBeUndefined();
  });

  it('a throttled login with an absurd Retry-After → 503 with at most 900 s', async () => {
    const fresh = buildBroker({ STARSHIP_BASE_URL: world.starship.url });
    try {
      world.starship.fail('login', {
        kind: 'reply',
        status: 429,
        body: { error: 'Too Many Requests' },
        headers: { 'Retry-After': '99999999999' },
      });
      const res = await request(fresh.broker.internalApp)
        .get('/v1/starship/api/v1/products')
        .set('authorization', `Bearer ${serviceKeys.orders}`);
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('upstream_throttled');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(900);
    } finally {
      await fresh.close();
    }
  });
});
