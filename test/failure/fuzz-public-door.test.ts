import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { SignJWT, UnsecuredJWT } from 'jose';
import { Pool } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { benjiApiKey, buildBroker, partnershipId, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { jwtSecret } from '../support/jwt.js';
import { secret } from '../support/secrets.js';

/**
 * Property: whatever a browser sends — any body, content type, headers or token — the public door
 * answers 2xx or a 4xx problem, never a 5xx, and Benji is called only with a valid body for a
 * verified user. Thousands of generated requests over real HTTP against the fake Benji.
 */
let benji: FakeBenji;
let subject: TestBroker;
let server: Server;
let client: Pool;
const maxAmount = 5000;

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  subject = buildBroker({
    BENJI_BASE_URL: benji.url,
    BENJI_ALLOWED_MODES: 'connect,transfer',
    BENJI_MAX_TRANSFER_AMOUNT: String(maxAmount),
    CONNECT_TOKEN_RATE_LIMIT: '1000000',
    LOG_LEVEL: 'warn',
  });
  server = createServer(subject.broker.publicApp);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 8 });
});
afterAll(async () => {
  await client.close();
  await new Promise((resolve) => server.close(resolve));
  await subject.close();
  await benji.close();
});

const key = new TextEncoder().encode(jwtSecret);
const now = () => Math.floor(Date.now() / 1000);

/** A token and who it proves (undefined: it proves nobody). */
type Credential = { header: string | undefined; userId: string | undefined };

const credential: fc.Arbitrary<() => Promise<Credential>> = fc.oneof(
  // Valid: the only kind that may reach Benji, with exactly this user id (weighted: most requests).
  {
    weight: 4,
    arbitrary: fc.string({ minLength: 1, maxLength: 40 }).map((sub) => async () => {
      const jwt = secret(
        await new SignJWT({ sub })
          .setProtectedHeader({ alg: 'HS256' })
          .setExpirationTime(now() + 300)
          .sign(key),
      );
      return { header: `Bearer ${jwt}`, userId: sub } as Credential;
    }),
  },
  fc.string({ minLength: 1, maxLength: 40 }).map((sub) => async () => {
    const jwt = secret(
      await new SignJWT({ sub })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(now() + 300)
        .sign(key),
    );
    return { header: `Bearer ${jwt}`, userId: sub };
  }),
  fc.string({ minLength: 1, maxLength: 40 }).map((sub) => async () => {
    const expired = await new SignJWT({ sub })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(now() - 120)
      .sign(key);
    return { header: `Bearer ${secret(expired)}`, userId: undefined };
  }),
  fc.string({ minLength: 1, maxLength: 40 }).map((sub) => async () => {
    const forged = await new SignJWT({ sub })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(now() + 300)
      .sign(new TextEncoder().encode('x'.repeat(40)));
    return { header: `Bearer ${forged}`, userId: undefined };
  }),
  fc.string({ minLength: 1, maxLength: 40 }).map((sub) => async () => ({
    header: `Bearer ${new UnsecuredJWT({ sub }).setExpirationTime(now() + 300).encode()}`,
    userId: undefined,
  })),
  fc.anything().map((claims) => async () => {
    // Valid signature, arbitrary claims: a user only if `sub` is a usable id.
    const payload =
      typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? (claims as Record<string, unknown>) : { value: claims };
    try {
      const jwt = await new SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(now() + 300)
        .sign(key);
      return { header: `Bearer ${secret(jwt)}`, userId: 'unknown' };
    } catch {
      return { header: 'Bearer not.a.jwt', userId: undefined };
    }
  }),
  fc
    .oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 60 }),
      fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`),
    )
    .map((header) => async () => ({
      header: header === undefined || /^[\t\x20-\x7e]*$/.test(header) ? header : undefined,
      userId: undefined,
    })),
);

const fieldValue = fc.oneof(fc.anything(), fc.integer({ min: -10, max: 10_000 }), fc.double(), fc.boolean(), fc.string({ maxLength: 120 }));
const body: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .constantFrom({ mode: 'redeem' }, { mode: 4 }, { mode: 'connect' }, { mode: 3, amount: 10 })
      .map((value) => JSON.stringify(value)),
  },
  // Mostly-valid bodies, so that plenty of requests get through to Benji.
  {
    weight: 3,
    arbitrary: fc
      .record(
        {
          mode: fc.constantFrom('connect', 'transfer', 'redeem', 1, 3, 4),
          displayName: fc.string({ minLength: 1, maxLength: 100 }),
          amount: fc.integer({ min: 1, max: maxAmount + 10 }),
          allowsEditing: fc.boolean(),
        },
        { requiredKeys: ['mode'] },
      )
      .map((value) => JSON.stringify(value)),
  },
  fc
    .record(
      {
        mode: fc.oneof(fc.constantFrom('connect', 'transfer', 'redeem', 1, 3, 4, 2, 0, 'CONNECT', null), fieldValue),
        displayName: fc.oneof(fc.string({ maxLength: 120 }), fieldValue),
        amount: fc.oneof(fc.integer({ min: -5, max: 2 * maxAmount }), fieldValue),
        allowsEditing: fc.oneof(fc.boolean(), fieldValue),
        user_external_id: fc.string(),
        partnership_id: fc.oneof(fc.string(), fc.integer()),
        extra: fieldValue,
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 200 }),
  fc.constant('{"mode":"connect"'),
  fc.constant(JSON.stringify({ mode: 'transfer', displayName: 'x'.repeat(20_000) })),
);

const contentType = fc.constantFrom(
  'application/json',
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/merge-patch+json',
  undefined,
);

it('answers every generated request with 2xx or a 4xx problem, and calls Benji only for verified users with valid bodies', async () => {
  let requestNumber = 0;
  const sentBy = new Map<string, Credential>();
  const statuses = new Map<number, number>();

  await fc.assert(
    fc.asyncProperty(credential, body, contentType, fc.string({ maxLength: 40 }), async (makeCredential, payload, type, origin) => {
      const who = await makeCredential();
      const requestId = `fuzz-${++requestNumber}`;
      sentBy.set(requestId, who);
      const headers: Record<string, string> = { 'x-request-id': requestId };
      if (who.header !== undefined) headers.authorization = who.header;
      if (type !== undefined) headers['content-type'] = type;
      if (/^[\x20-\x7e]*$/.test(origin)) headers.origin = origin;

      const res = await client.request({ path: '/v1/benji/connect-token', method: 'POST', headers, body: payload });
      const text = await res.body.text();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);

      expect(res.statusCode).toBeLessThan(500);
      if (res.statusCode >= 400) {
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(text)).toMatchObject({ status: res.statusCode, code: expect.any(String), requestId });
      } else {
        expect(who.userId).toBeDefined();
        expect(JSON.parse(text)).toMatchObject({ token: expect.any(String), mode: expect.stringMatching(/^(connect|transfer)$/) });
      }
    }),
    // A fixed seed keeps CI deterministic; FUZZ_SEED explores further (a failure prints its seed).
    { numRuns: 2_000, seed: Number(process.env.FUZZ_SEED ?? 20261122) },
  );

  // What Benji saw: only well-formed bodies, for the user the verified token named.
  expect(benji.requests.length).toBeGreaterThan(20);
  for (const call of benji.requests) {
    const who = sentBy.get(String(call.headers['x-request-id']));
    expect(who?.userId).toBeDefined();
    expect(call.headers['x-api-key']).toBe(benjiApiKey);
    const sent = call.body as Record<string, unknown>;
    expect(
      Object.keys(sent).every((k) => ['partnership_id', 'mode', 'display_name', 'user_external_id', 'custom_attributes'].includes(k)),
    ).toBe(true);
    expect(sent.partnership_id).toBe(partnershipId);
    expect([1, 3]).toContain(sent.mode);
    expect(typeof sent.user_external_id).toBe('string');
    if (who?.userId !== 'unknown') expect(sent.user_external_id).toBe(who?.userId);
    if (sent.display_name !== undefined) expect(String(sent.display_name).length).toBeLessThanOrEqual(100);
    if (sent.custom_attributes !== undefined) {
      expect(sent.mode).toBe(3);
      const [action] = (sent.custom_attributes as { actions: Array<{ mode: number; amount: number; allows_editing: boolean }> }).actions;
      expect(action?.mode).toBe(3);
      expect(Number.isInteger(action?.amount) && action!.amount > 0 && action!.amount <= maxAmount).toBe(true);
      expect(typeof action?.allows_editing).toBe('boolean');
    }
  }
  // The generators reach every kind of answer, not just one.
  expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([200, 400, 401, 403, 415]));
});
