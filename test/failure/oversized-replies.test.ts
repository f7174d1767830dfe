import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { benjiApiKey, buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { signUserToken } from '../support/jwt.js';
import { until } from '../support/until.js';

/**
 * Upstream replies the broker reads into memory (Benji's connect reply, Starship's auth replies,
 * error bodies) are read up to 64 KiB. An endless reply would otherwise be read until the call's
 * deadline (a 504, and memory spent all the while); with the cap it fails at once as a 502, and
 * both doors go on serving. The timeouts are long enough that only the cap can give a 502.
 */
let benji: FakeBenji;
let starship: FakeStarship;
// Starts at the real time: the user JWTs are signed with it. Tests move it forward a few seconds at most.
let now = Date.now();
const clock = () => now;
const brokers: TestBroker[] = [];

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  // 60 s access tokens: with STARSHIP_REFRESH_BEFORE_S capped at half the lifetime, a refresh is due after 30 s.
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword, clock, accessTtlS: 60 });
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await benji.close();
  await starship.close();
});
afterEach(() => {
  starship.requests.length = 0;
});

function broker(): TestBroker {
  const built = buildBroker(
    { BENJI_BASE_URL: benji.url, BENJI_TIMEOUT_MS: '3000', STARSHIP_BASE_URL: starship.url, STARSHIP_TIMEOUT_MS: '3000' },
    { clock, random: () => 0 },
  );
  brokers.push(built);
  return built;
}

const connectToken = async (b: TestBroker) =>
  request(b.broker.publicApp)
    .post('/v1/benji/connect-token')
    .set('authorization', `Bearer ${await signUserToken({ sub: 'big-reply' })}`)
    .send({ mode: 'connect' });
const proxied = (b: TestBroker) =>
  request(b.broker.internalApp).get('/v1/starship/api/v1/products').set('authorization', `Bearer ${serviceKeys.orders}`);

/** Both doors still answer, and a normal call still works. */
async function stillServing(b: TestBroker): Promise<void> {
  expect((await request(b.broker.publicApp).get('/healthz')).status).toBe(200);
  expect((await request(b.broker.internalApp).get('/healthz')).status).toBe(200);
  expect((await connectToken(b)).status).toBe(200);
}

const failureLine = (b: TestBroker, requestId: string) =>
  b.logs.entries().find((e) => e.requestId === requestId && e.msg === 'request failed') as { err?: { logFields?: unknown } } | undefined;

describe('Benji', () => {
  it('an endless 200 reply → 502 upstream_error, not a wait for the deadline', async () => {
    const b = broker();
    benji.fail({ kind: 'oversized', status: 200 });
    const res = await connectToken(b);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('upstream_error');
    expect(failureLine(b, res.body.requestId as string)?.err?.logFields).toMatchObject({
      upstream: 'benji',
      reason: 'reply over 65536 bytes',
    });
    await stillServing(b);
  });

  it('a reply that declares a 100 MB body → 502 upstream_error', async () => {
    const b = broker();
    benji.fail({ kind: 'oversized', status: 200, bytes: 100 * 1024 * 1024, contentLength: true });
    const res = await connectToken(b);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('upstream_error');
    await stillServing(b);
  });

  it('endless error bodies keep their meaning: 500 → 502, 429 → 503 with Retry-After', async () => {
    const b = broker();
    benji.fail({ kind: 'oversized', status: 500 });
    const failed = await connectToken(b);
    expect(failed.status).toBe(502);
    expect(failureLine(b, failed.body.requestId as string)?.err?.logFields).toMatchObject({
      upstreamStatus: 500,
      reason: 'reply over 65536 bytes',
    });

    benji.fail({ kind: 'oversized', status: 429 });
    const throttled = await connectToken(b);
    expect(throttled.status).toBe(503);
    expect(throttled.body.code).toBe('upstream_throttled');
    expect(throttled.headers['retry-after']).toBe('60');
    await stillServing(b);
  });
});

describe('Starship', () => {
  it('an endless 200 to the login → 502 for the caller; the next login works', async () => {
    const b = broker();
    const logins = starship.stats.logins;
    starship.fail('login', { kind: 'oversized', status: 200 });
    const res = await proxied(b);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('upstream_error');
    expect(starship.requests.filter((r) => r.path.startsWith('/api/'))).toHaveLength(0);

    now += 2_000; // past the first backoff
    expect((await proxied(b)).status).toBe(200);
    expect(starship.stats.logins).toBe(logins + 1);
    await stillServing(b);
  });

  it('an endless 401 to the login still counts as rejected credentials (a cooldown, not a retry storm)', async () => {
    const b = broker();
    const attempts = starship.stats.logins + starship.stats.loginFailures;
    starship.fail('login', { kind: 'oversized', status: 401 });
    const res = await proxied(b);
    expect(res.status).toBe(502);
    expect(res.body.detail).toBe('Starship rejected the broker’s credentials.');
    expect((await request(b.broker.internalApp).get('/readyz')).body.checks.starshipToken).toBe('cooldown');
    expect(starship.stats.logins + starship.stats.loginFailures).toBe(attempts + 1);
    await stillServing(b);
  });

  it('an endless 200 to a refresh counts as "may have rotated": that refresh token is never sent again', async () => {
    const b = broker();
    expect((await proxied(b)).status).toBe(200);
    const { logins, refreshes } = starship.stats;

    now += 31_000; // within the refresh window: one renewal starts while the current token serves
    starship.fail('refresh', { kind: 'oversized', status: 200 });
    expect((await proxied(b)).status).toBe(200);
    const metrics = async () => (await request(b.broker.internalApp).get('/metrics')).text;
    await until(
      async () => (await metrics()).includes('broker_starship_token_renewals_total{kind="refresh",result="unavailable"} 1'),
      'the refresh counted as a failed (not timed-out) renewal',
    );

    now += 2_000; // past the backoff: the next renewal must log in, not refresh with the spent token
    expect((await proxied(b)).status).toBe(200);
    await until(() => starship.stats.logins === logins + 1, 'a fresh login');
    expect(starship.stats.refreshes).toBe(refreshes);
    expect(starship.stats.refreshReuses).toBe(0);
    await stillServing(b);
  });

  it('proxied answers stay streamed, with no cap: 5 MiB passes through', async () => {
    const b = broker();
    const res = await request(b.broker.internalApp)
      .get(`/v1/starship/api/v1/large?bytes=${5 * 1024 * 1024}`)
      .set('authorization', `Bearer ${serviceKeys.orders}`)
      .buffer(true)
      .parse((stream, done) => {
        let length = 0;
        stream.on('data', (chunk: Buffer) => (length += chunk.length));
        stream.on('end', () => done(null, length));
      });
    expect(res.status).toBe(200);
    expect(res.body).toBe(5 * 1024 * 1024);
  });
});
