import { randomBytes } from 'node:crypto';
import { createServer, get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { largeBodyByte, startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { secret } from '../support/secrets.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { until } from '../support/until.js';

/*
 * Everything the proxy does that does not depend on how the broker authenticates runs in both
 * Starship modes: a session (login, refresh, Bearer token) and the API-key scheme with signing.
 */
const modes = ['session', 'api-key'] as const;
type Mode = (typeof modes)[number];
const apiKey = {
  key: secret('sk_test_proxy-suite-key-5d1e7a9b'),
  secret: secret('proxy-suite-api-secret-0c4f2e8a'),
  signingSecret: secret('proxy-suite-signing-secret-b7e3'),
};
/** What the broker's environment adds in a mode (empty values unset the session's variables). */
const modeEnv = (mode: Mode): Record<string, string> =>
  mode === 'session'
    ? {}
    : {
        STARSHIP_AUTH: 'api-key',
        STARSHIP_USERNAME: '',
        STARSHIP_PASSWORD: '',
        STARSHIP_API_KEY: apiKey.key,
        STARSHIP_API_SECRET: apiKey.secret,
        STARSHIP_SIGNING_SECRET: apiKey.signingSecret,
      };

describe.each(modes)('STARSHIP_AUTH=%s', (mode) => {
  let starship: FakeStarship;
  let subject: TestBroker;
  const encryptionKey = randomBytes(32).toString('base64');
  const prefix = uniquePrefix();
  const redis = inspectRedis();

  beforeAll(async () => {
    starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword, ...(mode === 'api-key' && { apiKey }) });
    subject = buildBroker({
      STARSHIP_BASE_URL: starship.url,
      STARSHIP_TIMEOUT_MS: '500',
      REDIS_URL: testRedisUrl,
      REDIS_KEY_PREFIX: prefix,
      TOKEN_ENCRYPTION_KEY: encryptionKey,
      ...modeEnv(mode),
    });
  });
  afterAll(async () => {
    await subject.close();
    await starship.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });
  afterEach(() => {
    starship.requests.length = 0;
  });

  const app = () => subject.broker.internalApp;
  const asOrders = (call: request.Test) => call.set('authorization', `Bearer ${serviceKeys.orders}`);
  const apiRequests = () => starship.requests.filter((r) => r.path.startsWith('/api/v1') || r.path === '/status');

  /** The broker's own credential, as Starship received it: the session's token, or the key, secret and signature. */
  function expectBrokerCredential(headers: Record<string, string>): void {
    if (mode === 'session') {
      expect(headers.authorization).toMatch(/^Bearer at_/);
    } else {
      expect(headers).toMatchObject({ 'x-api-key': apiKey.key, 'x-api-secret': apiKey.secret });
      expect(headers['x-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(headers.authorization).toBeUndefined();
    }
  }

  interface Echo {
    method: string;
    path: string;
    query: string;
    headers: Record<string, string>;
    body: string;
  }

  describe('internal door authentication', () => {
    it('refuses calls without a valid service key, before anything reaches Starship', async () => {
      const key = serviceKeys.orders;
      const near = [
        key.slice(0, -1),
        `${key}x`,
        `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`,
        `x${key}`,
        `${key}${'x'.repeat(600)}`,
      ];
      for (const header of [undefined, 'Bearer not-a-configured-key-at-all-000', `Basic ${key}`, ...near.map((k) => `Bearer ${k}`)]) {
        const call = request(app()).get('/v1/starship/api/v1/products');
        if (header !== undefined) call.set('authorization', header);
        const res = await call;
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('unauthenticated');
      }
      expect(starship.requests).toHaveLength(0);
    });

    it('names the caller in the request log', async () => {
      const res = await asOrders(request(app()).get('/v1/starship/api/v1/products'));
      expect(res.status).toBe(200);
      const line = subject.logs.entries().find((e) => e.requestId === res.headers['x-request-id']);
      expect(line?.caller).toBe('orders');
    });

    it('is not served on the public door', async () => {
      const res = await asOrders(request(subject.broker.publicApp).get('/v1/starship/api/v1/products'));
      expect(res.status).toBe(404);
    });
  });

  describe('proxying to Starship', () => {
    it('forwards path and query exactly, with the broker’s token and not the caller’s key', async () => {
      const res = await asOrders(request(app()).get('/v1/starship/api/v1/echo/a%20b/c:d?x=1&y=%2F&z=a+b'));
      expect(res.status).toBe(200);
      const echo = res.body as Echo;
      expect(echo.method).toBe('GET');
      expect(echo.path).toBe('/api/v1/echo/a%20b/c:d');
      expect(echo.query).toBe('x=1&y=%2F&z=a+b');
      expectBrokerCredential(echo.headers);
      expect(JSON.stringify(echo)).not.toContain(serviceKeys.orders);
    });

    it('forwards bodies intact, with their content type and idempotency key', async () => {
      const body = JSON.stringify({ product: 7, amount: 25, note: 'ünïcødé ✓' });
      const res = await asOrders(request(app()).post('/v1/starship/api/v1/echo/orders'))
        .set('content-type', 'application/json; charset=utf-8')
        .set('idempotency-key', 'order-2030-0001')
        .send(body);
      const echo = res.body as Echo;
      expect(echo.method).toBe('POST');
      expect(echo.body).toBe(body);
      expect(echo.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(echo.headers['idempotency-key']).toBe('order-2030-0001');

      const created = await asOrders(request(app()).post('/v1/starship/api/v1/orders'))
        .set('idempotency-key', 'key-12345678')
        .send({ a: 1 });
      expect(created.status).toBe(201);
      expect(created.body.idempotencyKey).toBe('key-12345678');
    });

    it('forwards only allow-listed request headers, and none that Connection names', async () => {
      const res = await asOrders(request(app()).get('/v1/starship/api/v1/echo/headers'))
        .set('cookie', 'session=browser-cookie')
        .set('x-api-key', 'should-not-pass')
        .set('proxy-authorization', 'Basic Zm9vOmJhcg==')
        .set('x-forwarded-for', '10.0.0.1')
        .set('accept', 'application/json')
        .set('accept-language', 'de')
        .set('if-none-match', '"v1"')
        .set('connection', 'keep-alive, If-None-Match')
        .set('x-request-id', 'trace-proxy-1');
      const { headers } = res.body as Echo;
      expect(headers.accept).toBe('application/json');
      expect(headers['accept-language']).toBe('de');
      expect(headers['x-request-id']).toBe('trace-proxy-1');
      for (const name of ['cookie', 'proxy-authorization', 'x-forwarded-for', 'if-none-match']) expect(headers).not.toHaveProperty(name);
      expectBrokerCredential(headers); // the caller's x-api-key never passes, whatever the mode
      expect(JSON.stringify(headers)).not.toContain(serviceKeys.orders);
      expect(JSON.stringify(headers)).not.toContain('should-not-pass');
    });

    it('generates an X-Request-Id for Starship when the caller sends none', async () => {
      const res = await asOrders(request(app()).get('/v1/starship/api/v1/echo/id'));
      expect((res.body as Echo).headers['x-request-id']).toBe(res.headers['x-request-id']);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('passes back pagination headers but no cookies or hop-by-hop headers', async () => {
      const res = await asOrders(request(app()).get('/v1/starship/api/v1/echo/list'));
      expect(res.headers).toMatchObject({
        'x-page': '2',
        'x-per-page': '25',
        'x-total-count': '60',
        'x-total-pages': '3',
        'x-has-more': 'true',
      });
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.headers['x-upstream-hop']).toBeUndefined();
    });

    it('passes Starship’s own statuses through unchanged', async () => {
      expect((await asOrders(request(app()).get('/v1/starship/api/v1/products'))).status).toBe(200);
      const missing = await asOrders(request(app()).get('/v1/starship/api/v1/nothing-here'));
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ error: { name: 'NotFound', code: 404, message: 'Not found' } });
      for (const status of [400, 403, 409, 422, 429, 500, 503]) {
        starship.fail('api', { kind: 'reply', status, body: { error: { code: status } }, headers: { 'retry-after': '3' } });
        const res = await asOrders(request(app()).get('/v1/starship/api/v1/products'));
        expect(res.status).toBe(status);
        expect(res.body).toEqual({ error: { code: status } });
      }
      expect((await asOrders(request(app()).get('/v1/starship/status'))).status).toBe(200);
    });

    it('streams a 5 MB response through intact', async () => {
      const size = 5 * 1024 * 1024;
      const res = await asOrders(request(app()).get(`/v1/starship/api/v1/large?bytes=${size}`))
        .buffer(true)
        .parse((response, done) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => done(null, Buffer.concat(chunks)));
        });
      expect(res.status).toBe(200);
      const body = res.body as Buffer;
      expect(body.length).toBe(size);
      for (let i = 0; i < size; i += 4093) expect(body[i]).toBe(largeBodyByte(i));
      expect(body[size - 1]).toBe(largeBodyByte(size - 1));
    });

    it('refuses request bodies over 1 MiB with 413', async () => {
      const res = await asOrders(request(app()).post('/v1/starship/api/v1/echo/big'))
        .set('content-type', 'application/octet-stream')
        .send(Buffer.alloc(1024 * 1024 + 1));
      expect(res.status).toBe(413);
      expect(apiRequests()).toHaveLength(0);
    });
  });

  /** GET with the path sent byte for byte (HTTP clients would resolve `..` and turn `\\` into `/`). */
  async function rawGet(path: string): Promise<{ status: number; contentType: string; url: string }> {
    const server = createServer(app());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        get({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${serviceKeys.orders}` } }, resolve).on('error', reject);
      });
      res.resume();
      await new Promise((resolve) => res.on('end', resolve));
      await new Promise((resolve) => setImmediate(resolve)); // the request log is written on 'finish'
      const logged = subject.logs.entries().find((e) => e.requestId === res.headers['x-request-id']);
      return { status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), url: String(logged?.url) };
    } finally {
      server.close();
    }
  }

  describe('path safety', () => {
    it('receives attack paths exactly as written', async () => {
      expect((await rawGet('/v1/starship/api/v1/..\\..\\auth')).url).toBe('/v1/starship/api/v1/..\\..\\auth');
    });

    const attacks = [
      '/v1/starship/auth/login',
      '/v1/starship/AUTH/refresh',
      '/v1/starship/api/v1/../../auth/login',
      '/v1/starship/api/v1/%2e%2e/%2e%2e/auth/login',
      '/v1/starship/api/v1/%2E%2E/x',
      '/v1/starship/api/v1%2f..%2fauth%2flogin',
      '/v1/starship/api/v1/..%5cauth',
      '/v1/starship/api/v1/..\\..\\auth\\login',
      '/v1/starship/api/v1/%5c%5cevil.example.com',
      '/v1/starship//evil.example.com/api/v1/products',
      '/v1/starship/api/v1//evil.example.com',
      '/v1/starship/api/v1/%252e%252e/auth',
      '/v1/starship/api/v1/%00',
      '/v1/starship/api/v1/./products',
      '/v1/starship/api/v1/products#/../../auth',
      '/v1/starship/api/v1/%EF%BC%8E%EF%BC%8E/auth',
      '/v1/starship/api/v1/%zz',
      '/v1/starship/api/v2/products',
      '/v1/starship/statusx',
      '/v1/starship/internal',
      '/v1/starship/',
    ];

    it.each(attacks)('refuses %s without reaching Starship', async (path) => {
      const res = await rawGet(path);
      expect([403, 404]).toContain(res.status);
      expect(res.contentType).toMatch(/^application\/problem\+json/);
      expect(starship.requests).toHaveLength(0);
    });
  });

  describe('upstream trouble', () => {
    it('answers 504 when Starship does not answer in time, and 502 when the connection breaks', async () => {
      starship.fail('api', { kind: 'hang' });
      const slow = await asOrders(request(app()).get('/v1/starship/api/v1/products'));
      expect(slow.status).toBe(504);
      expect(slow.body.code).toBe('upstream_timeout');

      starship.fail('api', { kind: 'reset' });
      const broken = await asOrders(request(app()).get('/v1/starship/api/v1/products'));
      expect(broken.status).toBe(502);
      expect(broken.body.code).toBe('upstream_error');
    });

    // The session's own: an API key is never stored.
    if (mode === 'session') {
      it('keeps the tokens encrypted in Redis under the key prefix', async () => {
        await asOrders(request(app()).get('/v1/starship/api/v1/products'));
        const accessToken = apiRequests().at(-1)?.headers.authorization?.replace('Bearer ', '') ?? '';
        expect(accessToken).toMatch(/^at_/);
        const stored = await redis.get(`${prefix}starship:session`);
        expect(stored).toBeTruthy();
        expect(stored).not.toContain(accessToken);
        expect(stored).not.toContain(accessToken.slice(3));
        expect(await redis.pttl(`${prefix}starship:session`)).toBeGreaterThan(0);
      });
    }
  });

  // The session's admin routes; with an API key they answer `static` (starship-api-key.test.ts).
  if (mode === 'session') {
    describe('admin routes', () => {
      const asOps = (call: request.Test) => call.set('authorization', `Bearer ${serviceKeys.ops}`);

      it('show the session to admin callers only, without any token', async () => {
        await asOrders(request(app()).get('/v1/starship/api/v1/products'));
        expect((await request(app()).get('/v1/admin/starship/session')).status).toBe(401);
        const forbidden = await asOrders(request(app()).get('/v1/admin/starship/session'));
        expect(forbidden.status).toBe(403);
        expect(forbidden.body.code).toBe('forbidden');

        const res = await asOps(request(app()).get('/v1/admin/starship/session'));
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          state: 'valid',
          accessExpiresAt: expect.any(String),
          refreshExpiresAt: expect.any(String),
          clientId: '123456',
          cooldownUntil: null,
        });
        expect(JSON.stringify(res.body)).not.toMatch(/at_|rt_/);
      });

      it('renew forces a fresh login; revokePrevious logs the old session out first', async () => {
        const before = { ...starship.stats };
        const renewed = await asOps(request(app()).post('/v1/admin/starship/session/renew'));
        expect(renewed.status).toBe(200);
        expect(renewed.body.state).toBe('valid');
        expect(starship.stats.logins).toBe(before.logins + 1);
        expect(starship.stats.logouts).toBe(before.logouts);

        const rotated = await asOps(request(app()).post('/v1/admin/starship/session/renew')).send({ revokePrevious: true });
        expect(rotated.status).toBe(200);
        expect(starship.stats.logouts).toBe(before.logouts + 1);
        expect((await asOrders(request(app()).get('/v1/starship/api/v1/products'))).status).toBe(200);

        expect((await asOps(request(app()).post('/v1/admin/starship/session/renew')).send({ everything: true })).status).toBe(400);
        expect((await asOrders(request(app()).post('/v1/admin/starship/session/renew'))).status).toBe(403);
      });
    });
  }

  describe('logs', () => {
    it('never contain the Starship password, service keys, the encryption key or any token', async () => {
      const logs = subject.logs.text();
      expect(logs.length).toBeGreaterThan(0);
      for (const value of [
        starshipPassword,
        serviceKeys.orders,
        serviceKeys.ops,
        encryptionKey,
        apiKey.key,
        apiKey.secret,
        apiKey.signingSecret,
      ])
        expect(logs).not.toContain(value);
      expect(logs).not.toMatch(/\b(at|rt)_[0-9a-f]{16,}/);
    });
  });

  describe('answers cut short', () => {
    /** The internal door on a real port: these tests need a caller that can hang up. */
    async function listening(broker: TestBroker): Promise<{ port: number; close: () => Promise<void> }> {
      const server = createServer(broker.broker.internalApp);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return {
        port: (server.address() as AddressInfo).port,
        close: async () => {
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    }
    const call = (port: number, path: string) =>
      get({
        host: '127.0.0.1',
        port,
        path,
        headers: { authorization: `Bearer ${serviceKeys.orders}`, 'x-request-id': `cut-${path.length}` },
      });
    const logLine = (requestId: string) => subject.logs.entries().find((e) => e.requestId === requestId && typeof e.status === 'number');

    it('a caller hanging up before Starship answers stops the upstream call at once, not after STARSHIP_TIMEOUT_MS', async () => {
      const patient = buildBroker({ STARSHIP_BASE_URL: starship.url, STARSHIP_TIMEOUT_MS: '60000', ...modeEnv(mode) });
      const server = await listening(patient);
      try {
        expect(
          (await request(patient.broker.internalApp).get('/v1/starship/status').set('authorization', `Bearer ${serviceKeys.orders}`))
            .status,
        ).toBe(200);
        starship.fail('api', { kind: 'hang' });
        const caller = call(server.port, '/v1/starship/api/v1/products');
        caller.on('error', () => undefined);
        await until(() => apiRequests().some((r) => r.path === '/api/v1/products'), 'the call to reach Starship');
        caller.destroy();

        // The aborted upstream call is recorded as soon as it ends; left alone it would wait 60 s.
        await until(
          async () => (await request(patient.broker.internalApp).get('/metrics')).text.includes('operation="proxy",outcome="error"} 1'),
          'the upstream call to be aborted',
        );
      } finally {
        await server.close();
        await patient.close();
      }
    });

    it('a caller hanging up mid-answer stops the upstream stream, and is logged as aborted, not as a failure', async () => {
      const server = await listening(subject);
      try {
        const path = `/v1/starship/api/v1/large?bytes=${256 * 1024 * 1024}`;
        const caller = call(server.port, path);
        caller.on('error', () => undefined);
        const response = await new Promise<IncomingMessage>((resolve) => caller.once('response', resolve));
        expect(response.statusCode).toBe(200);
        await new Promise((resolve) => response.once('data', resolve));
        caller.destroy();

        await until(() => starship.abandoned.includes(path.slice('/v1/starship'.length)), 'Starship to see its answer abandoned');
        await until(() => logLine(`cut-${path.length}`) !== undefined, 'the request to be logged');
        expect(logLine(`cut-${path.length}`)).toMatchObject({ msg: 'request aborted', aborted: true, status: 200 });
      } finally {
        await server.close();
      }
    });

    it('a caller reading slowly slows Starship down: the answer is never piled up in the broker', async () => {
      const server = await listening(subject);
      try {
        const size = 64 * 1024 * 1024;
        const caller = call(server.port, `/v1/starship/api/v1/large?bytes=${size}`);
        caller.on('error', () => undefined);
        const response = await new Promise<IncomingMessage>((resolve) => caller.once('response', resolve));
        response.pause();
        const before = starship.stats.largeBytes;
        // Socket buffers on three hops hold a few MiB; a relay that ignored them would take it all.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const held = starship.stats.largeBytes - before;
        expect(held).toBeLessThan(16 * 1024 * 1024);

        let received = 0;
        response.on('data', (chunk: Buffer) => (received += chunk.length));
        response.resume();
        await new Promise((resolve) => response.once('end', resolve));
        expect(received).toBe(size);
      } finally {
        await server.close();
      }
    });

    it('Starship breaking off mid-answer cuts the caller’s answer short and is logged as a failure', async () => {
      const server = await listening(subject);
      try {
        starship.fail('api', { kind: 'cut', afterBytes: 4096 });
        const path = '/v1/starship/api/v1/products';
        const caller = call(server.port, path);
        caller.on('error', () => undefined);
        const response = await new Promise<IncomingMessage>((resolve) => caller.once('response', resolve));
        expect(response.statusCode).toBe(200);
        const declared = Number(response.headers['content-length']);
        let received = 0;
        response.on('data', (chunk: Buffer) => (received += chunk.length));
        // Never a clean end: the caller must be able to tell this answer is incomplete.
        const ending = await new Promise<string>((resolve) => {
          response.once('end', () => resolve('end'));
          response.once('aborted', () => resolve('aborted'));
          response.once('error', () => resolve('error'));
        });
        expect(ending).not.toBe('end');
        expect(received).toBeLessThan(declared);

        await until(() => logLine(`cut-${path.length}`) !== undefined, 'the request to be logged');
        // The status went out as a success before the break; the line says what happened after.
        expect(logLine(`cut-${path.length}`)).toMatchObject({
          msg: 'request failed',
          status: 200,
          aborted: true,
          err: { code: 'upstream_error' },
        });
      } finally {
        await server.close();
      }
    });
  });
});
