import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { baseEnv, benjiApiKey, buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { jwtSecret, signUserToken } from '../support/jwt.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { uniquePrefix } from '../support/redis.js';
import { secret } from '../support/secrets.js';
import { until } from '../support/until.js';

/**
 * What an upstream says in an error is never trusted: it is logged cut to 100 characters and with
 * every configured secret scrubbed, since a broken or hostile upstream may echo our credentials.
 * The fakes here echo them; no log line may hold any of them, or any long piece of one.
 */
const redisPassword = secret('redis-password-for-the-scrub-test-5e0c');
const configured = {
  benjiApiKey,
  starshipUsername,
  starshipPassword,
  jwtSecret,
  ordersKey: serviceKeys.orders,
  opsKey: serviceKeys.ops,
  encryptionKey: baseEnv.TOKEN_ENCRYPTION_KEY ?? '',
  redisPassword,
};

let benji: FakeBenji;
let starship: FakeStarship;
let redisServer: PrivateRedis;
const brokers: TestBroker[] = [];

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
  redisServer = await startPrivateRedis({ password: redisPassword });
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await benji.close();
  await starship.close();
  await redisServer.stop();
});

/** A broker with every kind of secret configured, Redis (with a password in its URL) included. */
function broker(): TestBroker {
  const built = buildBroker({
    BENJI_BASE_URL: benji.url,
    STARSHIP_BASE_URL: starship.url,
    REDIS_URL: redisServer.url,
    // A prefix of its own: a login cooldown one test provokes must not reach the next.
    REDIS_KEY_PREFIX: uniquePrefix(),
    LOG_LEVEL: 'debug',
  });
  brokers.push(built);
  return built;
}

const connectToken = async (b: TestBroker, query = '') =>
  request(b.broker.publicApp)
    .post(`/v1/benji/connect-token${query}`)
    .set('authorization', `Bearer ${await signUserToken({ sub: 'echo-user' })}`)
    .send({ mode: 'connect' });
const proxied = (b: TestBroker, query = '') =>
  request(b.broker.internalApp).get(`/v1/starship/api/v1/products${query}`).set('authorization', `Bearer ${serviceKeys.orders}`);

/** No secret, nor any 12-character piece of one, anywhere in what the broker logged. */
function expectNoSecretIn(logs: string): void {
  for (const [name, value] of Object.entries(configured)) {
    for (let at = 0; at + 12 <= value.length; at++) {
      expect(logs.includes(value.slice(at, at + 12)), `a piece of ${name} at ${at}`).toBe(false);
    }
  }
}

const lineOf = (b: TestBroker, requestId: string) => b.logs.entries().find((e) => e.requestId === requestId);
const benjiErrorOf = (b: TestBroker, requestId: string) =>
  (lineOf(b, requestId) as { err?: { logFields?: { benjiError?: string } } } | undefined)?.err?.logFields?.benjiError;

describe('Benji error text', () => {
  it('a 401 that echoes the API key is logged with the key scrubbed', async () => {
    const b = broker();
    benji.fail({ kind: 'reply', status: 401, body: { error: `unauthorized_partner: ${benjiApiKey}`, message: benjiApiKey } });
    const res = await connectToken(b);
    expect(res.status).toBe(502);
    expect(benjiErrorOf(b, res.body.requestId as string)).toBe('unauthorized_partner: [redacted]');
    expectNoSecretIn(b.logs.text());
  });

  it.each(Object.entries(configured))('an error id that echoes the %s is logged scrubbed', async (_name, value) => {
    const b = broker();
    benji.fail({ kind: 'reply', status: 500, body: { code: `failed for ${value} (again)` } });
    const res = await connectToken(b);
    expect(res.status).toBe(502);
    expect(benjiErrorOf(b, res.body.requestId as string)).toBe('failed for [redacted] (again)');
    expectNoSecretIn(b.logs.text());
  });

  it('is cut to 100 characters, after the scrub: a secret across the cut leaves no piece behind', async () => {
    const b = broker();
    benji.fail({ kind: 'reply', status: 500, body: { error: `${'x'.repeat(85)}${benjiApiKey}${'y'.repeat(900)}` } });
    const res = await connectToken(b);
    expect(res.status).toBe(502);
    const logged = benjiErrorOf(b, res.body.requestId as string);
    expect(logged).toBe(`${'x'.repeat(85)}[redacted]yyyyy…`);
    expectNoSecretIn(b.logs.text());
  });
});

describe('Starship error text', () => {
  it('a login error that echoes the username and password is logged without them', async () => {
    const b = broker();
    starship.fail('login', {
      kind: 'reply',
      status: 401,
      body: { error: `unauthorized: ${starshipUsername}/${starshipPassword}`, message: `${starshipUsername}:${starshipPassword}` },
    });
    expect((await proxied(b)).status).toBe(502);
    const rejected = b.logs.entries().find((e) => String(e.msg).startsWith('starship login rejected'));
    expect(rejected?.upstreamError).toBe('unauthorized: [redacted]/[redacted]');
    expectNoSecretIn(b.logs.text());
  });

  it('a long wrapped error name is cut to 100 characters, the password scrubbed before the cut', async () => {
    const b = broker();
    starship.fail('login', {
      kind: 'reply',
      status: 400,
      body: { error: { name: `${'n'.repeat(80)}${starshipPassword}${'m'.repeat(5000)}`, code: 400, message: starshipPassword } },
    });
    expect((await proxied(b)).status).toBe(502);
    const rejected = b.logs.entries().find((e) => String(e.msg).startsWith('starship login rejected'));
    expect(rejected?.upstreamError).toBe(`${'n'.repeat(80)}[redacted]${'m'.repeat(10)}…`);
    expectNoSecretIn(b.logs.text());
  });

  it('scrubs a password shorter than the last pass looks for from what Starship echoed', async () => {
    const shortPassword = secret('hunter2');
    const short = await startFakeStarship({ username: starshipUsername, password: shortPassword });
    try {
      const b = buildBroker({ STARSHIP_BASE_URL: short.url, STARSHIP_PASSWORD: shortPassword, LOG_LEVEL: 'debug' });
      brokers.push(b);
      short.fail('login', { kind: 'reply', status: 401, body: { error: `no account with password ${shortPassword}` } });
      expect((await proxied(b)).status).toBe(502);
      const rejected = b.logs.entries().find((e) => String(e.msg).startsWith('starship login rejected'));
      expect(rejected?.upstreamError).toBe('no account with password [redacted]');
      expect(b.logs.text()).not.toContain(shortPassword);
    } finally {
      await short.close();
    }
  });
});

describe('the last pass over every log line', () => {
  it('scrubs a configured secret that reached a line by any other way (here: a service put one in its query)', async () => {
    const b = broker();
    // The password in REDIS_URL is a real one: the private Redis requires it.
    await until(async () => (await request(b.broker.internalApp).get('/readyz')).body.checks.redis === 'ok', 'Redis authenticated');
    const res = await proxied(b, `?q=${encodeURIComponent(benjiApiKey)}&page=2`);
    expect(res.status).toBe(200);
    expect((lineOf(b, res.headers['x-request-id'] as string) as { url?: string }).url).toBe(
      '/v1/starship/api/v1/products?q=[redacted]&page=2',
    );
    const call = await connectToken(b, `?state=${encodeURIComponent(jwtSecret)}`);
    expect(call.status).toBe(200);
    expect((lineOf(b, call.headers['x-request-id'] as string) as { url?: string }).url).toBe('/v1/benji/connect-token?state=[redacted]');
    expectNoSecretIn(b.logs.text());
  });
});
