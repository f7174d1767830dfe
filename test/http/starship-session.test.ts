import request from 'supertest';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Fault, FakeStarship } from '../../sandbox/fake-starship.js';
import { serviceKeys } from '../support/broker.js';
import { startClockedStarship, type ClockedStarship, type Replica } from '../support/clocked-starship.js';
import { inspectRedis } from '../support/redis.js';
import { until } from '../support/until.js';

/*
 * What a proxied call gets when Starship answers 401, and what readiness says meanwhile: the
 * broker against the fake Starship and a real Redis, with one injected clock for both.
 */

const redis = inspectRedis();
const started: ClockedStarship[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await redis.quit();
});

/** One broker on a fake Starship of its own. */
async function setup(options: { accessTtlS?: number } = {}): Promise<ClockedStarship & Replica> {
  const starship = await startClockedStarship(options);
  started.push(starship);
  return { ...starship, ...starship.replica() };
}

const refusal = { error: 'Unauthorized', message: 'Invalid or expired token' };
const unauthorized: Fault = { kind: 'reply', status: 401, body: refusal };
const renewals = (fake: FakeStarship) => fake.stats.logins + fake.stats.refreshes;

describe('a 401 from Starship', () => {
  it('renews and replays once when Starship rejects the current token', async () => {
    const s = await setup();
    expect((await s.call()).status).toBe(200);
    s.advance(60_000);
    s.fake.revokeAll();

    const res = await s.call('/api/v1/echo/replay').set('content-type', 'text/plain').send('same body twice');
    expect(res.status).toBe(200);
    expect((res.body as { body: string }).body).toBe('same body twice');
    const posts = s.fake.requests.filter((r) => r.path === '/api/v1/echo/replay');
    expect(posts.map((r) => r.body)).toEqual(['same body twice', 'same body twice']);
    expect(posts[0]?.headers.authorization).not.toBe(posts[1]?.headers.authorization);
    // The refresh token was revoked too: one refused refresh, then one login.
    expect(s.fake.stats).toMatchObject({ logins: 2, refreshes: 0, refreshFailures: 1 });
  });

  it('passes a second 401 through instead of looping', async () => {
    const s = await setup();
    expect((await s.call()).status).toBe(200);
    s.advance(60_000);
    s.fake.fail('api', unauthorized, unauthorized);

    const res = await s.call();
    expect(res.status).toBe(401);
    expect(res.body).toEqual(refusal);
    const [, first, replay] = s.apiTokens();
    expect(replay).not.toBe(first);
    expect(s.apiTokens()).toHaveLength(3);
  });

  it('from an endpoint that refuses for its own reasons does not rotate the session on every call', async () => {
    const s = await setup();
    expect((await s.call()).status).toBe(200);
    s.advance(60_000);
    s.fake.fail('api', ...Array<Fault>(40).fill(unauthorized));

    // The first 401 renews once (the token was a minute old) and the replay is refused too; the
    // calls after it carry a token obtained moments ago, so their 401s pass straight through.
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await s.call('/api/v1/orders')).status);
    expect(statuses).toEqual(Array(10).fill(401));
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 1 });
    expect(s.fake.stats.apiCalls).toBe(1 + 10 + 1);

    // Renewing on a 401 happens at most once per max(30 s, 1 % of the token's lifetime).
    s.advance(29_000);
    expect((await s.call('/api/v1/orders')).status).toBe(401);
    expect(renewals(s.fake)).toBe(2);
    s.advance(2_000);
    expect((await s.call('/api/v1/orders')).status).toBe(401);
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 2 });
  });

  it('right after a renewal is passed through: for a long-lived token, within 1 % of its lifetime', async () => {
    const s = await setup({ accessTtlS: 6 * 3600 }); // 1 % is 216 s
    expect((await s.call()).status).toBe(200);
    s.advance(6 * 3600_000 - 200_000); // inside the refresh window: a background refresh
    expect((await s.call()).status).toBe(200);
    await until(async () => s.fake.stats.refreshes === 1 && (await s.readyz()).body.checks.starshipToken === 'valid', 'the refresh');

    s.advance(200_000);
    s.fake.fail('api', unauthorized);
    const res = await s.call();
    expect(res.status).toBe(401);
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 1 });
    expect((await s.call()).status).toBe(200);

    s.advance(20_000); // 220 s after the refresh: now a 401 renews and replays
    s.fake.fail('api', unauthorized);
    expect((await s.call()).status).toBe(200);
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 2 });
  });

  it.each<[string, Fault]>([
    ['throttled', { kind: 'reply', status: 429, body: { error: 'Too Many Requests' }, headers: { 'retry-after': '60' } }],
    ['failing with 503', { kind: 'reply', status: 503, body: { error: 'unavailable' } }],
    ['cut off', { kind: 'reset' }],
  ])('followed by a refresh %s leaves callers served with the still-valid token', async (_name, refreshFault) => {
    const s = await setup();
    expect((await s.call()).status).toBe(200);
    const [token] = s.apiTokens();
    s.advance(60_000);
    s.fake.fail('api', unauthorized);
    s.fake.fail('refresh', refreshFault);

    // No renewal could be had: the caller gets Starship's own answer.
    const refused = await s.call('/api/v1/orders');
    expect(refused.status).toBe(401);
    expect(s.fake.stats.refreshFailures).toBe(1);

    const others = await Promise.all(Array.from({ length: 5 }, () => s.call()));
    expect(others.map((r) => r.status)).toEqual(Array(5).fill(200));
    expect(new Set(s.apiTokens())).toEqual(new Set([token]));
    const ready = await s.readyz();
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ok', checks: { redis: 'ok', starshipToken: 'valid' } });
    expect(renewals(s.fake)).toBe(1);
  });

  it('leaves callers that arrive while the failing renewal runs served with the still-valid token too', async () => {
    const s = await setup();
    expect((await s.call()).status).toBe(200);
    s.advance(60_000);
    s.fake.fail('api', unauthorized);
    s.fake.fail('refresh', { kind: 'reply', status: 429, body: {}, headers: { 'retry-after': '60' } });
    // Another replica's lock holds the renewal up for a moment, so that calls can queue behind it.
    await redis.set(`${s.prefix}starship:lock`, 'other-replica', 'PX', 1_000);

    const refused = s.call('/api/v1/orders').then((res) => res.status);
    await until(async () => (await s.readyz()).body.checks.starshipToken === 'rejected', 'the renewal to start');
    const others = await Promise.all(Array.from({ length: 5 }, () => s.call()));
    expect(await refused).toBe(401);
    expect(others.map((r) => r.status)).toEqual(Array(5).fill(200));
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 0, refreshFailures: 1 });
  });

  it('to a token another replica has replaced is replayed with the replacement, however fresh', async () => {
    const s = await setup();
    const other = s.replica();
    expect((await s.call()).status).toBe(200);
    s.advance(10_000);
    // Credential rotation on the other replica: every token of the account revoked, a new login stored.
    const rotated = await request(other.subject.broker.internalApp)
      .post('/v1/admin/starship/session/renew')
      .set('authorization', `Bearer ${serviceKeys.ops}`)
      .send({ revokePrevious: true });
    expect(rotated.status).toBe(200);

    const res = await s.call();
    expect(res.status).toBe(200);
    const [, refused, replay] = s.apiTokens();
    expect(replay).not.toBe(refused);
    expect(s.fake.stats).toMatchObject({ logins: 2, logouts: 1, refreshes: 0 });
  });
});

describe('readiness says what a proxied call gets', () => {
  it('revoked session, login failing: unavailable while the backoff lasts, then in again', async () => {
    const s = await setup();
    expect((await s.call()).status).toBe(200);
    s.advance(60_000);
    s.fake.revokeAll();
    s.fake.fail('login', { kind: 'reply', status: 503, body: {} });

    expect((await s.call()).status).toBe(401); // refresh refused, login failed: nothing to replay with
    const during = await s.readyz();
    expect(during.status).toBe(503);
    expect(during.body).toEqual({ status: 'unavailable', checks: { redis: 'ok', starshipToken: 'rejected' } });
    const refused = await s.call();
    expect(refused.status).toBe(502);
    expect(refused.headers['retry-after']).toBe('1');

    s.advance(1_000); // the backoff (750 ms with this jitter) is over: the next call logs in
    const after = await s.readyz();
    expect(after.status).toBe(200);
    expect(after.body).toEqual({ status: 'degraded', checks: { redis: 'ok', starshipToken: 'rejected' } });
    expect((await s.call()).status).toBe(200);
    expect((await s.readyz()).body).toEqual({ status: 'ok', checks: { redis: 'ok', starshipToken: 'valid' } });
    expect(s.fake.stats).toMatchObject({ logins: 2, loginFailures: 1 });
  });

  it('expired token, refresh failing: unavailable while the backoff lasts', async () => {
    const s = await setup();
    expect((await s.call()).status).toBe(200);
    s.advance(901_000);
    s.fake.fail('refresh', { kind: 'reply', status: 500, body: {} });

    expect((await s.call()).status).toBe(502);
    const during = await s.readyz();
    expect(during.status).toBe(503);
    expect(during.body).toEqual({ status: 'unavailable', checks: { redis: 'ok', starshipToken: 'expired' } });
    const refused = await s.call();
    expect(refused.status).toBe(502);
    expect(refused.headers['retry-after']).toBe('1');

    s.advance(1_000);
    expect((await s.readyz()).body.status).toBe('degraded');
    expect((await s.call()).status).toBe(200);
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 1, refreshFailures: 1 });
  });

  it('login cooldown with a refreshable session: in, since a refresh still serves the call', async () => {
    const s = await setup({ accessTtlS: 300 });
    expect((await s.call()).status).toBe(200);
    // An admin renewal that Starship throttles: a login cooldown, with the session still in hand.
    s.fake.fail('login', { kind: 'reply', status: 429, body: {}, headers: { 'retry-after': '900' } });
    const renew = await request(s.subject.broker.internalApp)
      .post('/v1/admin/starship/session/renew')
      .set('authorization', `Bearer ${serviceKeys.ops}`);
    expect(renew.status).toBe(503);
    expect((await s.readyz()).body).toEqual({ status: 'ok', checks: { redis: 'ok', starshipToken: 'valid' } });

    s.advance(301_000); // the token expires during the cooldown; its refresh token still works
    const ready = await s.readyz();
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'degraded', checks: { redis: 'ok', starshipToken: 'cooldown' } });
    expect((await s.call()).status).toBe(200);
    expect(s.fake.stats).toMatchObject({ logins: 1, refreshes: 1, loginFailures: 1 });
  });
});
