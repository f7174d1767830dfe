import { createHmac, randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { startForwardTarget } from '../../sandbox/forward-target.js';
import { startFakeStarship } from '../../sandbox/fake-starship.js';
import { benjiApiKey, buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { startClockedStarship, type ClockedStarship } from '../support/clocked-starship.js';
import { signUserToken } from '../support/jwt.js';
import { startClusterTopology, startSentinelTopology, stopTopologies } from '../support/redis-topologies.js';
import { secret } from '../support/secrets.js';
import { until } from '../support/until.js';

/*
 * Redis Sentinel and Cluster, with real redis-server and redis-sentinel processes on loopback: what
 * holds with one Redis holds with each. The broker's keys share one hash tag, so its scripts and
 * multi-key steps run in one cluster slot.
 */
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await stopTopologies();
});

const starshipSecret = secret('starship-webhook-secret-0123456789');
const proxied = (broker: TestBroker) =>
  request(broker.broker.internalApp).get('/v1/starship/api/v1/products').set('authorization', `Bearer ${serviceKeys.orders}`);

describe('Sentinel', () => {
  it('keeps serving through a failover: no proxied call fails, session and rate-limit counts survive, the broker reconnects', async () => {
    const topology = await startSentinelTopology();
    const starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword, accessTtlS: 600 });
    cleanups.push(() => starship.close());
    const prefix = '{sentinel-test}:';
    const subject = buildBroker({
      STARSHIP_BASE_URL: starship.url,
      REDIS_SENTINELS: topology.sentinels.map(({ host, port }) => `${host}:${port}`).join(','),
      REDIS_SENTINEL_NAME: topology.name,
      REDIS_KEY_PREFIX: prefix,
      CONNECT_TOKEN_RATE_LIMIT: '1000',
    });
    cleanups.push(() => subject.close());
    await until(() => subject.broker.redis?.status === 'ready', 'connected through the sentinels', 10_000);

    expect((await proxied(subject)).status).toBe(200);
    const user = `Bearer ${await signUserToken({ sub: 'sentinel-user' })}`;
    // Five connect tokens counted; Benji is unreachable (502), but the count is what matters here.
    for (let i = 0; i < 5; i++)
      await request(subject.broker.publicApp).post('/v1/benji/connect-token').set('authorization', user).send({ mode: 'connect' });
    const primaryBefore = await topology.primary();
    const before = new Redis({ port: primaryBefore, host: '127.0.0.1' });
    await until(async () => (await before.exists(`${prefix}starship:session`)) === 1, 'the session stored');
    const counterKey = (await before.keys(`${prefix}ratelimit*`))[0] ?? '';
    expect(await before.get(counterKey)).toBe('5');
    // Replicated before the primary dies (replication is asynchronous: WAIT makes sure).
    expect(await before.wait(1, 2_000)).toBe(1);
    before.disconnect();

    // Proxied traffic all through the failover.
    let stop = false;
    const statuses: number[] = [];
    const traffic = (async () => {
      while (!stop) statuses.push(...(await Promise.all(Array.from({ length: 10 }, async () => (await proxied(subject)).status))));
    })();
    await topology.failOver();
    await until(() => subject.broker.redis?.status === 'ready', 'reconnected to the new primary', 15_000);
    stop = true;
    await traffic;
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);

    const after = new Redis({ port: await topology.primary(), host: '127.0.0.1' });
    cleanups.push(async () => after.disconnect());
    expect(await after.exists(`${prefix}starship:session`)).toBe(1);
    expect(await after.get(counterKey)).toBe('5');
    // And the broker counts on the new primary.
    await request(subject.broker.publicApp).post('/v1/benji/connect-token').set('authorization', user).send({ mode: 'connect' });
    expect(await after.get(counterKey)).toBe('6');
    expect(starship.stats.logins).toBe(1);
  });
});

describe('Cluster', () => {
  it('gives one login and one refresh per token lifetime across 4 brokers, and stores webhooks in one slot', async () => {
    const cluster = await startClusterTopology();
    const nodes = cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',');
    const world: ClockedStarship = await startClockedStarship({ accessTtlS: 600 });
    cleanups.push(() => world.close());
    const replicas = Array.from({ length: 4 }, () =>
      world.replica({ REDIS_URL: undefined, REDIS_CLUSTER_NODES: nodes, STARSHIP_WEBHOOK_SECRET: starshipSecret }),
    );
    await until(() => replicas.every((replica) => replica.subject.broker.redis?.status === 'ready'), 'every broker on the cluster', 15_000);

    // Three token lifetimes: each time into the refresh window (STARSHIP_REFRESH_BEFORE_S 300 of
    // 600 s), 40 calls across the 4 brokers start the renewal, which runs behind the calls.
    for (let lifetime = 0; lifetime <= 3; lifetime++) {
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => replicas[i % 4]?.call()));
      expect(answers.map((res) => res?.status)).toEqual(Array(40).fill(200));
      await until(() => world.fake.stats.refreshes === lifetime, `refresh ${lifetime}`);
      world.advance(320_000);
    }
    expect(world.fake.stats).toMatchObject({ logins: 1, refreshes: 3, refreshReuses: 0, loginFailures: 0, refreshFailures: 0 });

    // A webhook: seen-mark and stream entry in one script, so in one slot.
    const body = JSON.stringify({ id: 'evt_cluster', event_type: 'order.created', data: {} });
    const at = Math.floor(world.now() / 1000);
    const publicApp = replicas[0]?.subject.broker.publicApp;
    if (publicApp === undefined) throw new Error('no broker');
    const send = () =>
      request(publicApp)
        .post('/v1/webhooks/starship')
        .set('x-timestamp', String(at))
        .set('x-signature', createHmac('sha256', starshipSecret).update(`${at}.${body}`).digest('hex'))
        .send(body);
    expect((await send()).body).toEqual({ received: true });
    expect((await send()).body).toEqual({ received: true, duplicate: true });
    const inspect = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })));
    cleanups.push(async () => inspect.disconnect());
    expect(await inspect.xlen(`${world.prefix}webhooks`)).toBe(1);
  });

  it('keeps links and delivers webhooks through the consumer group on a cluster', async () => {
    const cluster = await startClusterTopology();
    const nodes = cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',');
    const benji = await startFakeBenji({ apiKey: benjiApiKey });
    const forwardSecret = secret(`whsec_${randomBytes(32).toString('base64')}`);
    const target = await startForwardTarget({ secret: forwardSecret });
    cleanups.push(
      () => benji.close(),
      () => target.close(),
    );
    const subject = buildBroker({
      BENJI_BASE_URL: benji.url,
      BENJI_AUTH_BASE_URL: benji.url,
      REDIS_CLUSTER_NODES: nodes,
      REDIS_KEY_PREFIX: 'cluster-links:',
      STARSHIP_WEBHOOK_SECRET: starshipSecret,
      WEBHOOK_FORWARD_URL: target.url,
      WEBHOOK_FORWARD_SECRET: forwardSecret,
    });
    cleanups.push(async () => {
      subject.broker.beginShutdown();
      await subject.close();
    });
    await subject.broker.warmUp();
    await until(() => subject.broker.redis?.status === 'ready', 'on the cluster', 15_000);

    const user = `Bearer ${await signUserToken({ sub: 'cluster-user' })}`;
    const linked = await request(subject.broker.publicApp)
      .post('/v1/benji/exchange')
      .set('authorization', user)
      .send({ exchangeToken: benji.issueExchangeToken('ext-cluster') });
    expect(linked.status).toBe(200);
    const asUser = await request(subject.broker.internalApp)
      .get('/v1/benji-users/cluster-user/users/me')
      .set('authorization', `Bearer ${serviceKeys.orders}`);
    expect(asUser.body.data.authenticatedAs).toBe('user');
    expect((await request(subject.broker.publicApp).delete('/v1/benji/link').set('authorization', user)).status).toBe(204);

    const body = JSON.stringify({ id: 'evt_cluster_forward', event_type: 'order.delivered', data: {} });
    const at = Math.floor(Date.now() / 1000);
    const stored = await request(subject.broker.publicApp)
      .post('/v1/webhooks/starship')
      .set('x-timestamp', String(at))
      .set('x-signature', createHmac('sha256', starshipSecret).update(`${at}.${body}`).digest('hex'))
      .send(body);
    expect(stored.body).toEqual({ received: true });
    await until(
      () => target.deliveries.some((delivery) => delivery.verified && delivery.id === 'evt_cluster_forward'),
      'forwarded',
      10_000,
    );
  });
});
