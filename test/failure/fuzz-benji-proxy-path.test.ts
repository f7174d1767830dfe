import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { benjiApiKey, buildBroker, serviceKeys, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { asUpstreamReadsIt, hostilePaths, rawGetter } from '../support/fuzz-paths.js';
import { signUserToken } from '../support/jwt.js';

/**
 * Property: whatever path a service asks for, through the partner proxy or as a linked user,
 * nothing outside BENJI_PROXY_ALLOW reaches Benji — never its /auth or the auth service's /access.
 * The oracle is how Benji would read each path it received.
 */
let benji: FakeBenji;
let subject: TestBroker;
let server: Server;
let port: number;
const client = rawGetter(() => port, `Bearer ${serviceKeys.orders}`);

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  subject = buildBroker({ BENJI_BASE_URL: benji.url, BENJI_AUTH_BASE_URL: benji.url, LOG_LEVEL: 'warn' });
  const linked = await request(subject.broker.publicApp)
    .post('/v1/benji/exchange')
    .set('authorization', `Bearer ${await signUserToken({ sub: 'fuzz-user' })}`)
    .send({ exchangeToken: benji.issueExchangeToken('ext-fuzz') });
  expect(linked.status).toBe(200);
  server = createServer(subject.broker.internalApp);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  benji.requests.length = 0;
});
afterAll(async () => {
  client.close();
  await new Promise((resolve) => server.close(resolve));
  await subject.close();
  await benji.close();
});

const path = hostilePaths(
  ['/v1/benji', '/v1/benji/', '/v1/benji//', '/v1/benji-users/fuzz-user', '/v1/benji-users/fuzz-user/', '/v1/benji-users/fuzz-user/./'],
  ['users/', 'users/1', 'transactions/', 'partnerships/49/'],
  ['users', 'transactions', 'partnerships', 'triggers', 'echo', '49', 'me'],
);

it('never lets a generated path reach Benji outside the allowed prefixes, on either proxy route', async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(path, async (target) => {
      const status = await client.get(target);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      expect(status).not.toBe(500);
    }),
    { numRuns: 2_000, seed: Number(process.env.FUZZ_SEED ?? 20261202) },
  );

  const proxied = benji.requests.filter((r) => r.path !== '/access/token/refresh');
  expect(proxied.length).toBeGreaterThan(50);
  for (const { path: raw } of proxied) {
    const seen = asUpstreamReadsIt(raw);
    expect(
      ['/users/', '/transactions/', '/partnerships/'].some((prefix) => seen.startsWith(prefix)),
      raw,
    ).toBe(true);
    expect(seen, raw).toBe(raw.split('?')[0]);
    expect(decodeURIComponent(raw), raw).not.toMatch(/\.\.|\\|\/\/|%|[^\x20-\x7e]/);
  }
  expect(statuses.get(403)).toBeGreaterThan(100);
});
