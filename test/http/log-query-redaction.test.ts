import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceKeys } from '../support/broker.js';
import { brokerWithFakes } from '../support/broker-with-fakes.js';
import { signUserToken } from '../support/jwt.js';
import { secret } from '../support/secrets.js';

/**
 * Request log lines keep a URL's query names but never the values of credential-like ones. The
 * values here are not configured anywhere (the logger's last pass could not know them): only the
 * query redaction can keep them out.
 */
const world = brokerWithFakes({ LOG_LEVEL: 'info' });
afterEach(() => {
  world.starship.requests.length = 0;
});

const lineOf = (requestId: string) => world.subject.logs.entries().find((e) => e.requestId === requestId) as { url: string; msg: string };
const asOrders = (call: request.Test) => call.set('authorization', `Bearer ${serviceKeys.orders}`);

/** Credential-like names in the forms services write them, each with a value of its own. */
const credentials = Object.fromEntries(
  [
    'key',
    'apiKey',
    'x-api-key',
    'API_KEY',
    'access_token',
    'refreshToken',
    'client_secret',
    'Password',
    'X-Amz-Signature',
    'code',
    'auth',
    'session_id',
    'credential',
    'client_assertion',
    'hmac',
    'nonce',
    'hash',
    'pin',
    'OTP',
    'state',
  ].map((name, i) => [name, secret(`third-party-value-${i}-${name.length}-9e1b7c`)]),
);
const query = Object.entries(credentials)
  .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
  .join('&');
const expectRedacted = (url: string) => {
  for (const [name, value] of Object.entries(credentials)) {
    expect(url).not.toContain(encodeURIComponent(value));
    expect(url).toContain(`${encodeURIComponent(name)}=[redacted]`);
  }
};

describe('internal door', () => {
  it('redacts credential-like ;name=value parameters in the path as well', async () => {
    const value = secret('matrix-param-value-1f3e9a');
    const res = await asOrders(request(world.subject.broker.internalApp).get(`/v1/starship/api/v1/products;key=${value};page=2?x=1`));
    expect(lineOf(res.headers['x-request-id'] as string).url).toBe('/v1/starship/api/v1/products;key=[redacted];page=2?x=1');
  });

  it('a service key in ?key= is not logged, on success or failure, and Starship still gets the query as sent', async () => {
    const ok = await asOrders(
      request(world.subject.broker.internalApp).get(`/v1/starship/api/v1/products?page=2&key=${serviceKeys.orders}`),
    );
    expect(ok.status).toBe(200);
    expect(lineOf(ok.headers['x-request-id'] as string)).toMatchObject({
      url: '/v1/starship/api/v1/products?page=2&key=[redacted]',
      msg: 'request completed',
    });
    expect(world.starship.requests.at(-1)?.path).toBe('/api/v1/products');

    world.starship.fail('api', { kind: 'reset' });
    const failed = await asOrders(
      request(world.subject.broker.internalApp).get(`/v1/starship/api/v1/products?key=${serviceKeys.orders}&page=3`),
    );
    expect(failed.status).toBe(502);
    expect(lineOf(failed.body.requestId as string)).toMatchObject({
      url: '/v1/starship/api/v1/products?key=[redacted]&page=3',
      msg: 'request failed',
    });
  });

  it('redacts every credential-like name, in any case and as part of a longer name; keeps the rest', async () => {
    const res = await asOrders(request(world.subject.broker.internalApp).get(`/v1/starship/api/v1/echo?page=2&${query}&sort=name`));
    expect(res.status).toBe(200);
    expect((res.body as { query: string }).query).toBe(`page=2&${query}&sort=name`);
    const { url } = lineOf(res.headers['x-request-id'] as string);
    expectRedacted(url);
    expect(url).toMatch(/^\/v1\/starship\/api\/v1\/echo\?page=2&.*&sort=name$/);
  });

  it('judges percent-encoded names decoded, and parameters after ; by their own name', async () => {
    const value = secret('semicolon-separated-value-4d2a91');
    const res = await asOrders(
      request(world.subject.broker.internalApp).get(`/v1/starship/api/v1/echo?api%5Fkey=${value}&a=1;token=${value}`),
    );
    expect(res.status).toBe(200);
    expect(lineOf(res.headers['x-request-id'] as string).url).toBe('/v1/starship/api/v1/echo?api%5Fkey=[redacted]&a=1;token=[redacted]');
  });
});

describe('public door', () => {
  it('redacts credential-like query values on success and on failure', async () => {
    const jwt = await signUserToken({ sub: 'query-user' });
    const ok = await request(world.subject.broker.publicApp)
      .post(`/v1/benji/connect-token?${query}`)
      .set('authorization', `Bearer ${jwt}`)
      .send({ mode: 'connect' });
    expect(ok.status).toBe(200);
    expectRedacted(lineOf(ok.headers['x-request-id'] as string).url);

    world.benji.fail({ kind: 'reply', status: 500, body: { error: 'unexpected_error' } });
    const failed = await request(world.subject.broker.publicApp)
      .post(`/v1/benji/connect-token?${query}`)
      .set('authorization', `Bearer ${jwt}`)
      .send({ mode: 'connect' });
    expect(failed.status).toBe(502);
    const line = lineOf(failed.body.requestId as string);
    expect(line.msg).toBe('request failed');
    expectRedacted(line.url);
  });
});
