import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody, send, sendOversized } from './http-kit.js';

/**
 * A stand-in for Benji's `POST /auth/connect`, over real HTTP, faithful to the documented contract
 * (docs/upstreams.md): x-api-key checked, `{code:"ok", data:{token, connect_url}}` on success,
 * `401 {"error":"unauthorized_partner"}` for a wrong key. Tests and the demo both run it; tests can
 * script faults (errors, garbage, huge, slow or silent replies) and read every request it received.
 */
export interface FakeBenjiOptions {
  apiKey: string;
  /** Base of the hosted-connect URL handed out; `''` imitates an account without hosted connect. Default: the fake's own page. */
  connectUrl?: string;
  port?: number;
  host?: string;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** One scripted reply, used instead of the normal behaviour for the next request. */
export type Fault =
  | { kind: 'reply'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'raw'; status: number; text: string }
  | { kind: 'delay'; ms: number }
  | { kind: 'hang' }
  | { kind: 'reset' }
  /** A reply body of `bytes` bytes (Content-Length declared when `contentLength`), or an endless one. */
  | { kind: 'oversized'; status: number; bytes?: number; contentLength?: boolean };

export interface FakeBenji {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Every connect token it issued, in order. */
  readonly issuedTokens: string[];
  /** Queue faults; each is used by exactly one request, in order. */
  fail(...faults: Fault[]): void;
  setConnectUrl(connectUrl: string): void;
  close(): Promise<void>;
}

export async function startFakeBenji(options: FakeBenjiOptions): Promise<FakeBenji> {
  const requests: ReceivedRequest[] = [];
  const issuedTokens: string[] = [];
  const faults: Fault[] = [];
  let connectUrl = options.connectUrl;
  let origin = '';

  const server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && path.startsWith('/hosted/')) return hostedPage(res);

    const body = parseJson(text);
    requests.push({ method: req.method ?? '', path, headers: req.headers, body });

    const fault = faults.shift();
    if (fault?.kind === 'hang') return; // never answer; the client's timeout must fire
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'delay') await new Promise((resolve) => setTimeout(resolve, fault.ms));
    if (fault?.kind === 'reply') return send(res, fault.status, fault.body, fault.headers);
    if (fault?.kind === 'oversized') return sendOversized(res, fault.status, fault.bytes, fault.contentLength);
    if (fault?.kind === 'raw') {
      res.writeHead(fault.status, { 'content-type': 'application/json' });
      return void res.end(fault.text);
    }

    if (req.method !== 'POST' || path !== '/auth/connect') return send(res, 404, { error: 'not_found', message: 'Not found' });
    if (req.headers['x-api-key'] !== options.apiKey) {
      return send(res, 401, { error: 'unauthorized_partner', message: 'Invalid API key' });
    }
    const problem = validate(body);
    if (problem !== undefined) return send(res, 400, { error: 'validation_error', message: problem });

    const token = randomUUID();
    issuedTokens.push(token);
    return send(res, 200, { code: 'ok', data: { token, connect_url: connectUrl ?? `${origin}/hosted/connect` } });
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  origin = `http://${options.host ?? '127.0.0.1'}:${port}`;

  return {
    url: origin,
    requests,
    issuedTokens,
    fail: (...more) => void faults.push(...more),
    setConnectUrl(value) {
      connectUrl = value;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function validate(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return 'Body must be a JSON object';
  const { partnership_id: partnershipId, mode, custom_attributes: custom } = body as Record<string, unknown>;
  if (typeof partnershipId !== 'string' && typeof partnershipId !== 'number') return 'partnership_id is required';
  if (mode !== 1 && mode !== 3 && mode !== 4) return 'mode must be 1, 3 or 4';
  if (custom !== undefined) {
    const actions = (custom as { actions?: unknown }).actions;
    if (!Array.isArray(actions)) return 'custom_attributes.actions must be an array';
  }
  return undefined;
}

function hostedPage(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><title>Benji Connect (sandbox)</title><p>Benji Hosted Connect sandbox: the connect token arrived.</p>');
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return text;
  }
}
