import { generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeBenji } from '../support/fakes.js';
import { benjiApiKey, buildBroker, type TestBroker } from '../support/broker.js';
import { jwtSecret, signUserToken, startJwksServer, type JwksServer } from '../support/jwt.js';
import { secret } from '../support/secrets.js';

let benji: FakeBenji;
let jwks: JwksServer;
const brokers: TestBroker[] = [];

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  jwks = await startJwksServer();
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await benji.close();
  await jwks.close();
});
afterEach(() => {
  benji.requests.length = 0;
  jwks.setBroken(false);
});

function broker(env: Record<string, string | undefined> = {}) {
  const built = buildBroker({ BENJI_BASE_URL: benji.url, ...env });
  brokers.push(built);
  return built.broker.publicApp;
}

function ask(app: ReturnType<typeof broker>, authorization?: string) {
  const call = request(app).post('/v1/benji/connect-token');
  if (authorization !== undefined) call.set('authorization', authorization);
  return call.send({ mode: 'connect' });
}

const sentUserId = () => (benji.requests.at(-1)?.body as { user_external_id?: string } | undefined)?.user_external_id;

describe('frontend authentication with an HS256 secret', () => {
  it('refuses a call without a token: 401 problem with WWW-Authenticate, Benji not called', async () => {
    const app = broker();
    for (const header of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer not-a-jwt']) {
      const res = await ask(app, header);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('unauthenticated');
    }
    expect(benji.requests).toHaveLength(0);
  });

  it('refuses a token signed with another secret, an unsigned token, and a token without exp', async () => {
    const app = broker();
    const otherSecret = await signUserToken({ sub: 'u' }, { key: new TextEncoder().encode('another-secret-that-is-long-enough-0000') });
    const unsigned = new UnsecuredJWT({ sub: 'u' }).setExpirationTime('5m').encode();
    const noExp = await new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(jwtSecret));
    for (const token of [otherSecret, unsigned, noExp]) {
      const res = await ask(app, `Bearer ${token}`);
      expect(res.status).toBe(401);
    }
    expect(benji.requests).toHaveLength(0);
  });

  it('enforces exp and nbf with 30 seconds of tolerance', async () => {
    const app = broker();
    expect((await ask(app, `Bearer ${await signUserToken({ sub: 'u' }, { expiresInS: -20 })}`)).status).toBe(200);
    expect((await ask(app, `Bearer ${await signUserToken({ sub: 'u' }, { expiresInS: -40 })}`)).status).toBe(401);
    expect((await ask(app, `Bearer ${await signUserToken({ sub: 'u' }, { notBeforeS: 20 })}`)).status).toBe(200);
    expect((await ask(app, `Bearer ${await signUserToken({ sub: 'u' }, { notBeforeS: 40 })}`)).status).toBe(401);
  });

  it('checks issuer and audience when configured', async () => {
    const app = broker({ FRONTEND_JWT_ISSUER: 'https://id.example.com', FRONTEND_JWT_AUDIENCE: 'rewards-app' });
    const good = await signUserToken({ sub: 'u', iss: 'https://id.example.com', aud: 'rewards-app' });
    const wrongIssuer = await signUserToken({ sub: 'u', iss: 'https://evil.example.com', aud: 'rewards-app' });
    const wrongAudience = await signUserToken({ sub: 'u', iss: 'https://id.example.com', aud: 'other-app' });
    expect((await ask(app, `Bearer ${good}`)).status).toBe(200);
    expect((await ask(app, `Bearer ${wrongIssuer}`)).status).toBe(401);
    expect((await ask(app, `Bearer ${wrongAudience}`)).status).toBe(401);
  });

  it('takes the user id from the configured claim, and refuses a token without it', async () => {
    const app = broker({ FRONTEND_USER_CLAIM: 'uid' });
    expect((await ask(app, `Bearer ${await signUserToken({ sub: 'ignored', uid: 'member-77' })}`)).status).toBe(200);
    expect(sentUserId()).toBe('member-77');
    expect((await ask(app, `Bearer ${await signUserToken({ uid: 4242 })}`)).status).toBe(200);
    expect(sentUserId()).toBe('4242');
    const res = await ask(app, `Bearer ${await signUserToken({ sub: 'only-sub' })}`);
    expect(res.status).toBe(401);
    expect(benji.requests).toHaveLength(2);
  });
});

describe('frontend authentication with a JWKS', () => {
  it('accepts RS256 and ES256 tokens signed by the identity provider', async () => {
    const app = broker({ FRONTEND_JWT_SECRET: undefined, FRONTEND_JWKS_URL: jwks.url });
    const rs = await signUserToken({ sub: 'rsa-user' }, { alg: 'RS256', key: jwks.keys.rs256, kid: 'rsa-1' });
    const es = await signUserToken({ sub: 'ec-user' }, { alg: 'ES256', key: jwks.keys.es256, kid: 'ec-1' });
    expect((await ask(app, `Bearer ${rs}`)).status).toBe(200);
    expect(sentUserId()).toBe('rsa-user');
    expect((await ask(app, `Bearer ${es}`)).status).toBe(200);
    expect(sentUserId()).toBe('ec-user');
  });

  it('refuses HS256 tokens when only a JWKS is configured, and keys the provider does not publish', async () => {
    const app = broker({ FRONTEND_JWT_SECRET: undefined, FRONTEND_JWKS_URL: jwks.url });
    const stranger = await generateKeyPair('RS256');
    const hs = await signUserToken({ sub: 'u' });
    const foreign = await signUserToken({ sub: 'u' }, { alg: 'RS256', key: stranger.privateKey, kid: 'rsa-1' });
    expect((await ask(app, `Bearer ${hs}`)).status).toBe(401);
    expect((await ask(app, `Bearer ${foreign}`)).status).toBe(401);
    expect(benji.requests).toHaveLength(0);
  });

  it('accepts either kind when both a secret and a JWKS are configured', async () => {
    const app = broker({ FRONTEND_JWKS_URL: jwks.url });
    expect((await ask(app, `Bearer ${await signUserToken({ sub: 'hs' })}`)).status).toBe(200);
    const rs = await signUserToken({ sub: 'rs' }, { alg: 'RS256', key: jwks.keys.rs256, kid: 'rsa-1' });
    expect((await ask(app, `Bearer ${rs}`)).status).toBe(200);
  });

  it('answers 503 auth_unavailable, not 401, when the JWKS cannot be fetched', async () => {
    const app = broker({ FRONTEND_JWT_SECRET: undefined, FRONTEND_JWKS_URL: jwks.url });
    jwks.setBroken(true);
    const rs = await signUserToken({ sub: 'u' }, { alg: 'RS256', key: jwks.keys.rs256, kid: 'rsa-1' });
    const res = await ask(app, `Bearer ${rs}`);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('auth_unavailable');
    expect(benji.requests).toHaveLength(0);
  });
});

describe('FRONTEND_AUTH=none', () => {
  it('issues anonymous tokens without a user id and warns at start', async () => {
    const built = buildBroker({ BENJI_BASE_URL: benji.url, FRONTEND_AUTH: 'none', FRONTEND_JWT_SECRET: undefined });
    brokers.push(built);
    const res = await ask(built.broker.publicApp);
    expect(res.status).toBe(200);
    expect(benji.requests.at(-1)?.body).not.toHaveProperty('user_external_id');
    expect(built.logs.entries().some((e) => e.level === 'warn' && String(e.msg).includes('FRONTEND_AUTH=none'))).toBe(true);
  });
});

describe('verified-token cache', () => {
  it('serves a repeated token without re-verifying, yet still expires it and never accepts a variant', async () => {
    let now = Date.now();
    const built = buildBroker({ BENJI_BASE_URL: benji.url }, { clock: () => now });
    brokers.push(built);
    const app = built.broker.publicApp;
    const token = await signUserToken({ sub: 'cached-user' }, { expiresInS: 10 });

    expect((await ask(app, `Bearer ${token}`)).status).toBe(200);
    expect((await ask(app, `Bearer ${token}`)).status).toBe(200);
    // A changed signature is another string: not in the cache, and it does not verify.
    const forged = `${token.slice(0, -2)}${token.endsWith('A') ? 'B' : 'A'}A`;
    expect((await ask(app, `Bearer ${forged}`)).status).toBe(401);

    now += 39_000; // exp + 29 s: inside the 30 s tolerance
    expect((await ask(app, `Bearer ${token}`)).status).toBe(200);
    now += 2_000; // exp + 31 s: past it, cached or not
    expect((await ask(app, `Bearer ${token}`)).status).toBe(401);
    expect(benji.requests.filter((r) => (r.body as { user_external_id?: string }).user_external_id === 'cached-user')).toHaveLength(3);
    const metrics = (await request(built.broker.internalApp).get('/metrics')).text;
    expect(metrics).toContain('broker_user_token_checks_total{outcome="verified"} 1');
    expect(metrics).toContain('broker_user_token_checks_total{outcome="cached"} 2');
    expect(metrics).toContain('broker_user_token_checks_total{outcome="rejected"} 2');
  });
});

describe('why a user token was refused', () => {
  const key = new TextEncoder().encode(jwtSecret);
  let sequence = 0;

  /** Calls with a request id, and returns the answer with the request line the broker logged for it. */
  async function refusal(built: TestBroker, authorization: string | undefined) {
    const requestId = `refusal-${++sequence}`;
    const call = request(built.broker.publicApp).post('/v1/benji/connect-token').set('x-request-id', requestId);
    if (authorization !== undefined) call.set('authorization', authorization);
    const res = await call.send({ mode: 'connect' });
    const line = built.logs.entries().find((entry) => entry.requestId === requestId && entry.msg === 'request completed');
    return { res, line };
  }

  it('writes the reason on the request line at info, while the caller gets the same 401 as before', async () => {
    const built = buildBroker({
      BENJI_BASE_URL: benji.url,
      FRONTEND_JWKS_URL: jwks.url,
      FRONTEND_JWT_ISSUER: 'https://id.example.com',
      FRONTEND_JWT_AUDIENCE: 'rewards-app',
    });
    brokers.push(built);
    const claims = { sub: 'user-reason', iss: 'https://id.example.com', aud: 'rewards-app' };
    const now = Math.floor(Date.now() / 1000);
    const stranger = await generateKeyPair('RS256');
    const cases: Array<[string, string]> = [
      ['bad_signature', await signUserToken(claims, { key: new TextEncoder().encode('another-secret-that-is-long-enough-0000') })],
      ['expired', await signUserToken(claims, { expiresInS: -120 })],
      ['not_yet_valid', await signUserToken(claims, { notBeforeS: 120 })],
      ['wrong_audience', await signUserToken({ ...claims, aud: 'other-app-audience' })],
      ['wrong_issuer', await signUserToken({ ...claims, iss: 'https://other-issuer.example.com' })],
      ['missing_aud', await signUserToken({ sub: 'user-reason', iss: 'https://id.example.com' })],
      ['missing_exp', secret(await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).sign(key))],
      ['no_matching_key', await signUserToken(claims, { alg: 'RS256', key: stranger.privateKey, kid: 'unknown-kid' })],
      ['bad_signature', await signUserToken(claims, { alg: 'RS256', key: stranger.privateKey, kid: 'rsa-1' })],
      ['algorithm_not_accepted', new UnsecuredJWT(claims).setExpirationTime('5m').encode()],
      ['algorithm_not_accepted', await signUserToken(claims, { alg: 'HS384' })],
      ['malformed', 'not-a-jwt'],
      [
        'invalid_exp',
        secret(await new SignJWT({ ...claims, exp: 'tomorrow' } as unknown as JWTPayload).setProtectedHeader({ alg: 'HS256' }).sign(key)),
      ],
    ];
    for (const [reason, token] of cases) {
      const { res, line } = await refusal(built, `Bearer ${token}`);
      expect(res.status, reason).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.body, reason).toMatchObject({ code: 'unauthenticated', detail: 'The user token is not valid.' });
      expect(JSON.stringify(res.body)).not.toContain(reason);
      expect(line, reason).toMatchObject({ level: 'info', status: 401, problem: 'unauthenticated', reason });
    }

    expect((await refusal(built, undefined)).line?.reason).toBe('no_bearer_token');
    const anonymousClaims = await signUserToken({ iss: 'https://id.example.com', aud: 'rewards-app' });
    const noUser = await refusal(built, `Bearer ${anonymousClaims}`);
    expect(noUser.res.status).toBe(401);
    expect(noUser.line?.reason).toBe('no_user_claim');
    expect(benji.requests).toHaveLength(0);

    // The reason names the check, never a value from the token.
    expect(built.logs.text()).not.toMatch(/other-app-audience|other-issuer|user-reason|tomorrow/);
  });
});

describe('tokens with an absurd lifetime', () => {
  const key = new TextEncoder().encode(jwtSecret);
  const nowS = 2_000_000_000;
  const sign = (claims: { iat?: number; exp: number }) =>
    new SignJWT({ sub: 'long-lived', ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(key)
      .then((token) => `Bearer ${secret(token)}`);

  function fixedClockBroker(env: Record<string, string> = {}) {
    const built = buildBroker({ BENJI_BASE_URL: benji.url, ...env }, { clock: () => nowS * 1000 });
    brokers.push(built);
    return built;
  }
  const reasonOf = (built: TestBroker, requestId: string) =>
    built.logs.entries().find((entry) => entry.requestId === requestId && entry.msg === 'request completed')?.reason;
  const call = (built: TestBroker, authorization: string, requestId: string) =>
    request(built.broker.publicApp)
      .post('/v1/benji/connect-token')
      .set('authorization', authorization)
      .set('x-request-id', requestId)
      .send({ mode: 'connect' });

  it('refuses an exp more than FRONTEND_JWT_MAX_AGE_S (default 24 h) after iat, or after now without iat', async () => {
    const built = fixedClockBroker();
    const day = 86_400;
    expect((await call(built, await sign({ iat: nowS, exp: nowS + day }), 'life-1')).status).toBe(200);
    expect((await call(built, await sign({ iat: nowS, exp: nowS + day + 1 }), 'life-2')).status).toBe(401);
    expect(reasonOf(built, 'life-2')).toBe('lifetime_too_long');
    // Issued two days ago and still valid for an hour: it claimed a 49-hour life.
    expect((await call(built, await sign({ iat: nowS - 2 * day, exp: nowS + 3600 }), 'life-3')).status).toBe(401);
    expect(reasonOf(built, 'life-3')).toBe('lifetime_too_long');
    // Without iat the lifetime counts from now.
    expect((await call(built, await sign({ exp: nowS + day }), 'life-4')).status).toBe(200);
    expect((await call(built, await sign({ exp: nowS + 10 * 365 * day }), 'life-5')).status).toBe(401);
    expect(reasonOf(built, 'life-5')).toBe('lifetime_too_long');
  });

  it('refuses an iat in the future beyond the 30 s tolerance', async () => {
    const built = fixedClockBroker();
    expect((await call(built, await sign({ iat: nowS + 30, exp: nowS + 600 }), 'iat-1')).status).toBe(200);
    expect((await call(built, await sign({ iat: nowS + 31, exp: nowS + 600 }), 'iat-2')).status).toBe(401);
    expect(reasonOf(built, 'iat-2')).toBe('issued_in_future');
  });

  it('takes the bound from FRONTEND_JWT_MAX_AGE_S', async () => {
    const built = fixedClockBroker({ FRONTEND_JWT_MAX_AGE_S: '3600' });
    expect((await call(built, await sign({ iat: nowS, exp: nowS + 3600 }), 'max-1')).status).toBe(200);
    expect((await call(built, await sign({ iat: nowS, exp: nowS + 3601 }), 'max-2')).status).toBe(401);
    expect(reasonOf(built, 'max-2')).toBe('lifetime_too_long');
  });
});
