import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { asUpstreamReadsIt, hostilePaths, rawGetter } from '../support/fuzz-paths.js';

/**
 * Property: whatever path a service asks for — encodings, dot segments, backslashes, doubled
 * slashes, foreign origins — nothing outside STARSHIP_PROXY_ALLOW ever reaches Starship. The oracle
 * is how Starship would read each path it received: WHATWG URL normalisation of the raw path.
 */
let starship: FakeStarship;
let subject: TestBroker;
let server: Server;
let port: number;
const client = rawGetter(() => port, `Bearer ${serviceKeys.orders}`);

beforeAll(async () => {
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
  subject = buildBroker({ STARSHIP_BASE_URL: starship.url, STARSHIP_PROXY_ALLOW: '/api/v1/,/status', LOG_LEVEL: 'warn' });
  server = createServer(subject.broker.internalApp);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  client.close();
  await new Promise((resolve) => server.close(resolve));
  await subject.close();
  await starship.close();
});

const path = hostilePaths(
  ['/v1/starship', '/v1/starship/', '/v1/starship//', '/v1/starship/./', '/v1/STARSHIP'],
  ['api/v1/', 'api/v1/echo/', 'status/', 'status'],
  ['api', 'v1', 'v2', 'products', 'echo', 'status', 'logout', 'orders'],
);
const rawGet = (target: string) => client.get(target);

it('never lets a generated path reach Starship outside the allowed prefixes', async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(path, async (target) => {
      const status = await rawGet(target);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      // Refused (403), Starship's own answer, or a broker problem — never a crash.
      expect(status).not.toBe(500);
    }),
    // A fixed seed keeps CI deterministic; FUZZ_SEED explores further (a failure prints its seed).
    { numRuns: 3_000, seed: Number(process.env.FUZZ_SEED ?? 20261122) },
  );

  const reached = starship.requests.filter((r) => !r.path.startsWith('/auth/'));
  // The generator does produce allowed paths: some calls must have gone through.
  expect(reached.length).toBeGreaterThan(50);
  for (const { path: raw } of starship.requests) {
    if (raw === '/auth/login') continue; // the broker's own session login, not a proxied call
    const seen = asUpstreamReadsIt(raw);
    expect(seen.startsWith('/api/v1/') || seen === '/status' || seen.startsWith('/status/'), raw).toBe(true);
    expect(seen, raw).toBe(raw.split('?')[0]); // no dot segment or backslash left for Starship to resolve
    expect(() => decodeURIComponent(raw), raw).not.toThrow();
    expect(decodeURIComponent(raw), raw).not.toMatch(/\.\.|\\|\/\/|%|[^\x20-\x7e]/);
  }
  expect(statuses.get(403)).toBeGreaterThan(100);
});
