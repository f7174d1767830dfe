import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeBenji } from '../support/fakes.js';
import { benjiApiKey, buildBroker, partnershipId, type TestBroker } from '../support/broker.js';
import { signUserToken } from '../support/jwt.js';

let benji: FakeBenji;
let subject: TestBroker;

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  subject = buildBroker({
    BENJI_BASE_URL: benji.url,
    BENJI_DISPLAY_NAME: 'Reward Cookies',
    BENJI_MAX_TRANSFER_AMOUNT: '5000',
    BENJI_TIMEOUT_MS: '300',
    CONNECT_TOKEN_RATE_LIMIT: '1000',
  });
});
afterAll(async () => {
  await subject.close();
  await benji.close();
});
afterEach(() => {
  benji.requests.length = 0;
  benji.setConnectUrl(`${benji.url}/hosted/connect`);
});

async function post(body: unknown, claims: Record<string, unknown> = { sub: 'user-1234' }) {
  const token = await signUserToken(claims);
  return request(subject.broker.publicApp)
    .post('/v1/benji/connect-token')
    .set('authorization', `Bearer ${token}`)
    .send(body as object);
}

describe('POST /v1/benji/connect-token', () => {
  it('issues a connect token for the verified user with the server-held key and partnership', async () => {
    const res = await post({ mode: 'connect' });

    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({
      token: expect.stringMatching(/^[0-9a-f-]{36}$/),
      mode: 'connect',
      connectUrl: `${benji.url}/hosted/connect`,
      hostedUrl: `${benji.url}/hosted/connect?connect_token=${res.body.token}`,
    });
    expect(benji.requests).toHaveLength(1);
    const [call] = benji.requests;
    expect(call?.path).toBe('/auth/connect');
    expect(call?.headers['x-api-key']).toBe(benjiApiKey);
    expect(call?.body).toEqual({ partnership_id: partnershipId, mode: 1, display_name: 'Reward Cookies', user_external_id: 'user-1234' });
  });

  it('accepts numeric modes and reports the mode by name', async () => {
    for (const [mode, name, number] of [
      [1, 'connect', 1],
      [3, 'transfer', 3],
      [4, 'redeem', 4],
      ['redeem', 'redeem', 4],
    ] as const) {
      const res = await post({ mode });
      expect(res.status).toBe(200);
      expect(res.body.mode).toBe(name);
      expect((benji.requests.at(-1)?.body as { mode: number }).mode).toBe(number);
    }
  });

  it('presets a transfer amount, with editing allowed unless the caller says otherwise', async () => {
    await post({ mode: 'transfer', amount: 1000 });
    await post({ mode: 3, amount: 250, allowsEditing: false, displayName: '  Cookie Club ' });

    expect(benji.requests.map((r) => r.body)).toEqual([
      {
        partnership_id: partnershipId,
        mode: 3,
        display_name: 'Reward Cookies',
        user_external_id: 'user-1234',
        custom_attributes: { actions: [{ mode: 3, amount: 1000, allows_editing: true }] },
      },
      {
        partnership_id: partnershipId,
        mode: 3,
        display_name: 'Cookie Club',
        user_external_id: 'user-1234',
        custom_attributes: { actions: [{ mode: 3, amount: 250, allows_editing: false }] },
      },
    ]);
  });

  it('keeps an existing query on the hosted URL and gives nulls when hosted connect is off', async () => {
    benji.setConnectUrl('https://connect.withbenji.test/khkg?lang=en');
    const withQuery = await post({ mode: 'connect' });
    const hosted = new URL(withQuery.body.hostedUrl as string);
    expect(hosted.searchParams.get('lang')).toBe('en');
    expect(hosted.searchParams.get('connect_token')).toBe(withQuery.body.token);
    expect(withQuery.body.connectUrl).toBe('https://connect.withbenji.test/khkg?lang=en');

    benji.setConnectUrl('');
    const empty = await post({ mode: 'connect' });
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({ connectUrl: null, hostedUrl: null });

    benji.setConnectUrl('javascript:alert(1)');
    const script = await post({ mode: 'connect' });
    expect(script.status).toBe(200);
    expect(script.body).toMatchObject({ connectUrl: null, hostedUrl: null });
  });

  it.each([
    ['a user id chosen by the browser', { mode: 'connect', user_external_id: 'someone-else' }],
    ['a partnership chosen by the browser', { mode: 'connect', partnership_id: 1 }],
    ['an unknown mode', { mode: 'payout' }],
    ['mode 2, which Benji does not have', { mode: 2 }],
    ['no mode', {}],
    ['an amount outside transfer', { mode: 'connect', amount: 10 }],
    ['allowsEditing outside transfer', { mode: 'redeem', allowsEditing: true }],
    ['allowsEditing without an amount', { mode: 'transfer', allowsEditing: false }],
    ['a fractional amount', { mode: 'transfer', amount: 10.5 }],
    ['a negative amount', { mode: 'transfer', amount: -1 }],
    ['an amount over the configured maximum', { mode: 'transfer', amount: 5001 }],
    ['an empty display name', { mode: 'connect', displayName: '   ' }],
    ['a display name over 100 characters', { mode: 'connect', displayName: 'x'.repeat(101) }],
    ['an array body', [{ mode: 'connect' }]],
  ])('refuses %s with 400 and never calls Benji', async (_name, body) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 400, code: 'invalid_request', requestId: expect.any(String) });
    expect(benji.requests).toHaveLength(0);
  });

  it('refuses malformed JSON with 400, non-JSON with 415 and bodies over 16 KB with 413', async () => {
    const token = await signUserToken({ sub: 'user-1' });
    const call = () => request(subject.broker.publicApp).post('/v1/benji/connect-token').set('authorization', `Bearer ${token}`);

    const malformed = await call().set('content-type', 'application/json').send('{"mode":');
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('invalid_request');

    const form = await call().type('form').send('mode=connect');
    expect(form.status).toBe(415);
    expect(form.body.code).toBe('unsupported_media_type');

    const huge = await call().send({ mode: 'connect', displayName: 'x'.repeat(17 * 1024) });
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('payload_too_large');
    expect(benji.requests).toHaveLength(0);
  });

  it.each([
    ['a NUL', 'Reward\u0000Cookies'],
    ['a tab', 'Reward\tCookies'],
    ['a trailing newline (refused, not trimmed away)', 'Reward Cookies\n'],
    ['DEL', 'Reward\u007fCookies'],
    ['a C1 control', 'Reward\u0085Cookies'],
    ['a right-to-left override', 'Reward \u202eseikooC'],
    ['a left-to-right embedding', '\u202aReward'],
    ['a bidi isolate', 'Reward \u2066Cookies\u2069'],
    ['a zero-width space', 'Reward\u200bCookies'],
    ['a zero-width joiner', 'Reward\u200dCookies'],
    ['a word joiner', 'Reward\u2060Cookies'],
    ['a byte-order mark inside', 'Reward\ufeffCookies'],
    ['a line separator', 'Reward\u2028Cookies'],
    ['a paragraph separator', 'Reward\u2029Cookies'],
    ['a private-use character', 'Reward \ue000'],
    ['an unassigned code point', 'Reward \u0378'],
    ['a lone high surrogate', 'Reward \ud800'],
    ['a lone low surrogate', '\udfffReward'],
    ['a combining grapheme joiner', 'Reward\u034fCookies'],
    ['a variation selector', 'Reward\ufe00Cookies'],
    ['a supplementary variation selector', 'Reward\u{e0100}Cookies'],
    ['an emoji selector after a letter', 'Reward\ufe0fCookies'],
    ['a Hangul filler', 'Reward\u3164Cookies'],
    ['only a Hangul filler (renders blank)', '\u3164'],
    ['a Khmer inherent vowel', 'Reward\u17b4Cookies'],
    ['only combining marks', '\u0301\u0301\u0301'],
    ['only blank braille patterns', '\u2800\u2800'],
  ])('refuses a displayName with %s: 400 saying what is allowed, and never calls Benji', async (_name, displayName) => {
    const res = await post({ mode: 'connect', displayName });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_request');
    expect(res.body.detail).toMatch(/^displayName: must be a string of 1–100 printable characters \(letters, marks, digits, punctuation/);
    expect(benji.requests).toHaveLength(0);
  });

  it('accepts printable display names in any script, with accents, emoji and spaces', async () => {
    const names = [
      'Café Crème',
      'Cookies & Co. – 50% off!',
      'مكافآت الكوكيز',
      'クッキー報酬',
      'e\u0301clair',
      'Cookie 🍪',
      'Ünïcödé Ltd',
      '❤\ufe0f Cookies',
      '★',
    ];
    for (const displayName of names) expect((await post({ mode: 'connect', displayName })).status, displayName).toBe(200);
    expect(benji.requests.map((r) => (r.body as { display_name: string }).display_name)).toEqual(names);
  });

  it('says what is allowed, and reports each problem once', async () => {
    const detail = async (body: unknown) => {
      const res = await post(body);
      expect(res.status).toBe(400);
      return res.body.detail as string;
    };
    const modes = 'one of "connect", "transfer", "redeem", or their numbers 1, 3, 4';
    expect(await detail({ mode: 'payout' })).toBe(`mode: must be ${modes}`);
    expect(await detail({ mode: 2 })).toBe(`mode: must be ${modes}`);
    expect(await detail({})).toBe(`mode: is required: ${modes}`);
    // 1e20 is over both the safe-integer range and the partner's maximum: one field, one message.
    expect(await detail({ mode: 'transfer', amount: 1e20 })).toBe('amount: must be a whole number from 1 to 5000');
    expect(await detail({ mode: 'transfer', amount: 5001 })).toBe('amount: must be a whole number from 1 to 5000');
    expect(await detail({ mode: 'transfer', amount: 0 })).toBe('amount: must be a whole number from 1 to 5000');
    expect(await detail({ mode: 'transfer', amount: '10' })).toBe('amount: must be a whole number from 1 to 5000');
    expect(await detail({ mode: 'connect', displayName: '\u0000'.repeat(200) })).toMatch(
      /^displayName: must be a string of 1–100 printable/,
    );
    expect(await detail({ mode: 'transfer', amount: 10, allowsEditing: 'no' })).toBe('allowsEditing: must be true or false');
    expect(await detail({ mode: 'connect', user_external_id: 'someone-else' })).toBe(
      'body: unknown field "user_external_id"; the fields are mode, displayName, amount, allowsEditing',
    );
    expect(await detail({ mode: 'payout', amount: -1, extra: 1 })).toBe(
      `mode: must be ${modes}; amount: must be a whole number from 1 to 5000; body: unknown field "extra"; the fields are mode, displayName, amount, allowsEditing`,
    );
    expect(benji.requests).toHaveLength(0);
  });

  it('answers 403 mode_not_allowed for a mode the partner has not enabled', async () => {
    const restricted = buildBroker({ BENJI_BASE_URL: benji.url, BENJI_ALLOWED_MODES: 'connect,redeem' });
    try {
      const token = await signUserToken({ sub: 'user-1' });
      const res = await request(restricted.broker.publicApp)
        .post('/v1/benji/connect-token')
        .set('authorization', `Bearer ${token}`)
        .send({ mode: 3, amount: 5 });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('mode_not_allowed');
      expect(res.body.detail).toBe('Mode transfer is not enabled for this partner; the enabled modes are connect (1), redeem (4).');
      expect(benji.requests).toHaveLength(0);
    } finally {
      await restricted.close();
    }
  });
});

describe('when Benji misbehaves', () => {
  it.each([
    [
      'a 500',
      { kind: 'reply', status: 500, body: { error: 'unexpected_error', message: 'boom' } },
      502,
      'upstream_error',
      'unexpected_error',
    ],
    [
      'a 401 for our key',
      { kind: 'reply', status: 401, body: { error: 'unauthorized_partner', message: 'no' } },
      502,
      'upstream_error',
      'unauthorized_partner',
    ],
    ['an error named under code', { kind: 'reply', status: 503, body: { code: 'maintenance' } }, 502, 'upstream_error', 'maintenance'],
    ['a reply that is not JSON', { kind: 'raw', status: 200, text: '<html>oops</html>' }, 502, 'upstream_error', undefined],
    ['a reply without a token', { kind: 'reply', status: 200, body: { code: 'ok', data: {} } }, 502, 'upstream_error', undefined],
    ['a 429', { kind: 'reply', status: 429, body: {}, headers: { 'retry-after': '7' } }, 503, 'upstream_throttled', undefined],
    ['no answer in time', { kind: 'hang' }, 504, 'upstream_timeout', undefined],
    ['a reset connection', { kind: 'reset' }, 502, 'upstream_error', undefined],
  ] as const)('answers %s with the documented problem', async (_name, fault, status, code, benjiError) => {
    benji.fail(fault);
    const res = await post({ mode: 'connect' });

    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe(code);
    // Benji's own words and ids stay in our logs, never in the answer.
    expect(JSON.stringify(res.body)).not.toMatch(/boom|unexpected_error|unauthorized_partner|maintenance/);
    if (code === 'upstream_throttled') expect(res.headers['retry-after']).toBe('7');

    const failure = subject.logs.entries().find((entry) => entry.requestId === res.body.requestId && entry.level === 'error');
    expect(failure).toBeDefined();
    if (benjiError !== undefined) expect((failure?.err as { logFields: { benjiError: string } }).logFields.benjiError).toBe(benjiError);
  });

  it('answers 502 when Benji cannot be reached at all', async () => {
    const closed = await startFakeBenji({ apiKey: benjiApiKey });
    await closed.close();
    const unreachable = buildBroker({ BENJI_BASE_URL: closed.url });
    try {
      const token = await signUserToken({ sub: 'user-1' });
      const res = await request(unreachable.broker.publicApp)
        .post('/v1/benji/connect-token')
        .set('authorization', `Bearer ${token}`)
        .send({ mode: 1 });
      expect(res.status).toBe(502);
      expect(res.body.code).toBe('upstream_error');
    } finally {
      await unreachable.close();
    }
  });
});
