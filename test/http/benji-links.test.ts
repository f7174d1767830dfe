import { createHash } from 'node:crypto';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { createTokenCipher } from '../../src/credentials/stores/token-cipher.js';
import { baseEnv, benjiApiKey, buildBroker, serviceKeys, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { signUserToken } from '../support/jwt.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';

/**
 * Linked users through both doors, against the fake Benji over HTTP and a real Redis: the exchange,
 * the stored link (sealed, replaced, removed), the link routes, and calls made as the user.
 */
let benji: FakeBenji;
let subject: TestBroker;
const prefix = uniquePrefix();
const redis = inspectRedis();

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  subject = buildBroker({
    BENJI_BASE_URL: benji.url,
    BENJI_AUTH_BASE_URL: benji.url,
    REDIS_URL: testRedisUrl,
    REDIS_KEY_PREFIX: prefix,
    CONNECT_TOKEN_RATE_LIMIT: '1000',
    BENJI_TIMEOUT_MS: '1000',
  });
});
afterAll(async () => {
  await subject.close();
  await benji.close();
  await deleteKeys(redis, prefix);
  await redis.quit();
});
afterEach(() => {
  benji.requests.length = 0;
});

const asUser = async (sub: string) => `Bearer ${await signUserToken({ sub })}`;
const service = `Bearer ${serviceKeys.orders}`;
const linkKey = (userId: string) => `${prefix}benji:link:${createHash('sha256').update(userId).digest('hex')}`;

async function exchange(userId: string, exchangeToken = benji.issueExchangeToken(`ext-${userId}`)) {
  return request(subject.broker.publicApp)
    .post('/v1/benji/exchange')
    .set('authorization', await asUser(userId))
    .send({ exchangeToken });
}

describe('POST /v1/benji/exchange', () => {
  it('exchanges the token with the partner key, stores the link sealed in Redis, and answers no token', async () => {
    const res = await exchange('alice');

    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const benjiUserId = String(benji.userFor('ext-alice')?.benjiUserId);
    expect(res.body).toEqual({ linked: true, benjiUserId, linkedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    const call = benji.requests.find((r) => r.path === '/access/token/exchange');
    expect(call?.method).toBe('POST');
    expect(call?.headers['x-api-key']).toBe(benjiApiKey);

    // Sealed for its key name: no token in clear, and it opens only under that name.
    const blob = await redis.get(linkKey('alice'));
    expect(blob).not.toBeNull();
    for (const token of benji.issuedUserTokens) expect(blob).not.toContain(token);
    expect(blob).not.toContain('alice');
    const cipher = createTokenCipher(Buffer.from(baseEnv.TOKEN_ENCRYPTION_KEY ?? '', 'base64'));
    const opened = JSON.parse(cipher.decrypt(blob ?? '', linkKey('alice')) ?? 'null') as { accessToken?: string };
    expect(benji.issuedUserTokens).toContain(opened.accessToken);
    expect(cipher.decrypt(blob ?? '', linkKey('bob'))).toBeUndefined();
    // The TTL is BENJI_LINK_TTL_DAYS (180 days by default).
    expect(await redis.pttl(linkKey('alice'))).toBeGreaterThan(179 * 86_400_000);
  });

  it('replaces the link of a user who exchanges again', async () => {
    await exchange('carol');
    const first = await redis.get(linkKey('carol'));
    const res = await exchange('carol');
    expect(res.status).toBe(200);
    expect(await redis.get(linkKey('carol'))).not.toBe(first);
    const calls = await request(subject.broker.internalApp).get('/v1/benji-users/carol/users/me').set('authorization', service);
    // The newest pair is the one sent.
    const latestAccess = benji.issuedUserTokens.filter((token) => token.startsWith('at_')).at(-1);
    expect(calls.status).toBe(200);
    expect(calls.body.data.authenticatedAs).toBe('user');
    expect(benji.requests.at(-1)?.headers['x-api-key']).toBe(latestAccess);
  });

  it.each([
    ['unknown', 'xt_not-a-token-benji-issued'],
    ['already spent', 'spent'],
  ])('answers 400 invalid_exchange_token for an %s exchange token', async (_what, token) => {
    let exchangeToken = token;
    if (token === 'spent') {
      exchangeToken = benji.issueExchangeToken('ext-dave');
      expect((await exchange('dave', exchangeToken)).status).toBe(200);
    }
    const res = await exchange('dave', exchangeToken);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_exchange_token');
  });

  it('answers 502 when Benji refuses the partner key, and stores nothing', async () => {
    benji.failOn('exchange', { kind: 'reply', status: 401, body: { error: 'unauthorized_partner' } });
    const res = await exchange('erin');
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('upstream_error');
    expect(await redis.exists(linkKey('erin'))).toBe(0);
  });

  it('answers 504 when Benji does not answer in time', async () => {
    benji.failOn('exchange', { kind: 'hang' });
    const res = await exchange('frank');
    expect(res.status).toBe(504);
  });

  it.each([
    ['no token', {}, 'exchangeToken'],
    ['an empty token', { exchangeToken: '' }, 'exchangeToken'],
    ['a token over 4096 characters', { exchangeToken: 'x'.repeat(4097) }, 'exchangeToken'],
    ['a control character', { exchangeToken: 'ab\u0000cd' }, 'exchangeToken'],
    ['an unknown field', { exchangeToken: 'abc', extra: 1 }, 'extra'],
  ])('refuses a body with %s with 400, before Benji is called', async (_what, body, field) => {
    const res = await request(subject.broker.publicApp)
      .post('/v1/benji/exchange')
      .set('authorization', await asUser('gina'))
      .send(body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_request');
    expect(res.body.detail).toContain(field);
    expect(benji.requests).toHaveLength(0);
  });

  it('needs a verified user', async () => {
    const res = await request(subject.broker.publicApp).post('/v1/benji/exchange').send({ exchangeToken: 'abc' });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('unauthenticated');
  });
});

describe('GET and DELETE /v1/benji/link', () => {
  it('says whether the signed-in user is linked, and unlinks idempotently', async () => {
    const auth = await asUser('harry');
    const none = await request(subject.broker.publicApp).get('/v1/benji/link').set('authorization', auth);
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ linked: false });

    await exchange('harry');
    const linked = await request(subject.broker.publicApp).get('/v1/benji/link').set('authorization', auth);
    expect(linked.body).toEqual({ linked: true, benjiUserId: expect.any(String), linkedAt: expect.any(String) });
    expect(linked.headers['cache-control']).toBe('no-store');

    for (let i = 0; i < 2; i++) {
      const removed = await request(subject.broker.publicApp).delete('/v1/benji/link').set('authorization', auth);
      expect(removed.status).toBe(204);
    }
    expect(await redis.exists(linkKey('harry'))).toBe(0);
    const after = await request(subject.broker.publicApp).get('/v1/benji/link').set('authorization', auth);
    expect(after.body).toEqual({ linked: false });
    // And no call is made as that user any more.
    const call = await request(subject.broker.internalApp).get('/v1/benji-users/harry/users/me').set('authorization', service);
    expect(call.status).toBe(404);
    expect(call.body.code).toBe('not_linked');
  });

  it('refuses other methods with 405', async () => {
    const res = await request(subject.broker.publicApp)
      .put('/v1/benji/link')
      .set('authorization', await asUser('ivy'));
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, DELETE, HEAD');
  });
});

describe('the internal door', () => {
  it('GET /v1/benji/links/{userId} gives services the Benji ids, never a token', async () => {
    await exchange('jack');
    const res = await request(subject.broker.internalApp).get('/v1/benji/links/jack').set('authorization', service);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      linked: true,
      benjiUserId: String(benji.userFor('ext-jack')?.benjiUserId),
      merchantId: '77',
      linkedAt: expect.any(String),
      accessExpiresAt: expect.any(String),
    });
    const none = await request(subject.broker.internalApp).get('/v1/benji/links/nobody').set('authorization', service);
    expect(none.body).toEqual({ linked: false });
    const anonymous = await request(subject.broker.internalApp).get('/v1/benji/links/jack');
    expect(anonymous.status).toBe(401);
  });

  it('/v1/benji/{path} calls the partner API with the partner key, whatever key the service sent', async () => {
    const res = await request(subject.broker.internalApp)
      .get('/v1/benji/users/42?expand=wallet')
      .set('authorization', service)
      .set('x-api-key', 'a-key-the-service-made-up');
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ id: '42', type: 'users', authenticatedAs: 'partner' });
    const sent = benji.requests.at(-1);
    expect(sent?.headers['x-api-key']).toBe(benjiApiKey);
    expect(sent?.headers.authorization).toBeUndefined();
  });

  it('/v1/benji-users/{userId}/{path} calls Benji with that user’s access token', async () => {
    await exchange('kate');
    const res = await request(subject.broker.internalApp)
      .post('/v1/benji-users/kate/partnerships/49/triggers')
      .set('authorization', service)
      .send({ trigger_name: 'purchase' });
    expect(res.status).toBe(200);
    expect(res.body.data.authenticatedAs).toBe('user');
    expect(res.body.data.userId).toBe(benji.userFor('ext-kate')?.benjiUserId);
  });

  it('answers 404 not_linked for a user without a link, without calling Benji', async () => {
    const res = await request(subject.broker.internalApp).get('/v1/benji-users/nobody/users/me').set('authorization', service);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_linked');
    expect(benji.requests).toHaveLength(0);
  });

  it('finds a user whose id needs percent-encoding, and never logs the id', async () => {
    const userId = 'auth0|user/with spaces@example.com';
    await exchange(userId);
    const res = await request(subject.broker.internalApp)
      .get(`/v1/benji-users/${encodeURIComponent(userId)}/users/me`)
      .set('authorization', service);
    expect(res.status).toBe(200);
    expect(subject.logs.text()).not.toContain('auth0');
    expect(subject.logs.text()).not.toContain(encodeURIComponent(userId));
  });

  it('keeps the partner API’s allow-list and /auth closed on both proxy routes', async () => {
    await exchange('liam');
    benji.requests.length = 0;
    for (const path of [
      '/v1/benji/auth/connect',
      '/v1/benji/access/token/refresh',
      '/v1/benji/echo',
      '/v1/benji/users/../auth/connect',
      '/v1/benji/users/%2e%2e/auth',
      '/v1/benji-users/liam/auth/connect',
      '/v1/benji-users/liam/echo',
      '/v1/benji-users/liam/users/..%2fauth',
      '/v1/benji-users/liam',
    ]) {
      const res = await request(subject.broker.internalApp).get(path).set('authorization', service);
      expect([400, 403], path).toContain(res.status);
    }
    expect(benji.requests).toHaveLength(0);
  });
});
