import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceKeys } from '../support/broker.js';
import { brokerWithFakes } from '../support/broker-with-fakes.js';
import { signUserToken } from '../support/jwt.js';

/**
 * JSON bodies are UTF-8 (RFC 8259), on every route that reads one: the public connect-token route
 * and the internal admin renew route. Any other type or charset is 415 and changes nothing.
 */
const world = brokerWithFakes({ CONNECT_TOKEN_RATE_LIMIT: '1000' });
afterEach(() => {
  world.benji.requests.length = 0;
});

/** `text` in the given Node encoding, as the bytes a client in that charset would send. */
const encoded = (text: string, encoding: BufferEncoding | 'utf-7' | 'utf-32le') => {
  if (encoding === 'utf-7')
    return Buffer.from(
      text.replace(/[{}"]/g, (c) => `+${Buffer.from(c, 'utf16le').swap16().toString('base64').replace(/=+$/, '')}-`),
      'ascii',
    );
  if (encoding === 'utf-32le') {
    const out = Buffer.alloc(text.length * 4);
    for (let i = 0; i < text.length; i++) out.writeUInt32LE(text.charCodeAt(i), i * 4);
    return out;
  }
  return Buffer.from(text, encoding);
};

/** Sends the bytes as they are: superagent would JSON-encode a Buffer under a JSON content type. */
const send = (call: request.Test, body: Buffer | string | undefined) =>
  body === undefined ? call : call.serialize((data: unknown) => data as string).send(body);

const charsets: Array<[string, Buffer]> = [
  ['utf-16le', encoded('{"mode":"connect"}', 'utf16le')],
  ['utf-16', Buffer.concat([Buffer.from([0xff, 0xfe]), encoded('{"mode":"connect"}', 'utf16le')])],
  ['utf-16be', encoded('{"mode":"connect"}', 'utf16le').swap16()],
  ['utf-32le', encoded('{"mode":"connect"}', 'utf-32le')],
  ['utf-7', encoded('{"mode":"connect"}', 'utf-7')],
  ['latin1', encoded('{"mode":"connect"}', 'latin1')],
  ['iso-8859-1', encoded('{"mode":"connect"}', 'latin1')],
];

describe('POST /v1/benji/connect-token bodies', () => {
  async function post(contentType: string | undefined, body: Buffer | string | undefined) {
    const call = request(world.subject.broker.publicApp)
      .post('/v1/benji/connect-token')
      .set('authorization', `Bearer ${await signUserToken({ sub: 'charset-user' })}`);
    if (contentType !== undefined) call.set('content-type', contentType);
    return send(call, body);
  }

  it.each(charsets)('refuses JSON in %s with 415, and never calls Benji', async (charset, bytes) => {
    const res = await post(`application/json; charset=${charset}`, bytes);
    expect(res.status).toBe(415);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ code: 'unsupported_media_type', detail: expect.stringContaining('UTF-8') });
    expect(world.benji.requests).toHaveLength(0);
  });

  it('accepts UTF-8 however the content type spells it', async () => {
    for (const type of [
      'application/json',
      'application/json; charset=utf-8',
      'Application/JSON; Charset="UTF-8"',
      'application/json;charset=utf8',
    ]) {
      const res = await post(type, Buffer.from('{"mode":"connect","displayName":"Café 🍪"}', 'utf8'));
      expect(res.status, type).toBe(200);
    }
    expect(world.benji.requests.map((r) => (r.body as { display_name: string }).display_name)).toEqual(Array(4).fill('Café 🍪'));
  });

  it('refuses bytes that are not UTF-8 with 400, even when the header says UTF-8', async () => {
    const latin1Name = Buffer.from('{"mode":"connect","displayName":"Caf\xe9"}', 'latin1');
    const res = await post('application/json; charset=utf-8', latin1Name);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'invalid_request', detail: 'The body is not valid UTF-8.' });
    expect(world.benji.requests).toHaveLength(0);
  });

  it('refuses other types (415) and says what an empty or non-object body is missing (400)', async () => {
    for (const [type, body] of [
      ['text/plain', '{"mode":"connect"}'],
      ['application/x-www-form-urlencoded', 'mode=connect'],
      ['application/merge-patch+json', '{"mode":"connect"}'],
      ['not a media type', '{"mode":"connect"}'],
      [undefined, '{"mode":"connect"}'],
    ] as const) {
      const res = await post(type, body);
      expect(res.status, String(type)).toBe(415);
      expect(res.body.code).toBe('unsupported_media_type');
    }
    for (const [type, body, detail] of [
      ['application/json', undefined, /^The body is empty; send a JSON object/],
      ['application/json', '', /^The body is empty; send a JSON object/],
      [undefined, undefined, /^The body is empty; send a JSON object/],
      ['application/json', 'null', /^The body must be a JSON object\.$/],
      ['application/json', '"connect"', /^The body must be a JSON object\.$/],
      ['application/json', '[{"mode":"connect"}]', /^The body must be a JSON object\.$/],
      ['application/json', '{"mode":', /^The body is not valid JSON\.$/],
    ] as const) {
      const res = await post(type, body);
      expect(res.status, `${type} ${body}`).toBe(400);
      expect(res.body.code).toBe('invalid_request');
      expect(res.body.detail, `${type} ${body}`).toMatch(detail);
    }
    expect(world.benji.requests).toHaveLength(0);
  });
});

describe('POST /v1/admin/starship/session/renew bodies', () => {
  const renew = (contentType: string | undefined, body?: Buffer | string) => {
    const call = request(world.subject.broker.internalApp)
      .post('/v1/admin/starship/session/renew')
      .set('authorization', `Bearer ${serviceKeys.ops}`);
    if (contentType !== undefined) call.set('content-type', contentType);
    return send(call, body);
  };

  it('refuses {"revokePrevious": true} sent as a form, as text or in another charset: 415, no login, no logout', async () => {
    const before = { ...world.starship.stats };
    const revoke = '{"revokePrevious": true}';
    for (const [type, body] of [
      ['application/x-www-form-urlencoded', 'revokePrevious=true'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="revokePrevious"\r\n\r\ntrue\r\n--x--\r\n'],
      ['text/plain', revoke],
      [undefined, revoke],
      ['application/json; charset=utf-16le', encoded(revoke, 'utf16le')],
      ['application/json; charset=utf-32le', encoded(revoke, 'utf-32le')],
      ['application/json; charset=utf-7', encoded(revoke, 'utf-7')],
    ] as const) {
      const res = await renew(type, body);
      expect(res.status, String(type)).toBe(415);
      expect(res.body.code).toBe('unsupported_media_type');
    }
    expect(world.starship.stats.logins).toBe(before.logins);
    expect(world.starship.stats.logouts).toBe(before.logouts);
  });

  it('refuses a body that is not a JSON object with 400, and changes nothing', async () => {
    const before = { ...world.starship.stats };
    for (const body of ['null', '[]', 'true', '{"revokePrevious":', '{"revokePrevious":"true"}']) {
      const res = await renew('application/json', body);
      expect(res.status, body).toBe(400);
      expect(res.body.code).toBe('invalid_request');
    }
    expect(world.starship.stats.logins).toBe(before.logins);
  });

  it('takes no body at all as {}: a plain renewal, without logout; revokePrevious in UTF-8 JSON logs out', async () => {
    const before = { ...world.starship.stats };
    expect((await renew(undefined)).status).toBe(200);
    expect((await renew('application/json', '')).status).toBe(200);
    // What `curl -X POST -d ''` sends: a form type, and no body.
    expect((await renew('application/x-www-form-urlencoded', '')).status).toBe(200);
    expect((await renew('text/plain', '')).status).toBe(200);
    expect(world.starship.stats.logins).toBe(before.logins + 4);
    expect(world.starship.stats.logouts).toBe(before.logouts);

    expect((await renew('application/json; charset=UTF-8', '{"revokePrevious": true}')).status).toBe(200);
    expect(world.starship.stats.logouts).toBe(before.logouts + 1);
  });
});
