import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LARGE_CHUNK_BYTES,
  largeBodyByte,
  startFakeStarship,
  type FakeStarship,
  type FakeStarshipOptions,
} from '../../sandbox/fake-starship.js';

const username = 'api-user';
const password = 'api-secret';

interface TokenPair {
  access_token: string;
  refresh_token: string;
  access_expires_at: string;
  refresh_expires_at: string;
  client_id: number;
}

const running: FakeStarship[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((fake) => fake.close()));
});

async function start(options: Partial<FakeStarshipOptions> = {}): Promise<FakeStarship> {
  const fake = await startFakeStarship({ username, password, ...options });
  running.push(fake);
  return fake;
}

function postJson(fake: FakeStarship, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function login(fake: FakeStarship): Promise<TokenPair> {
  const res = await postJson(fake, '/auth/login', { username, password });
  expect(res.status).toBe(200);
  return (await res.json()) as TokenPair;
}

async function refresh(fake: FakeStarship, refreshToken: string): Promise<Response> {
  return postJson(fake, '/auth/refresh', { refresh_token: refreshToken });
}

function api(fake: FakeStarship, path: string, accessToken: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${fake.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${accessToken}`, ...(init.headers as Record<string, string>) },
  });
}

const invalidToken = { error: 'Unauthorized', message: 'Invalid or expired token' };
const invalidRefresh = { error: 'unauthorized', message: 'Invalid refresh token' };

describe('fake Starship: login', () => {
  it('issues distinct opaque tokens with ISO-8601 UTC expiries from the clock', async () => {
    const now = Date.parse('2024-01-15T10:00:00.000Z');
    const fake = await start({ clock: () => now, accessTtlS: 1800, refreshTtlS: 86_400 });

    const first = await login(fake);
    const second = await login(fake);

    expect(first).toEqual({
      access_token: expect.stringMatching(/^at_[0-9a-f]+$/),
      refresh_token: expect.stringMatching(/^rt_[0-9a-f]+$/),
      access_expires_at: '2024-01-15T10:30:00.000Z',
      refresh_expires_at: '2024-01-16T10:00:00.000Z',
      client_id: 123456,
    });
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(fake.stats.logins).toBe(2);
  });

  it('defaults to 15 minute access and 7 day refresh lifetimes', async () => {
    const now = Date.parse('2024-01-15T10:00:00.000Z');
    const fake = await start({ clock: () => now });
    const pair = await login(fake);
    expect(pair.access_expires_at).toBe('2024-01-15T10:15:00.000Z');
    expect(pair.refresh_expires_at).toBe('2024-01-22T10:00:00.000Z');
  });

  it('rejects missing fields with 400 and wrong credentials with 401', async () => {
    const fake = await start();

    for (const body of [{}, { username }, { password }, { username: '', password }, { email: username, password }]) {
      const res = await postJson(fake, '/auth/login', body);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: 'validation_error', message: 'Username and password are required' });
    }
    for (const body of [
      { username, password: 'wrong' },
      { username: 'someone-else', password },
    ]) {
      const res = await postJson(fake, '/auth/login', body);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'unauthorized', message: 'Invalid credentials' });
    }
    expect(fake.stats).toMatchObject({ logins: 0, loginFailures: 7 });
  });

  it('answers garbage with 400 validation_error and keeps serving', async () => {
    const fake = await start();

    for (const body of ['{not json', '[1,2]', 'null', '"text"', '']) {
      const res = await postJson(fake, '/auth/login', body);
      expect(res.status).toBe(400);
      expect((await res.json()) as { error: string }).toMatchObject({ error: 'validation_error' });
    }
    // A JSON body without a JSON content type is not read, as a JSON body parser would not.
    const plain = await fetch(`${fake.url}/auth/login`, { method: 'POST', body: JSON.stringify({ username, password }) });
    expect(plain.status).toBe(400);
    const badRefresh = await postJson(fake, '/auth/refresh', '{"refresh_token":');
    expect(badRefresh.status).toBe(400);
    expect((await badRefresh.json()) as { error: string }).toMatchObject({ error: 'validation_error' });

    // Bytes that are not HTTP at all.
    await new Promise<void>((resolve) => {
      const socket = connect(Number(new URL(fake.url).port), '127.0.0.1', () => socket.end('\x00\x01 garbage \r\n\r\n'));
      socket.on('data', () => undefined);
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });

    await login(fake);
    const status = await fetch(`${fake.url}/status`);
    expect(status.status).toBe(200);
    expect(await status.json()).toEqual({ status: 'ok' });
  });
});

describe('fake Starship: refresh rotation', () => {
  it('issues a new pair and rejects the used refresh token, counting the reuse', async () => {
    const fake = await start();
    const first = await login(fake);

    const res = await refresh(fake, first.refresh_token);
    expect(res.status).toBe(200);
    const second = (await res.json()) as TokenPair;
    expect(second.client_id).toBe(123456);
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).not.toBe(first.refresh_token);

    const reuse = await refresh(fake, first.refresh_token);
    expect(reuse.status).toBe(401);
    expect(await reuse.json()).toEqual(invalidRefresh);

    const unknown = await refresh(fake, 'rt_unknown');
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toEqual(invalidRefresh);

    // The rotated-in token still works, once.
    expect((await refresh(fake, second.refresh_token)).status).toBe(200);
    // Without revokeAccessOnRefresh the old access token keeps working until it expires.
    expect((await api(fake, '/api/v1/products', first.access_token)).status).toBe(200);

    expect(fake.stats).toMatchObject({ refreshes: 2, refreshFailures: 2, refreshReuses: 1 });
  });

  it('with revokeAccessOnRefresh, the access token issued with the used refresh token stops working', async () => {
    const fake = await start({ revokeAccessOnRefresh: true });
    const first = await login(fake);
    const second = (await (await refresh(fake, first.refresh_token)).json()) as TokenPair;

    const old = await api(fake, '/api/v1/products', first.access_token);
    expect(old.status).toBe(401);
    expect(await old.json()).toEqual(invalidToken);
    expect((await api(fake, '/api/v1/products', second.access_token)).status).toBe(200);
  });
});

describe('fake Starship: expiry by the injected clock', () => {
  it('expires access tokens, then refresh tokens, exactly at their *_expires_at', async () => {
    let now = Date.parse('2024-01-15T10:00:00.000Z');
    const fake = await start({ clock: () => now, accessTtlS: 900, refreshTtlS: 3600 });
    const pair = await login(fake);

    now += 899_999;
    expect((await api(fake, '/api/v1/products', pair.access_token)).status).toBe(200);
    now = Date.parse(pair.access_expires_at);
    const expired = await api(fake, '/api/v1/products', pair.access_token);
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual(invalidToken);

    // The refresh token outlives the access token.
    const res = await refresh(fake, pair.refresh_token);
    expect(res.status).toBe(200);
    const next = (await res.json()) as TokenPair;
    expect(next.access_expires_at).toBe('2024-01-15T10:30:00.000Z');
    expect((await api(fake, '/api/v1/products', next.access_token)).status).toBe(200);

    now = Date.parse(next.refresh_expires_at);
    const late = await refresh(fake, next.refresh_token);
    expect(late.status).toBe(401);
    expect(await late.json()).toEqual(invalidRefresh);
    expect(fake.stats.refreshReuses).toBe(0);
  });

  it('expireAccessTokens() expires every access token issued so far, not later ones', async () => {
    const fake = await start();
    const pair = await login(fake);
    fake.expireAccessTokens();

    expect((await api(fake, '/api/v1/products', pair.access_token)).status).toBe(401);
    const next = (await (await refresh(fake, pair.refresh_token)).json()) as TokenPair;
    expect((await api(fake, '/api/v1/products', next.access_token)).status).toBe(200);
  });
});

describe('fake Starship: logout and revocation', () => {
  it('logout revokes every access and refresh token issued so far', async () => {
    const fake = await start();
    const a = await login(fake);
    const b = await login(fake);

    const res = await fetch(`${fake.url}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${a.access_token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(fake.stats.logouts).toBe(1);

    for (const token of [a.access_token, b.access_token]) {
      expect((await api(fake, '/api/v1/products', token)).status).toBe(401);
    }
    for (const token of [a.refresh_token, b.refresh_token]) {
      expect((await refresh(fake, token)).status).toBe(401);
    }
    // Revoked, not reused.
    expect(fake.stats.refreshReuses).toBe(0);
    // A fresh login works again.
    const c = await login(fake);
    expect((await api(fake, '/api/v1/products', c.access_token)).status).toBe(200);
  });

  it('logout needs a valid access token', async () => {
    const fake = await start();
    const res = await fetch(`${fake.url}/auth/logout`, { method: 'POST', headers: { authorization: 'Bearer at_nope' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual(invalidToken);
    expect(fake.stats.logouts).toBe(0);
  });

  it('revokeAll() acts like a logout from elsewhere', async () => {
    const fake = await start();
    const pair = await login(fake);
    fake.revokeAll();
    expect((await api(fake, '/api/v1/products', pair.access_token)).status).toBe(401);
    expect((await refresh(fake, pair.refresh_token)).status).toBe(401);
    expect(fake.stats.logouts).toBe(0);
  });
});

describe('fake Starship: protected API', () => {
  it('rejects missing, malformed and unknown bearer tokens', async () => {
    const fake = await start();
    const pair = await login(fake);
    for (const authorization of [undefined, 'Basic abc', `Bearer`, 'Bearer at_unknown', pair.access_token]) {
      const res = await fetch(`${fake.url}/api/v1/products`, { headers: authorization === undefined ? {} : { authorization } });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual(invalidToken);
    }
    expect(fake.stats.apiCalls).toBe(5);
  });

  it('echo returns exactly what was sent, and sends pagination and hop-by-hop headers', async () => {
    const fake = await start();
    const { access_token: token } = await login(fake);
    const body = '{"amount": 12.5, "note": "caf\u00e9 \u2615"}';

    const res = await api(fake, '/api/v1/echo/a%2Fb/c%20d/%7E?x=1&y=%2F&z', token, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-42', 'x-custom': 'yes' },
      body,
    });

    expect(res.status).toBe(200);
    const echo = (await res.json()) as { method: string; path: string; query: string; headers: Record<string, string>; body: string };
    expect(echo.method).toBe('PATCH');
    expect(echo.path).toBe('/api/v1/echo/a%2Fb/c%20d/%7E');
    expect(echo.query).toBe('x=1&y=%2F&z');
    expect(echo.body).toBe(body);
    expect(echo.headers).toMatchObject({
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'x-request-id': 'req-42',
      'x-custom': 'yes',
    });
    expect(
      Object.fromEntries(
        ['x-page', 'x-per-page', 'x-total-count', 'x-total-pages', 'x-has-more', 'x-request-id', 'x-upstream-hop', 'set-cookie'].map(
          (h) => [h, res.headers.get(h)],
        ),
      ),
    ).toEqual({
      'x-page': '2',
      'x-per-page': '25',
      'x-total-count': '60',
      'x-total-pages': '3',
      'x-has-more': 'true',
      'x-request-id': 'req-42',
      'x-upstream-hop': '1',
      'set-cookie': 'upstream_session=abc; HttpOnly',
    });

    const last = fake.requests.at(-1);
    expect(last).toMatchObject({ method: 'PATCH', path: '/api/v1/echo/a%2Fb/c%20d/%7E', body });
  });

  it('echo answers any method, without query or body, and names the Connection hop header', async () => {
    const fake = await start();
    const { access_token: token } = await login(fake);

    const res = await api(fake, '/api/v1/echo', token, { method: 'DELETE' });
    expect(await res.json()).toMatchObject({ method: 'DELETE', path: '/api/v1/echo', query: '', body: '' });

    // fetch hides Connection; read the raw response headers.
    const raw = await new Promise<string[]>((resolve, reject) => {
      const req = httpRequest(`${fake.url}/api/v1/echo/raw`, { headers: { authorization: `Bearer ${token}` } }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.rawHeaders));
      });
      req.on('error', reject);
      req.end();
    });
    const index = raw.findIndex((name) => name.toLowerCase() === 'connection');
    expect(raw[index + 1]).toBe('X-Upstream-Hop');
  });

  it('lists products with pagination headers, orders with Idempotency-Key, 404s the rest', async () => {
    const fake = await start();
    const { access_token: token } = await login(fake);

    const products = await api(fake, '/api/v1/products', token);
    expect(products.status).toBe(200);
    expect(products.headers.get('x-total-pages')).toBe('3');
    const list = (await products.json()) as Array<{ id: number; name: string }>;
    expect(list[0]).toEqual({ id: 1, name: 'Gift card' });
    expect(list.length).toBeGreaterThan(1);

    const order = (headers: Record<string, string>) =>
      api(fake, '/api/v1/orders', token, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: '{"product_id":1}',
      });
    const a = await order({ 'idempotency-key': 'order-key-0001' });
    expect(a.status).toBe(201);
    const first = (await a.json()) as { id: number; idempotencyKey: string | null };
    expect(first).toEqual({ id: expect.any(Number), idempotencyKey: 'order-key-0001' });
    // The same key is the same order; no key, a new one.
    expect(await (await order({ 'idempotency-key': 'order-key-0001' })).json()).toEqual(first);
    const keyless = (await (await order({})).json()) as { id: number; idempotencyKey: string | null };
    expect(keyless.idempotencyKey).toBeNull();
    expect(keyless.id).not.toBe(first.id);

    const missing = await api(fake, '/api/v1/nothing-here', token);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { name: 'NotFound', code: 404, message: 'Not found' } });
  });

  it('streams a 5 MB body intact', async () => {
    const fake = await start();
    const { access_token: token } = await login(fake);
    const size = 5 * 1024 * 1024 + 7;

    const res = await api(fake, `/api/v1/large?bytes=${size}`, token);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe(String(size));
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBe(size);
    let firstBad = -1;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== largeBodyByte(i)) {
        firstBad = i;
        break;
      }
    }
    expect(firstBad).toBe(-1);
    expect(largeBodyByte(LARGE_CHUNK_BYTES)).toBe(LARGE_CHUNK_BYTES % 251);

    expect((await api(fake, '/api/v1/large?bytes=-1', token)).status).toBe(400);
    expect((await api(fake, '/api/v1/large?bytes=0', token)).status).toBe(200);
  });
});

describe('fake Starship: faults', () => {
  it('reply: answers as scripted, once per request, in order, per target', async () => {
    const fake = await start();
    fake.fail(
      'login',
      {
        kind: 'reply',
        status: 429,
        body: { error: 'Too Many Requests', message: 'Too many login attempts. Please try again later.' },
        headers: { 'Retry-After': '30' },
      },
      { kind: 'reply', status: 500, body: { error: 'boom' } },
    );

    const first = await postJson(fake, '/auth/login', { username, password });
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('30');
    expect(((await first.json()) as { error: string }).error).toBe('Too Many Requests');
    expect((await postJson(fake, '/auth/login', { username, password })).status).toBe(500);
    const pair = await login(fake);
    expect(fake.stats).toMatchObject({ logins: 1, loginFailures: 2 });

    fake.fail('api', { kind: 'reply', status: 403, body: { error: 'Forbidden' } });
    fake.fail('refresh', { kind: 'reply', status: 503, body: {} });
    fake.fail('logout', { kind: 'reply', status: 502, body: {} });
    // Faults on other targets do not touch this one.
    expect((await fetch(`${fake.url}/status`)).status).toBe(200);
    expect((await api(fake, '/api/v1/products', pair.access_token)).status).toBe(403);
    expect((await api(fake, '/api/v1/products', pair.access_token)).status).toBe(200);
    expect((await refresh(fake, pair.refresh_token)).status).toBe(503);
    expect(
      (await fetch(`${fake.url}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${pair.access_token}` } })).status,
    ).toBe(502);
    // The faulted refresh did not consume the token, the faulted logout revoked nothing.
    expect((await refresh(fake, pair.refresh_token)).status).toBe(200);
    expect(fake.stats).toMatchObject({ refreshes: 1, refreshFailures: 1, logouts: 0, apiCalls: 2 });
  });

  it('delay: waits, then behaves normally', async () => {
    const fake = await start();
    fake.fail('login', { kind: 'delay', ms: 150 });
    const started = performance.now();
    const res = await postJson(fake, '/auth/login', { username, password });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(res.status).toBe(200);
    expect(fake.stats).toMatchObject({ logins: 1, loginFailures: 0 });
  });

  it('hang: never answers, and close() still finishes', async () => {
    const fake = await startFakeStarship({ username, password });
    const { access_token: token } = (await (await postJson(fake, '/auth/login', { username, password })).json()) as TokenPair;
    fake.fail('api', { kind: 'hang' });

    await expect(api(fake, '/api/v1/products', token, { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    const pending = api(fake, '/api/v1/products', token).then(
      () => 'answered',
      () => 'failed',
    );
    // The queue held one hang; the next call is normal.
    expect(await pending).toBe('answered');

    fake.fail('refresh', { kind: 'hang' });
    const hanging = refresh(fake, 'rt_whatever').then(
      () => 'answered',
      () => 'failed',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await fake.close();
    expect(await hanging).toBe('failed');
  });

  it('reset: destroys the socket', async () => {
    const fake = await start();
    fake.fail('login', { kind: 'reset' });
    await expect(postJson(fake, '/auth/login', { username, password })).rejects.toThrow(TypeError);
    await login(fake);
    expect(fake.requests.map((r) => r.path)).toEqual(['/auth/login', '/auth/login']);
    expect(fake.stats).toMatchObject({ logins: 1, loginFailures: 1 });
  });

  it('close() cancels a pending delay', async () => {
    const fake = await startFakeStarship({ username, password });
    fake.fail('login', { kind: 'delay', ms: 60_000 });
    const delayed = postJson(fake, '/auth/login', { username, password }).then(
      () => 'answered',
      () => 'failed',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await fake.close();
    expect(await delayed).toBe('failed');
  });
});
