import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FORWARD_TOLERANCE_S,
  standardWebhookSignature,
  startForwardTarget,
  verifyStandardWebhook,
  type ForwardTarget,
  type ForwardTargetOptions,
} from '../../sandbox/forward-target.js';
import {
  STALE_AGE_S,
  benjiSignature,
  resendWebhook,
  sendBenjiWebhook,
  sendStarshipWebhook,
  starshipSignature,
} from '../../sandbox/webhook-sender.js';
import { secret, watchLogs } from '../support/secrets.js';

// Vectors computed outside node, with `openssl dgst -sha256 -hmac` (see the values' inputs below).
const vectorTimestamp = 'Tue, 22 Oct 2024 21:57:02 GMT';
const vectorBenjiBody = '{"event":"user_partner_authentication_created","entity_type":1,"entity_id":"usr_é42"}';
const vectorSalt = secret('sält-salt');
const vectorStarshipBody = '{"id":"evt_1","event_type":"order.delivered","data":{"order_id":"ord_7"}}';
const vectorStarshipSecret = secret('starship-signing-secret');

const salt = secret(`salt-${randomBytes(12).toString('hex')}`);
const starshipSecret = secret(`sss-${randomBytes(12).toString('hex')}`);
const forwardKey = randomBytes(32);
const forwardSecret = secret(`whsec_${secret(forwardKey.toString('base64'))}`);

const benjiEvent = { event: 'user_partner_authentication_created', entity_type: 1, entity_id: 'usr_42' };
const starshipEvent = { id: 'evt_9', event_type: 'order.delivered', data: { order_id: 'ord_7' } };

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A receiver that records what arrived and answers 202 JSON, standing in for the broker. */
async function startReceiver(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(202, { 'content-type': 'application/json', 'x-receiver': 'yes' });
      res.end(JSON.stringify({ accepted: received.length }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  servers.push(server);
  return { url: `http://127.0.0.1:${port}/v1/webhooks/x`, received, server };
}

const servers: Server[] = [];
const targets: ForwardTarget[] = [];
afterEach(async () => {
  await Promise.all(targets.splice(0).map((target) => target.close()));
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    ),
  );
});

const hmac = (key: string | Buffer, data: string | Buffer) => createHmac('sha256', key).update(data);
const nowS = () => Math.floor(Date.now() / 1000);

describe('the providers’ signatures', () => {
  it('match vectors computed with openssl', () => {
    expect(benjiSignature(vectorSalt, vectorTimestamp, vectorBenjiBody, 'hex')).toBe(
      '159b4a09f4cffc3a94b19e1029dd4df2cd083b5e1bf64281d207c8392d80301f',
    );
    expect(benjiSignature(vectorSalt, vectorTimestamp, vectorBenjiBody, 'base64')).toBe('FZtKCfTP/DqUsZ4QKd1N8s0IO14b9kKB0gfIOS2AMB8=');
    expect(starshipSignature(vectorStarshipSecret, 1729634222, vectorStarshipBody)).toBe(
      'bbcf49c345a8a957854dbe1f0f7dd8e0f18e82aff7479911849e1893adf55f46',
    );
  });

  it('match node:crypto over the exact bytes, given as text or as bytes', () => {
    const timestamp = new Date().toUTCString();
    const body = Buffer.from('{"a": "é" }\n', 'utf8');
    const expected = hmac(Buffer.from(salt, 'utf8'), Buffer.concat([Buffer.from(timestamp), body])).digest();
    expect(benjiSignature(salt, timestamp, body, 'hex')).toBe(expected.toString('hex'));
    expect(benjiSignature(salt, timestamp, body.toString('utf8'), 'base64')).toBe(expected.toString('base64'));
    const starship = hmac(starshipSecret, `1729634222.${body.toString('utf8')}`).digest('hex');
    expect(starshipSignature(starshipSecret, 1729634222, body)).toBe(starship);
    expect(starshipSignature(starshipSecret, '1729634222', body.toString('utf8'))).toBe(starship);
  });
});

describe('sendBenjiWebhook', () => {
  it('posts the exact bytes with an HTTP-date timestamp and a hex signature, and returns the answer', async () => {
    const receiver = await startReceiver();
    const body = ' {"event":"user_partner_authentication_created", "entity_id":"usr_é"}\n';
    const reply = await sendBenjiWebhook(receiver.url, body, { salt });
    expect(reply.status).toBe(202);
    expect(reply.headers['x-receiver']).toBe('yes');
    expect(reply.json).toEqual({ accepted: 1 });
    const [got] = receiver.received;
    expect(got!.body.equals(Buffer.from(body, 'utf8'))).toBe(true);
    expect(got!.headers['content-type']).toBe('application/json');
    const timestamp = got!.headers['x-benji-timestamp'] as string;
    expect(timestamp).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Math.abs(Date.parse(timestamp) / 1000 - nowS())).toBeLessThan(5);
    expect(got!.headers['x-benji-signature']).toBe(hmac(salt, Buffer.concat([Buffer.from(timestamp), got!.body])).digest('hex'));
  });

  it('serializes an object, signs in base64 on request and sends a string timestamp as given', async () => {
    const receiver = await startReceiver();
    const timestamp = new Date().toISOString();
    await sendBenjiWebhook(receiver.url, benjiEvent, { salt, encoding: 'base64', timestamp });
    const [got] = receiver.received;
    expect(got!.body.toString('utf8')).toBe(JSON.stringify(benjiEvent));
    expect(got!.headers['x-benji-timestamp']).toBe(timestamp);
    expect(got!.headers['x-benji-signature']).toBe(hmac(salt, `${timestamp}${JSON.stringify(benjiEvent)}`).digest('base64'));
  });

  it('spoils the signature or the body on request, keeping both well-formed', async () => {
    const receiver = await startReceiver();
    const timestamp = new Date();
    for (const encoding of ['hex', 'base64'] as const) {
      await sendBenjiWebhook(receiver.url, benjiEvent, { salt, encoding, timestamp, tamper: 'signature' });
      const spoilt = receiver.received.at(-1)!.headers['x-benji-signature'] as string;
      const right = benjiSignature(salt, timestamp.toUTCString(), JSON.stringify(benjiEvent), encoding);
      expect(spoilt).not.toBe(right);
      expect(Buffer.from(spoilt, encoding).toString(encoding)).toBe(spoilt);
      expect(spoilt).toHaveLength(right.length);
    }
    await sendBenjiWebhook(receiver.url, benjiEvent, { salt, timestamp, tamper: 'body' });
    const got = receiver.received.at(-1)!;
    expect(JSON.parse(got.body.toString('utf8'))).toEqual({ ...benjiEvent, tampered: true });
    expect(got.headers['x-benji-signature']).toBe(benjiSignature(salt, timestamp.toUTCString(), JSON.stringify(benjiEvent)));
  });

  it('leaves a header out, or sends a stale timestamp, on request', async () => {
    const receiver = await startReceiver();
    await sendBenjiWebhook(receiver.url, benjiEvent, { salt, omit: 'signature' });
    await sendBenjiWebhook(receiver.url, benjiEvent, { salt, omit: 'timestamp' });
    await sendBenjiWebhook(receiver.url, benjiEvent, { salt, stale: true });
    const [noSignature, noTimestamp, stale] = receiver.received;
    expect(noSignature!.headers).not.toHaveProperty('x-benji-signature');
    expect(noSignature!.headers).toHaveProperty('x-benji-timestamp');
    expect(noTimestamp!.headers).not.toHaveProperty('x-benji-timestamp');
    expect(noTimestamp!.headers).toHaveProperty('x-benji-signature');
    const staleAt = stale!.headers['x-benji-timestamp'] as string;
    expect(Math.abs(Date.parse(staleAt) / 1000 - (nowS() - STALE_AGE_S))).toBeLessThan(5);
    expect(stale!.headers['x-benji-signature']).toBe(benjiSignature(salt, staleAt, JSON.stringify(benjiEvent)));
    await expect(sendBenjiWebhook(receiver.url, benjiEvent, { salt, stale: true, timestamp: new Date() })).rejects.toThrow(/exclusive/);
  });

  it('resends exactly the same headers and bytes, as a provider retry does', async () => {
    const receiver = await startReceiver();
    const first = await sendBenjiWebhook(receiver.url, benjiEvent, { salt });
    const again = await resendWebhook(receiver.url, first.sent);
    expect(again.json).toEqual({ accepted: 2 });
    const [one, two] = receiver.received;
    expect(two!.body.equals(one!.body)).toBe(true);
    for (const name of ['x-benji-timestamp', 'x-benji-signature', 'content-type']) expect(two!.headers[name]).toBe(one!.headers[name]);
  });
});

describe('sendStarshipWebhook', () => {
  it('signs "<unix seconds>.<body>" in lowercase hex', async () => {
    const receiver = await startReceiver();
    const reply = await sendStarshipWebhook(receiver.url, starshipEvent, { secret: starshipSecret });
    expect(reply.status).toBe(202);
    const [got] = receiver.received;
    const timestamp = got!.headers['x-timestamp'] as string;
    expect(timestamp).toMatch(/^\d+$/);
    expect(Math.abs(Number(timestamp) - nowS())).toBeLessThan(5);
    expect(got!.body.toString('utf8')).toBe(JSON.stringify(starshipEvent));
    expect(got!.headers['x-signature']).toBe(hmac(starshipSecret, `${timestamp}.${JSON.stringify(starshipEvent)}`).digest('hex'));
    expect(got!.headers['x-signature']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('spoils, omits, goes stale and resends on request', async () => {
    const receiver = await startReceiver();
    const timestamp = nowS();
    const right = starshipSignature(starshipSecret, timestamp, JSON.stringify(starshipEvent));
    await sendStarshipWebhook(receiver.url, starshipEvent, { secret: starshipSecret, timestamp, tamper: 'signature' });
    await sendStarshipWebhook(receiver.url, starshipEvent, { secret: starshipSecret, timestamp, tamper: 'body' });
    await sendStarshipWebhook(receiver.url, starshipEvent, { secret: starshipSecret, omit: 'timestamp' });
    const stale = await sendStarshipWebhook(receiver.url, starshipEvent, { secret: starshipSecret, stale: true });
    await resendWebhook(receiver.url, stale.sent);
    const [spoilt, changed, noTimestamp, old, old2] = receiver.received;
    expect(spoilt!.headers['x-signature']).toMatch(/^[0-9a-f]{64}$/);
    expect(spoilt!.headers['x-signature']).not.toBe(right);
    expect(changed!.headers['x-signature']).toBe(right);
    expect(JSON.parse(changed!.body.toString('utf8'))).toEqual({ ...starshipEvent, tampered: true });
    expect(noTimestamp!.headers).not.toHaveProperty('x-timestamp');
    expect(Math.abs(Number(old!.headers['x-timestamp']) - (nowS() - STALE_AGE_S))).toBeLessThan(5);
    expect(old2!.body.equals(old!.body)).toBe(true);
    expect(old2!.headers['x-signature']).toBe(old!.headers['x-signature']);
    expect(old2!.headers['x-timestamp']).toBe(old!.headers['x-timestamp']);
  });
});

describe('the forward target', () => {
  const logLines: string[] = [];
  watchLogs(() => logLines.join('\n'));

  async function start(options: Partial<ForwardTargetOptions> = {}): Promise<ForwardTarget> {
    const target = await startForwardTarget({ secret: forwardSecret, log: (line) => logLines.push(line), ...options });
    targets.push(target);
    return target;
  }

  const envelope = (provider: string, event: unknown) => JSON.stringify({ provider, receivedAt: new Date().toISOString(), event });

  /** Posts a forwarded event signed by the standardwebhooks library (or with the given headers). */
  function deliver(target: ForwardTarget, body: string, headers: Record<string, string> = {}, date = new Date(), key = forwardSecret) {
    const id = `msg_${randomBytes(6).toString('hex')}`;
    const signed = {
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
      'webhook-signature': new Webhook(key).sign(id, date, body),
    };
    return fetch(target.url, { method: 'POST', headers: { 'content-type': 'application/json', ...signed, ...headers }, body });
  }

  it('accepts what the standardwebhooks library signs, and records it', async () => {
    const target = await start();
    const body = envelope('benji', benjiEvent);
    const res = await deliver(target, body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: true });
    const [delivery] = target.deliveries;
    expect(delivery).toMatchObject({ provider: 'benji', event: benjiEvent, verified: true, status: 200, path: '/events', body });
    expect(delivery!.id).toMatch(/^msg_/);
    expect(Math.abs(delivery!.timestamp! - nowS())).toBeLessThan(5);
    expect(logLines.at(-1)).toBe(`forward target: 200 benji user_partner_authentication_created webhook-id=${delivery!.id}`);
  });

  it('signs what the standardwebhooks library verifies', () => {
    const body = envelope('starship', starshipEvent);
    const timestamp = nowS();
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': standardWebhookSignature(forwardSecret, 'msg_1', timestamp, body),
    };
    expect(new Webhook(forwardSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(verifyStandardWebhook(forwardSecret, headers, Buffer.from(body), timestamp)).toEqual({ ok: true, id: 'msg_1', timestamp });
  });

  it('accepts one matching signature among several, and only a v1 one', async () => {
    const target = await start();
    const body = envelope('starship', starshipEvent);
    const date = new Date();
    const id = 'msg_rotated';
    const good = new Webhook(forwardSecret).sign(id, date, body);
    const other = new Webhook(`whsec_${randomBytes(32).toString('base64')}`).sign(id, date, body);
    const common = { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(date.getTime() / 1000)) };
    expect((await deliver(target, body, { ...common, 'webhook-signature': `${other} ${good}` })).status).toBe(200);
    const v1a = `v1a,${good.slice('v1,'.length)}`;
    expect((await deliver(target, body, { ...common, 'webhook-signature': `${other} ${v1a}` })).status).toBe(401);
    expect(target.deliveries.map((d) => [d.verified, d.problem])).toEqual([
      [true, undefined],
      [false, 'no matching signature'],
    ]);
  });

  it('refuses a wrong key, a changed body, missing headers and timestamps out of the window', async () => {
    const target = await start();
    const body = envelope('benji', benjiEvent);
    const tooOld = new Date(Date.now() - (FORWARD_TOLERANCE_S + 60) * 1000);
    const tooNew = new Date(Date.now() + (FORWARD_TOLERANCE_S + 60) * 1000);
    const statuses = [
      await deliver(target, body, {}, new Date(), `whsec_${randomBytes(32).toString('base64')}`),
      await fetch(target.url, { method: 'POST', body: `${body} ` }),
      await deliver(target, body, {}, tooOld),
      await deliver(target, body, {}, tooNew),
      await deliver(target, `${body} `, {
        'webhook-signature': new Webhook(forwardSecret).sign('x', new Date(), body),
        'webhook-id': 'x',
      }),
    ].map((res) => res.status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    expect(target.deliveries.map((d) => [d.verified, d.problem, d.event])).toEqual([
      [false, 'no matching signature', undefined],
      [false, 'missing webhook headers', undefined],
      [false, 'webhook-timestamp outside the window', undefined],
      [false, 'webhook-timestamp outside the window', undefined],
      [false, 'no matching signature', undefined],
    ]);
  });

  it('allows five minutes either way on its own clock, not one second more', async () => {
    const now = Date.now();
    const target = await start({ clock: () => now });
    const body = envelope('benji', benjiEvent);
    const at = (offsetS: number) => new Date(now + offsetS * 1000);
    const statuses = [-FORWARD_TOLERANCE_S, FORWARD_TOLERANCE_S, -FORWARD_TOLERANCE_S - 1, FORWARD_TOLERANCE_S + 1].map(async (s) => {
      return (await deliver(target, body, {}, at(s))).status;
    });
    expect(await Promise.all(statuses)).toEqual([200, 200, 401, 401]);
  });

  it('answers 400 to a verified body that is not a forwarded event', async () => {
    const target = await start();
    const bodies = ['not json', JSON.stringify({ provider: 'acme', receivedAt: new Date().toISOString(), event: {} })];
    for (const body of bodies) expect((await deliver(target, body)).status).toBe(400);
    expect(target.deliveries.map((d) => [d.verified, d.problem])).toEqual([
      [true, 'body not JSON'],
      [true, 'provider not benji or starship'],
    ]);
  });

  it('fails the next deliveries on request, then accepts again', async () => {
    const target = await start();
    const body = envelope('starship', starshipEvent);
    target.failNext(2, 500);
    target.failNext(1);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await deliver(target, body)).status);
    expect(statuses).toEqual([500, 500, 503, 200]);
    expect(target.deliveries.map((d) => [d.status, d.verified])).toEqual([
      [500, true],
      [500, true],
      [503, true],
      [200, true],
    ]);
    expect(logLines.slice(-4).map((line) => line.split(' ')[2])).toEqual(['500', '500', '503', '200']);
  });

  it('refuses connections while down, and listens on the same address when up again', async () => {
    const target = await start();
    const body = envelope('benji', benjiEvent);
    expect((await deliver(target, body)).status).toBe(200);
    await target.setDown(true);
    const refused = await deliver(target, body).catch((error: unknown) => error as Error);
    expect(refused).toBeInstanceOf(Error);
    expect(((refused as Error).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    await target.setDown(false);
    expect((await deliver(target, body)).status).toBe(200);
    expect(target.deliveries).toHaveLength(2);
  });

  it('fails at start on a secret that is not whsec_<base64>', async () => {
    for (const bad of [forwardKey.toString('base64'), 'whsec_', 'whsec_not base64!']) {
      await expect(startForwardTarget({ secret: bad })).rejects.toThrow(/whsec_<base64>/);
    }
  });

  it('never logs the secret or a body', () => {
    expect(logLines.length).toBeGreaterThan(10);
    for (const line of logLines) {
      expect(line).not.toContain(forwardKey.toString('base64'));
      expect(line).not.toContain('entity_id');
    }
  });
});
