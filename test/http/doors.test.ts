import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeBenji } from '../support/fakes.js';
import { benjiApiKey, buildBroker, serviceKeys, type TestBroker } from '../support/broker.js';
import { signUserToken } from '../support/jwt.js';
import { readPackageVersion } from '../../src/package-version.js';

let benji: FakeBenji;
let subject: TestBroker;

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  subject = buildBroker({ BENJI_BASE_URL: benji.url, CORS_ORIGINS: 'https://app.example.com,http://localhost:3000/' });
});
afterAll(async () => {
  await subject.close();
  await benji.close();
});

const doors = () =>
  [
    ['public', subject.broker.publicApp],
    ['internal', subject.broker.internalApp],
  ] as const;

describe('both doors', () => {
  it('answer /healthz and /readyz without logging them', async () => {
    for (const [door, app] of doors()) {
      const health = await request(app).get('/healthz');
      expect(health.status).toBe(200);
      expect(health.body).toEqual({ status: 'ok', version: readPackageVersion() });
      const ready = await request(app).get('/readyz');
      expect(ready.status).toBe(200);
      // No Starship session yet: the internal door will log in on first use, so it serves, degraded.
      expect(ready.body).toEqual({ status: door === 'public' ? 'ok' : 'degraded', checks: { redis: 'disabled', starshipToken: 'none' } });
    }
    expect(subject.logs.text()).not.toMatch(/healthz|readyz/);
  });

  it('answer unknown routes with a 404 problem', async () => {
    for (const [, app] of doors()) {
      const res = await request(app).get('/nope');
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ type: 'about:blank', status: 404, code: 'not_found', title: 'Not found' });
    }
  });

  it('keep each door’s routes to its own port', async () => {
    // On the internal door /v1/benji/* is the Benji proxy's: a user token is no service key, and
    // with one the path is outside BENJI_PROXY_ALLOW. Benji's /auth is never reached from there.
    const token = await signUserToken({ sub: 'u' });
    const asUser = await request(subject.broker.internalApp)
      .post('/v1/benji/connect-token')
      .set('authorization', `Bearer ${token}`)
      .send({ mode: 1 });
    expect(asUser.status).toBe(401);
    const asService = await request(subject.broker.internalApp)
      .post('/v1/benji/connect-token')
      .set('authorization', `Bearer ${serviceKeys.orders}`)
      .send({ mode: 1 });
    expect(asService.status).toBe(403);
    const starshipOnPublic = await request(subject.broker.publicApp)
      .get('/v1/starship/api/v1/products')
      .set('authorization', `Bearer ${serviceKeys.orders}`);
    expect(starshipOnPublic.status).toBe(404);
    expect(benji.requests).toHaveLength(0);
  });

  it('send the security headers of a JSON API, on errors too, and no x-powered-by', async () => {
    const expected = {
      // Browsers call this door: nothing may frame or run its answers, and HTTPS is sticky.
      public: {
        'content-security-policy': "default-src 'none';frame-ancestors 'none'",
        'cross-origin-resource-policy': 'same-origin',
        'referrer-policy': 'no-referrer',
        'strict-transport-security': 'max-age=31536000; includeSubDomains',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
      },
      // Services call this one: nosniff is all that means anything to them.
      internal: { 'x-content-type-options': 'nosniff' },
    };
    const securityHeader =
      /^(content-security-policy|cross-origin-.*|origin-agent-cluster|referrer-policy|strict-transport-security|x-content-type-options|x-dns-prefetch-control|x-download-options|x-frame-options|x-permitted-cross-domain-policies|x-xss-protection)$/;
    for (const [door, app] of doors()) {
      for (const res of [await request(app).get('/healthz'), await request(app).get('/nope')]) {
        const sent = Object.fromEntries(Object.entries(res.headers).filter(([name]) => securityHeader.test(name)));
        expect(sent, door).toEqual(expected[door]);
        expect(res.headers['x-powered-by']).toBeUndefined();
      }
    }
  });

  it('echo a sane X-Request-Id, replace an unsafe one, and put it in problems and logs', async () => {
    const kept = await request(subject.broker.publicApp).get('/nope').set('x-request-id', 'trace-abc.123');
    expect(kept.headers['x-request-id']).toBe('trace-abc.123');
    expect(kept.body.requestId).toBe('trace-abc.123');

    const replaced = await request(subject.broker.publicApp).get('/nope').set('x-request-id', 'evil id "with" spaces {}');
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(replaced.body.requestId).toBe(replaced.headers['x-request-id']);

    const generated = await request(subject.broker.publicApp).get('/nope');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const logged = subject.logs.entries().map((e) => e.requestId);
    expect(logged).toContain('trace-abc.123');
    expect(logged).toContain(generated.headers['x-request-id']);
  });
});

describe('CORS on the public door', () => {
  it('allows a preflight from a configured origin for authorization and content-type', async () => {
    const res = await request(subject.broker.publicApp)
      .options('/v1/benji/connect-token')
      .set('origin', 'http://localhost:3000')
      .set('access-control-request-method', 'POST')
      .set('access-control-request-headers', 'authorization, content-type');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('http://localhost:3000');
    expect(res.headers['access-control-allow-headers']).toBe('authorization,content-type');
    expect(res.headers['access-control-allow-methods']).toBe('POST');
  });

  it('gives no CORS grant to other origins', async () => {
    const res = await request(subject.broker.publicApp)
      .options('/v1/benji/connect-token')
      .set('origin', 'https://evil.example.com')
      .set('access-control-request-method', 'POST');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('gives no CORS grant at all when CORS_ORIGINS is unset', async () => {
    const plain = buildBroker({ BENJI_BASE_URL: benji.url });
    try {
      const res = await request(plain.broker.publicApp)
        .options('/v1/benji/connect-token')
        .set('origin', 'https://app.example.com')
        .set('access-control-request-method', 'POST');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await plain.close();
    }
  });

  it('grants the actual call from a configured origin and exposes the request id', async () => {
    const token = await signUserToken({ sub: 'u' });
    const res = await request(subject.broker.publicApp)
      .post('/v1/benji/connect-token')
      .set('origin', 'https://app.example.com')
      .set('authorization', `Bearer ${token}`)
      .send({ mode: 'connect' });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(res.headers['access-control-expose-headers']).toContain('x-request-id');
  });

  it('grants nothing on the probes or the OpenAPI document, even to a configured origin', async () => {
    for (const path of ['/healthz', '/readyz', '/openapi.json']) {
      const res = await request(subject.broker.publicApp).get(path).set('origin', 'https://app.example.com');
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin'], path).toBeUndefined();
    }
  });
});
