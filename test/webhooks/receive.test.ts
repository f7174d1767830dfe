import { createHash, createHmac } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBroker, serviceKeys, type TestBroker } from '../support/broker.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { secret } from '../support/secrets.js';

/**
 * Receiving webhooks through the public door with a real Redis: signatures checked on the raw bytes
 * against every configured secret, each refusal named, duplicates stored once. Signatures here are
 * made with node:crypto from the providers' documented rules, not with the broker's code.
 */
const salts = [secret('benji-salt-current-0123456789'), secret('benji-salt-previous-0123456789')];
const starshipSecrets = [secret('starship-webhook-secret-0123456789')];
const prefix = uniquePrefix();
const redis = inspectRedis();
let subject: TestBroker;

beforeAll(() => {
  subject = buildBroker({
    REDIS_URL: testRedisUrl,
    REDIS_KEY_PREFIX: prefix,
    BENJI_WEBHOOK_SALT: salts.join(','),
    STARSHIP_WEBHOOK_SECRET: starshipSecrets.join(','),
  });
});
afterAll(async () => {
  await subject.close();
  await deleteKeys(redis, prefix);
  await redis.quit();
});

const hmac = (key: string, text: string, encoding: 'hex' | 'base64') => createHmac('sha256', key).update(text).digest(encoding);

function benji(body: string, { salt = salts[0] as string, at = new Date(), encoding = 'hex' as 'hex' | 'base64' } = {}) {
  const timestamp = at.toUTCString();
  return request(subject.broker.publicApp)
    .post('/v1/webhooks/benji')
    .set('content-type', 'application/json')
    .set('x-benji-timestamp', timestamp)
    .set('x-benji-signature', hmac(salt, timestamp + body, encoding))
    .send(body);
}

function starship(body: string, { key = starshipSecrets[0] as string, at = Math.floor(Date.now() / 1000) } = {}) {
  return request(subject.broker.publicApp)
    .post('/v1/webhooks/starship')
    .set('content-type', 'application/json')
    .set('x-timestamp', String(at))
    .set('x-signature', hmac(key, `${at}.${body}`, 'hex'))
    .send(body);
}

const stream = () => redis.xrange(`${prefix}webhooks`, '-', '+');
const unique = () => `${Date.now()}-${Math.random()}`;

describe('POST /v1/webhooks/benji', () => {
  it.each(['hex', 'base64'] as const)(
    'accepts a %s signature, with either salt during a rotation, and stores the raw body',
    async (encoding) => {
      for (const salt of salts) {
        const body = JSON.stringify({ event: 'user_partner_authentication_created', entity_type: 1, entity_id: unique() });
        const res = await benji(body, { salt, encoding });
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ received: true });
        const entry = (await stream()).find(([, fields]) => fields.includes(body));
        expect(entry, 'stored byte for byte').toBeDefined();
        const fields = entry?.[1] ?? [];
        expect(fields[fields.indexOf('eventId') + 1]).toBe(createHash('sha256').update(body).digest('hex'));
        expect(fields[fields.indexOf('type') + 1]).toBe('user_partner_authentication_created');
      }
    },
  );

  it('accepts an ISO timestamp too', async () => {
    const body = JSON.stringify({ event: 'transaction_created', entity_type: 3, entity_id: unique() });
    const timestamp = new Date().toISOString();
    const res = await request(subject.broker.publicApp)
      .post('/v1/webhooks/benji')
      .set('x-benji-timestamp', timestamp)
      .set('x-benji-signature', hmac(salts[0] as string, timestamp + body, 'hex'))
      .send(body);
    expect(res.status).toBe(200);
  });
});

describe('refusals: none of them is stored', () => {
  const body = JSON.stringify({ event: 'campaign_updated', entity_type: 2, entity_id: 'c-1' });
  const timestamp = new Date().toUTCString();
  const cases: Array<[string, Record<string, string>, string, string]> = [
    ['no signature', { 'x-benji-timestamp': timestamp }, body, 'no signature'],
    ['no timestamp', { 'x-benji-signature': hmac(salts[0] as string, timestamp + body, 'hex') }, body, 'no timestamp'],
    [
      'a wrong signature',
      { 'x-benji-timestamp': timestamp, 'x-benji-signature': hmac('another-salt-0123456789', timestamp + body, 'hex') },
      body,
      'does not match',
    ],
    [
      'a body changed after signing',
      { 'x-benji-timestamp': timestamp, 'x-benji-signature': hmac(salts[0] as string, timestamp + body, 'hex') },
      body.replace('c-1', 'c-2'),
      'does not match',
    ],
    [
      'a stale timestamp',
      {
        'x-benji-timestamp': new Date(Date.now() - 301_000).toUTCString(),
        'x-benji-signature': hmac(salts[0] as string, new Date(Date.now() - 301_000).toUTCString() + body, 'hex'),
      },
      body,
      'outside the accepted window',
    ],
    ['an unreadable timestamp', { 'x-benji-timestamp': '1700000000', 'x-benji-signature': 'x' }, body, 'cannot be read'],
  ];

  it.each(cases)('answers 401 invalid_signature for %s, naming which check failed', async (_what, headers, sent, detail) => {
    const before = (await stream()).length;
    const res = await request(subject.broker.publicApp).post('/v1/webhooks/benji').set(headers).send(sent);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('invalid_signature');
    expect(res.body.detail).toContain(detail);
    expect(JSON.stringify(res.body)).not.toContain(hmac(salts[0] as string, timestamp + sent, 'hex'));
    expect((await stream()).length).toBe(before);
  });

  it('answers 413 for a body over 256 KiB and 400 for one that is not a JSON object', async () => {
    const before = (await stream()).length;
    const huge = JSON.stringify({ event: 'x', padding: 'a'.repeat(256 * 1024) });
    expect((await benji(huge)).status).toBe(413);
    for (const notObject of ['[1,2]', '"text"', 'not json', '']) {
      const res = await benji(notObject);
      expect(res.status, notObject).toBe(400);
    }
    expect((await stream()).length).toBe(before);
  });

  it('refuses Starship deliveries signed with another secret or too old', async () => {
    const sent = JSON.stringify({ id: `evt_${unique()}`, event_type: 'order.created', data: {} });
    expect((await starship(sent, { key: 'not-the-secret-0123456789' })).status).toBe(401);
    const stale = await starship(sent, { at: Math.floor(Date.now() / 1000) - 301 });
    expect(stale.status).toBe(401);
    expect(stale.body.detail).toContain('outside the accepted window');
  });
});

describe('POST /v1/webhooks/starship', () => {
  it('stores an event once under Starship’s id, whatever its retries’ timestamps', async () => {
    const id = `evt_${unique()}`;
    const body = JSON.stringify({ id, event_type: 'order.delivered', data: { order_id: 7 } });
    const first = await starship(body);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ received: true });
    const retry = await starship(body, { at: Math.floor(Date.now() / 1000) + 30 });
    expect(retry.body).toEqual({ received: true, duplicate: true });
    const stored = (await stream()).filter(([, fields]) => fields.includes(id));
    expect(stored).toHaveLength(1);
    expect(await redis.ttl(`${prefix}webhooks:seen:starship:${createHash('sha256').update(id).digest('hex')}`)).toBeGreaterThan(6 * 86_400);
  });

  it('stores one copy of 20 identical deliveries sent at once', async () => {
    const body = JSON.stringify({ id: `evt_${unique()}`, event_type: 'order.cancelled', data: {} });
    const answers = await Promise.all(Array.from({ length: 20 }, () => starship(body)));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(answers.filter((r) => r.body.duplicate !== true)).toHaveLength(1);
    expect((await stream()).filter(([, fields]) => fields.includes(body))).toHaveLength(1);
  });

  it('logs the event id, provider and type, never the body or a secret', async () => {
    const marker = `secret-looking-${unique()}`;
    const body = JSON.stringify({ id: `evt_${unique()}`, event_type: 'order.pending', data: { note: marker } });
    expect((await starship(body)).status).toBe(200);
    const line = subject.logs.entries().find((entry) => entry.msg === 'webhook received' && entry.eventType === 'order.pending');
    expect(line).toMatchObject({ provider: 'starship', eventType: 'order.pending' });
    expect(subject.logs.text()).not.toContain(marker);
  });
});

it('has no webhook route for a provider without a secret (404)', async () => {
  const bare = buildBroker({});
  try {
    const res = await request(bare.broker.publicApp).post('/v1/webhooks/benji').send('{}');
    expect(res.status).toBe(404);
  } finally {
    await bare.close();
  }
});

it('keeps events in memory without REDIS_URL, once each, and warns at start', async () => {
  const memory = buildBroker({ STARSHIP_WEBHOOK_SECRET: starshipSecrets[0] });
  try {
    expect(memory.logs.text()).toContain('received webhooks are kept in process memory and lost on restart');
    const body = JSON.stringify({ id: 'evt_memory', event_type: 'order.created', data: {} });
    const at = Math.floor(Date.now() / 1000);
    const post = () =>
      request(memory.broker.publicApp)
        .post('/v1/webhooks/starship')
        .set('x-timestamp', String(at))
        .set('x-signature', hmac(starshipSecrets[0] as string, `${at}.${body}`, 'hex'))
        .send(body);
    expect((await post()).body).toEqual({ received: true });
    expect((await post()).body).toEqual({ received: true, duplicate: true });
    const stats = await request(memory.broker.internalApp).get('/v1/admin/webhooks').set('authorization', `Bearer ${serviceKeys.ops}`);
    expect(stats.body).toMatchObject({ stored: 1, pending: 1, dead: 0 });
  } finally {
    await memory.close();
  }
});
