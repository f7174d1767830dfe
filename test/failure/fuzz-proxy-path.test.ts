import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';

/**
 * Property: whatever path a service asks for — encodings, dot segments, backslashes, doubled
 * slashes, foreign origins — nothing outside STARSHIP_PROXY_ALLOW ever reaches Starship. The oracle
 * is how Starship would read each path it received: WHATWG URL normalisation of the raw path.
 */
let starship: FakeStarship;
let subject: TestBroker;
let server: Server;
let port: number;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });

beforeAll(async () => {
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
  subject = buildBroker({ STARSHIP_BASE_URL: starship.url, STARSHIP_PROXY_ALLOW: '/api/v1/,/status', LOG_LEVEL: 'warn' });
  server = createServer(subject.broker.internalApp);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  agent.destroy();
  await new Promise((resolve) => server.close(resolve));
  await subject.close();
  await starship.close();
});

const segment = fc.oneof(
  fc.constantFrom('api', 'v1', 'v2', 'products', 'echo', 'status', 'auth', 'login', 'refresh', 'logout', 'orders'),
  fc.constantFrom('..', '.', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '%2e', '...', '%252e%252e', '%c0%ae%c0%ae', '%EF%BC%8E%EF%BC%8E'),
  fc.constantFrom('%2f', '%2F', '%5c', '%5C', '\\', '\\..', '%00', '%0a', '%zz', '%', '%25', '%252f'),
  fc.constantFrom('', 'http:', 'https:', 'evil.example.com', '@evil.example.com', 'user:pass@evil', '127.0.0.1:6379', ';x=1', '~', 'a+b'),
  fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{1,12}$/),
);
const path = fc
  .tuple(
    fc.constantFrom('/v1/starship', '/v1/starship/', '/v1/starship//', '/v1/starship/./', '/v1/STARSHIP'),
    // Half the paths start inside an allowed prefix, so the attacks are tried from where they matter.
    fc.constantFrom('', '', 'api/v1/', 'api/v1/echo/', 'status/', 'status'),
    fc.array(segment, { maxLength: 6 }),
    fc.option(fc.constantFrom('?a=1', '?x=/../auth', '#frag', '?')),
  )
  .map(([mount, start, parts, tail]) => `${mount}${mount.endsWith('/') ? '' : '/'}${start}${parts.join('/')}${tail ?? ''}`);

function rawGet(target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: target, agent, headers: { authorization: `Bearer ${serviceKeys.orders}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Where Starship would route a raw path it received. */
function asStarshipReadsIt(raw: string): string {
  return new URL(raw, 'http://starship.invalid').pathname;
}

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
    const seen = asStarshipReadsIt(raw);
    expect(seen.startsWith('/api/v1/') || seen === '/status' || seen.startsWith('/status/'), raw).toBe(true);
    expect(seen, raw).toBe(raw.split('?')[0]); // no dot segment or backslash left for Starship to resolve
    expect(() => decodeURIComponent(raw), raw).not.toThrow();
    expect(decodeURIComponent(raw), raw).not.toMatch(/\.\.|\\|\/\/|%|[^\x20-\x7e]/);
  }
  expect(statuses.get(403)).toBeGreaterThan(100);
});
