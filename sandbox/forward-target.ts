import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBytes, send } from './http-kit.js';

/**
 * A stand-in for the internal service that receives the events the broker forwards, over real
 * HTTP. It checks each delivery as a careful receiver would, with its own small Standard Webhooks
 * verifier (written apart from the broker's signer, so that the two can disagree), records every
 * POST it gets, and can be scripted to fail so that tests see the broker retry.
 *
 * Answers: 200 `{"received":true}` for a verified, well-formed delivery; 401 when the signature or
 * timestamp is refused; 400 when verified but not `{provider, receivedAt, event}`; a scripted status
 * (`failNext`) before any of these. `setDown(true)` closes the listener and every open connection,
 * so the broker sees connection refused rather than an answer; 503s are `failNext(n, 503)`.
 */
export interface ForwardTargetOptions {
  /** The forward secret, `whsec_<base64 key bytes>`. */
  secret: string;
  port?: number;
  host?: string;
  /** Epoch milliseconds, for the timestamp window. Default `Date.now`. */
  clock?: () => number;
  /** Called with one line per delivery (the demo prints them). */
  log?: (line: string) => void;
}

/** How far `webhook-timestamp` may be from the target's clock, either way. */
export const FORWARD_TOLERANCE_S = 300;

export interface ForwardDelivery {
  /** The `webhook-id` header, as received. */
  id: string | undefined;
  /** The `webhook-timestamp` header in unix seconds, when it is one. */
  timestamp: number | undefined;
  provider: string | undefined;
  /** The provider's original event, as forwarded. */
  event: unknown;
  receivedAt: string | undefined;
  /** Signature and timestamp both accepted. */
  verified: boolean;
  /** Why it was refused, when it was. */
  problem: string | undefined;
  /** The status it was answered with (a scripted failure included). */
  status: number;
  path: string;
  /** The body as utf8 text. */
  body: string;
}

export interface ForwardTarget {
  /** Where the broker should forward, e.g. `http://127.0.0.1:43210/events` (any path is accepted and recorded). */
  readonly url: string;
  /** Every POST received, in order (tests may clear it with `deliveries.length = 0`). */
  readonly deliveries: ForwardDelivery[];
  /** The next `n` deliveries are answered with `status` (default 503), whatever they hold. */
  failNext(n: number, status?: number): void;
  /** Down: the listener and every connection closed (connection refused). Up: listening on the same port again. */
  setDown(down: boolean): Promise<void>;
  close(): Promise<void>;
}

export type Verification = { ok: true; id: string; timestamp: number } | { ok: false; problem: string };

/** `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the secret's decoded key bytes. */
export function standardWebhookSignature(secret: string, id: string, timestampS: number, body: string | Uint8Array): string {
  const mac = createHmac('sha256', webhookKey(secret)).update(`${id}.${timestampS}.`, 'utf8').update(body);
  return `v1,${mac.digest('base64')}`;
}

/**
 * Checks a delivery's Standard Webhooks headers against its raw body: the timestamp within
 * `FORWARD_TOLERANCE_S` of `nowS`, and any one of the space-separated `v1,` signatures matching
 * (others, such as a rotated key's or another scheme's, are skipped, as the spec allows).
 */
export function verifyStandardWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: Uint8Array,
  nowS: number,
): Verification {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') {
    return { ok: false, problem: 'missing webhook headers' };
  }
  if (!/^\d+$/.test(timestamp)) return { ok: false, problem: 'webhook-timestamp not unix seconds' };
  const timestampS = Number(timestamp);
  if (Math.abs(nowS - timestampS) > FORWARD_TOLERANCE_S) return { ok: false, problem: 'webhook-timestamp outside the window' };
  const expected = Buffer.from(standardWebhookSignature(secret, id, timestampS, body), 'utf8');
  const matches = signatures.split(' ').some((candidate) => {
    if (!candidate.startsWith('v1,')) return false;
    const given = Buffer.from(candidate, 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return matches ? { ok: true, id, timestamp: timestampS } : { ok: false, problem: 'no matching signature' };
}

export async function startForwardTarget(options: ForwardTargetOptions): Promise<ForwardTarget> {
  webhookKey(options.secret); // a malformed secret fails here, not at the first delivery
  const host = options.host ?? '127.0.0.1';
  const clock = options.clock ?? Date.now;
  const deliveries: ForwardDelivery[] = [];
  const failures: number[] = [];

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' }, { allow: 'POST' });
    const body = await readBytes(req);
    const verification = verifyStandardWebhook(options.secret, req.headers, body, Math.floor(clock() / 1000));
    const content = verification.ok ? contentOf(body) : undefined;
    const scripted = failures.shift();
    const problem = verification.ok ? content?.problem : verification.problem;
    const status = scripted ?? (!verification.ok ? 401 : problem !== undefined ? 400 : 200);
    const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined);
    const timestampHeader = header('webhook-timestamp');
    const delivery: ForwardDelivery = {
      id: header('webhook-id'),
      timestamp: timestampHeader !== undefined && /^\d+$/.test(timestampHeader) ? Number(timestampHeader) : undefined,
      provider: content?.provider,
      event: content?.event,
      receivedAt: content?.receivedAt,
      verified: verification.ok,
      problem,
      status,
      path: (req.url ?? '/').split('?')[0] ?? '/',
      body: body.toString('utf8'),
    };
    deliveries.push(delivery);
    options.log?.(describe(delivery));
    if (status >= 200 && status < 300) return send(res, status, { received: true });
    return send(res, status, { error: scripted !== undefined ? 'scripted failure' : problem });
  }

  let port = options.port ?? 0;
  let down = false;
  let closed = false;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

  await listen();
  port = (server.address() as AddressInfo).port;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url: `${origin}/events`,
    deliveries,
    failNext(n, status = 503) {
      for (let i = 0; i < n; i++) failures.push(status);
    },
    async setDown(value) {
      if (closed) throw new Error('forward target closed');
      if (value === down) return;
      down = value;
      await (value ? stop() : listen());
    },
    async close() {
      const wasDown = down;
      closed = down = true;
      if (!wasDown) await stop();
    },
  };
}

/** The key bytes of a `whsec_<base64>` secret; anything else is a configuration mistake worth failing on. */
function webhookKey(secret: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new Error('forward secret is not whsec_<base64>');
  return Buffer.from(encoded, 'base64');
}

interface Content {
  provider: string | undefined;
  receivedAt: string | undefined;
  event: unknown;
  problem: string | undefined;
}

/** The forwarded envelope `{provider, receivedAt, event}`, and what is wrong with it, if anything. */
function contentOf(body: Buffer): Content {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { provider: undefined, receivedAt: undefined, event: undefined, problem: 'body not JSON' };
  }
  const record = (parsed !== null && typeof parsed === 'object' ? parsed : {}) as Record<string, unknown>;
  const provider = typeof record.provider === 'string' ? record.provider : undefined;
  const receivedAt = typeof record.receivedAt === 'string' ? record.receivedAt : undefined;
  const event = record.event;
  let problem: string | undefined;
  if (provider !== 'benji' && provider !== 'starship') problem = 'provider not benji or starship';
  else if (receivedAt === undefined || Number.isNaN(Date.parse(receivedAt))) problem = 'receivedAt not a date';
  else if (event === null || typeof event !== 'object') problem = 'event not a JSON object';
  return { provider, receivedAt, event, problem };
}

/** One line for a log: status, provider, event type and id; never the body. */
function describe(delivery: ForwardDelivery): string {
  const event = (delivery.event ?? {}) as Record<string, unknown>;
  const type = event.event ?? event.event_type;
  const what = [delivery.provider ?? '?', typeof type === 'string' ? type : '?'].join(' ');
  const refused = delivery.problem !== undefined ? ` (${delivery.problem})` : '';
  return `forward target: ${delivery.status} ${what} webhook-id=${delivery.id ?? '?'}${refused}`;
}
