import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeliveryTimings } from '../../src/webhooks/delivery-worker.js';
import { baseEnv, buildBroker, serviceKeys, type TestBroker } from '../support/broker.js';
import { startBrokerProcess } from '../support/process.js';
import { startPrivateRedis } from '../support/private-redis.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { secret } from '../support/secrets.js';
import { until } from '../support/until.js';

/**
 * Delivering stored webhooks to an internal endpoint, through HTTP on both sides, with a real
 * Redis: Standard Webhooks signatures, retries while the endpoint is down (in order), dead letters
 * and their retry, a replica that dies with entries in hand, Redis going away under a delivery.
 */
const starshipSecret = secret('starship-webhook-secret-0123456789');
const forwardKey = randomBytes(32);
const forwardSecret = secret(`whsec_${forwardKey.toString('base64')}`);
const fast: Partial<DeliveryTimings> = { blockMs: 100, baseBackoffMs: 50, maxBackoffMs: 200, keepAliveMs: 200, claimIdleMs: 1_000 };
const redis = inspectRedis();
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  verified: boolean;
  status: number;
}

/** The internal service: records what arrives, checks its signature, answers `status()`. */
async function startTarget() {
  const deliveries: Delivery[] = [];
  let status: (body: string) => number | Promise<number> = () => 200;
  let hanging = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const code = await status(body);
      if (code === 0) {
        hanging++;
        return; // hang: never answer
      }
      deliveries.push({ headers: req.headers, body, verified: verifies(req.headers, body), status: code });
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const delivered = () =>
    deliveries.filter((d) => d.verified).map((d) => JSON.parse(d.body) as { provider: string; event: { id: string } });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks?from=broker`,
    deliveries,
    delivered,
    /** Requests received and left unanswered. */
    hanging: () => hanging,
    answer(next: () => number | Promise<number>) {
      status = next;
    },
    answerFor(next: (body: string) => number) {
      status = next;
    },
  };
}

/** Standard Webhooks, checked by hand: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. */
function verifies(headers: IncomingHttpHeaders, body: string): boolean {
  const id = String(headers['webhook-id']);
  const timestamp = String(headers['webhook-timestamp']);
  const expected = createHmac('sha256', forwardKey).update(`${id}.${timestamp}.${body}`).digest();
  return String(headers['webhook-signature'])
    .split(' ')
    .some((signature) => {
      const given = Buffer.from(signature.replace(/^v1,/, ''), 'base64');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

async function broker(target: string, { env = {} as Record<string, string>, redisUrl = testRedisUrl, prefix = uniquePrefix() } = {}) {
  const subject = buildBroker(
    {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      STARSHIP_WEBHOOK_SECRET: starshipSecret,
      WEBHOOK_FORWARD_URL: target,
      WEBHOOK_FORWARD_SECRET: forwardSecret,
      ...env,
    },
    { deliveryTimings: fast },
  );
  cleanups.push(async () => {
    subject.broker.beginShutdown();
    await subject.close();
    if (redisUrl === testRedisUrl) await deleteKeys(redis, prefix);
  });
  await subject.broker.warmUp();
  return { subject, prefix };
}

function send(subject: TestBroker, id: string, type = 'order.created') {
  const body = JSON.stringify({ id, event_type: type, data: { id } });
  const at = Math.floor(Date.now() / 1000);
  return request(subject.broker.publicApp)
    .post('/v1/webhooks/starship')
    .set('x-timestamp', String(at))
    .set('x-signature', createHmac('sha256', starshipSecret).update(`${at}.${body}`).digest('hex'))
    .send(body);
}

const admin = (subject: TestBroker, method: 'get' | 'post', path: string) =>
  request(subject.broker.internalApp)[method](path).set('authorization', `Bearer ${serviceKeys.ops}`);

describe('delivery', () => {
  it('forwards each event once, with Standard Webhooks headers that verify, and acknowledges it', async () => {
    const target = await startTarget();
    const { subject } = await broker(target.url);
    expect((await send(subject, 'evt_1')).status).toBe(200);
    await until(() => target.delivered().length === 1, 'the delivery');

    const [delivery] = target.deliveries;
    expect(delivery?.headers['webhook-id']).toBe('evt_1');
    // A consumer with a Standard Webhooks library, not our code, accepts it.
    expect(() => new Webhook(forwardSecret).verify(delivery?.body ?? '', delivery?.headers as Record<string, string>)).not.toThrow();
    expect(Number(delivery?.headers['webhook-timestamp'])).toBeCloseTo(Date.now() / 1000, -1);
    const payload = JSON.parse(delivery?.body ?? '{}') as Record<string, unknown>;
    expect(payload).toEqual({
      provider: 'starship',
      receivedAt: expect.stringMatching(/^\d{4}-/),
      event: { id: 'evt_1', event_type: 'order.created', data: { id: 'evt_1' } },
    });
    await until(async () => (await admin(subject, 'get', '/v1/admin/webhooks')).body.pending === 0, 'acknowledged');
    expect((await admin(subject, 'get', '/v1/admin/webhooks')).body).toEqual({ stored: 1, pending: 0, dead: 0, oldestPendingAgeS: null });
  });

  it('goes on delivering when Redis loses the stream and its group (a restart without persistence)', async () => {
    const target = await startTarget();
    const { subject, prefix } = await broker(target.url);
    expect((await send(subject, 'evt_before')).status).toBe(200);
    await until(() => target.delivered().length === 1, 'the first delivery');
    await redis.del(`${prefix}webhooks`);
    expect((await send(subject, 'evt_after')).status).toBe(200);
    await until(() => target.delivered().some((event) => event.event.id === 'evt_after'), 'delivered from the new stream', 10_000);
  });

  it('takes a 4xx as the target being up: one refused event does not hold back the others', async () => {
    const target = await startTarget();
    target.answer(() => 503);
    const { subject } = await broker(target.url);
    for (const id of ['evt_poison', 'evt_fine_1', 'evt_fine_2']) expect((await send(subject, id)).status).toBe(200);
    await until(() => target.deliveries.length >= 2, 'the outage seen');
    // Back up, but refusing the oldest event for good.
    const refuse = new Set(['evt_poison']);
    target.answerFor((body) => (refuse.has((JSON.parse(body) as { event: { id: string } }).event.id) ? 422 : 200));
    await until(
      () => ['evt_fine_1', 'evt_fine_2'].every((id) => target.deliveries.some((d) => d.body.includes(id) && d.status === 200)),
      'the others delivered',
      10_000,
    );
  });

  it('forwards one of 20 identical deliveries sent at once', async () => {
    const target = await startTarget();
    const { subject } = await broker(target.url);
    const answers = await Promise.all(Array.from({ length: 20 }, () => send(subject, 'evt_same')));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    await until(() => target.delivered().length === 1, 'the delivery');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(target.delivered()).toHaveLength(1);
  });

  it('retries while the endpoint is down and delivers everything, in order, once it is back', async () => {
    const target = await startTarget();
    target.answer(() => 503);
    const { subject } = await broker(target.url);
    const ids = Array.from({ length: 8 }, (_, i) => `evt_order_${i}`);
    for (const id of ids) expect((await send(subject, id)).status).toBe(200);
    await until(() => target.deliveries.length >= 4, 'a few failed attempts');
    const stats = (await admin(subject, 'get', '/v1/admin/webhooks')).body;
    expect(stats.pending).toBe(8);
    expect(stats.oldestPendingAgeS).toBeGreaterThanOrEqual(0);

    target.answer(() => 200);
    await until(() => new Set(target.deliveries.filter((d) => d.verified).map((d) => d.body)).size === 8, 'all delivered', 10_000);
    const order = target
      .delivered()
      .map((event) => event.event.id)
      .filter((id, index, all) => all.lastIndexOf(id) === index);
    expect(order).toEqual(ids);
  });

  it('dead-letters an event after WEBHOOK_MAX_ATTEMPTS, and an admin can put it back', async () => {
    const target = await startTarget();
    target.answer(() => 500);
    const { subject, prefix } = await broker(target.url, { env: { WEBHOOK_MAX_ATTEMPTS: '3' } });
    expect((await send(subject, 'evt_doomed')).status).toBe(200);
    await until(async () => (await admin(subject, 'get', '/v1/admin/webhooks')).body.dead === 1, 'dead-lettered', 10_000);
    expect(target.deliveries).toHaveLength(3);
    const [letter] = await redis.xrange(`${prefix}webhooks:dead`, '-', '+');
    const fields = letter?.[1] ?? [];
    expect(fields[fields.indexOf('error') + 1]).toBe('status 500');
    expect(fields[fields.indexOf('attempts') + 1]).toBe('3');
    expect(subject.logs.entries().some((line) => line.level === 'error' && line.eventId === 'evt_doomed')).toBe(true);

    target.answer(() => 200);
    const retried = await admin(subject, 'post', `/v1/admin/webhooks/dead/${letter?.[0]}/retry`);
    expect(retried.status).toBe(200);
    await until(() => target.delivered().length === 4 && target.deliveries.at(-1)?.verified === true, 'delivered after the retry');
    expect((await admin(subject, 'post', `/v1/admin/webhooks/dead/${letter?.[0]}/retry`)).status).toBe(404);
    expect((await admin(subject, 'post', '/v1/admin/webhooks/dead/not-an-id/retry')).status).toBe(400);
    const metrics = await request(subject.broker.internalApp).get('/metrics');
    expect(metrics.text).toMatch(/broker_webhook_deliveries_total\{outcome="dead"\} 1/);
  });

  it('lets another replica deliver what a killed one had in hand', async () => {
    const target = await startTarget();
    target.answer(() => 0); // the first replica's delivery hangs
    const prefix = uniquePrefix();
    const dying = await startBrokerProcess({
      ...baseEnv,
      REDIS_URL: testRedisUrl,
      REDIS_KEY_PREFIX: prefix,
      STARSHIP_WEBHOOK_SECRET: starshipSecret,
      WEBHOOK_FORWARD_URL: target.url,
      WEBHOOK_FORWARD_SECRET: forwardSecret,
    });
    cleanups.push(async () => {
      if (dying.child.exitCode === null && dying.child.signalCode === null) dying.child.kill('SIGKILL');
      await dying.exited;
      await deleteKeys(redis, prefix);
    });
    const body = JSON.stringify({ id: 'evt_orphan', event_type: 'order.created', data: {} });
    const at = Math.floor(Date.now() / 1000);
    const sent = await fetch(`http://127.0.0.1:${dying.publicPort}/v1/webhooks/starship`, {
      method: 'POST',
      headers: { 'x-timestamp': String(at), 'x-signature': createHmac('sha256', starshipSecret).update(`${at}.${body}`).digest('hex') },
      body,
    });
    expect(sent.status).toBe(200);
    // Handed to the first replica (pending under its name), which is then killed mid-delivery.
    const pendingCount = () =>
      redis.xpending(`${prefix}webhooks`, 'forward').then(
        (summary) => (summary as [number])[0],
        () => 0,
      );
    await until(async () => (await pendingCount()) === 1, 'taken by the first replica');
    // Killed only once its request is in hand and hanging: killed sooner, a request still in flight
    // could reach the target after it answers 200 again, and count as delivered by the first replica.
    await until(() => target.hanging() === 1, "the first replica's delivery hanging");
    dying.child.kill('SIGKILL');

    target.answer(() => 200);
    const { subject } = await broker(target.url, { prefix });
    await until(() => target.delivered().some((event) => event.event.id === 'evt_orphan'), 'delivered by the second replica', 10_000);
    // The line is written before the delivery, but reaches this process through the child's stdout
    // pipe, which may still hold it when the delivery has already arrived.
    await until(() => subject.logs.text().includes('taken over from a replica'), 'the takeover logged');
  });

  it('on shutdown finishes the delivery in flight, takes nothing new, and leaves the rest to another replica', async () => {
    const target = await startTarget();
    let release: () => void = () => undefined;
    const gate = new Promise<number>((resolve) => (release = () => resolve(200)));
    let arrived = 0;
    target.answer(() => (++arrived === 1 ? gate : 200));
    const prefix = uniquePrefix();
    const subject = buildBroker(
      {
        REDIS_URL: testRedisUrl,
        REDIS_KEY_PREFIX: prefix,
        STARSHIP_WEBHOOK_SECRET: starshipSecret,
        WEBHOOK_FORWARD_URL: target.url,
        WEBHOOK_FORWARD_SECRET: forwardSecret,
      },
      { deliveryTimings: fast },
    );
    cleanups.push(() => deleteKeys(redis, prefix));
    for (const id of ['evt_s1', 'evt_s2', 'evt_s3']) expect((await send(subject, id)).status).toBe(200);
    await subject.broker.warmUp();
    await until(() => arrived === 1, 'the first delivery in flight');

    subject.broker.beginShutdown();
    const closed = subject.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(arrived, 'nothing new taken while stopping').toBe(1);
    release();
    await closed;
    expect(target.delivered().map((event) => event.event.id)).toEqual(['evt_s1']);

    const { subject: next } = await broker(target.url, { prefix });
    await until(() => new Set(target.delivered().map((event) => event.event.id)).size === 3, 'the other two delivered', 10_000);
    void next;
  });

  it('answers 503 while Redis is down, so the provider retries, and loses nothing', async () => {
    const target = await startTarget();
    const redisServer = await startPrivateRedis();
    cleanups.push(() => redisServer.stop());
    const { subject } = await broker(target.url, {
      redisUrl: redisServer.url,
      env: { TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') },
    });
    await until(() => subject.broker.redis?.status === 'ready', 'redis ready');
    await redisServer.stop();
    await until(() => subject.broker.redis?.status !== 'ready', 'redis down');

    const refused = await send(subject, 'evt_during_outage');
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('store_unavailable');
    expect(refused.headers['retry-after']).toBe('10');

    await redisServer.start();
    await until(() => subject.broker.redis?.status === 'ready', 'redis back', 10_000);
    // The provider's retry of the same delivery.
    expect((await send(subject, 'evt_during_outage')).body).toEqual({ received: true });
    await until(() => target.delivered().some((event) => event.event.id === 'evt_during_outage'), 'delivered', 10_000);
  });
});
