import { METHODS, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { serve, type RunningBroker } from '../../src/server.js';
import { buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';

/**
 * Only the methods of a REST API reach Starship. Everything else is refused with 405 and `Allow`
 * before any upstream call: a TRACE to an upstream that reflects requests would hand the broker's
 * own Starship token to the caller. Through real sockets, since CONNECT and methods Node's parser
 * does not know never reach the app.
 */
const allowed = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const allowHeader = 'GET, HEAD, POST, PUT, PATCH, DELETE';
/** Every other method Node parses (TRACE, OPTIONS, the WebDAV verbs, QUERY, PURGE, …), CONNECT aside. */
const refused = METHODS.filter((method) => !allowed.includes(method) && method !== 'CONNECT');

let starship: FakeStarship;
let subject: TestBroker;
let running: RunningBroker;

beforeAll(async () => {
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
  subject = buildBroker({ STARSHIP_BASE_URL: starship.url });
  running = await serve(subject.broker, {
    ...subject.config.http,
    host: '127.0.0.1',
    publicPort: 0,
    internalPort: 0,
    shutdownTimeoutMs: 1_000,
  });
});
afterAll(async () => {
  await running.stop();
  await starship.close();
});
afterEach(() => {
  starship.requests.length = 0;
});

const apiRequests = () => starship.requests.filter((r) => r.path.startsWith('/api/'));

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(method: string, path: string, headers: Record<string, string> = { authorization: `Bearer ${serviceKeys.orders}` }) {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: running.internalPort, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes raw bytes to the internal port; resolves with everything read until the broker closes the connection. */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(running.internalPort, '127.0.0.1');
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (out += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(out));
    socket.write(text);
  });
}

async function stillServing(): Promise<void> {
  const res = await call('GET', '/v1/starship/api/v1/products');
  expect(res.status).toBe(200);
}

describe('forwarded', () => {
  it.each(allowed)('%s reaches Starship', async (method) => {
    const res = await call(method, '/v1/starship/api/v1/echo');
    expect(res.status).toBe(200);
    expect(apiRequests().map((r) => r.method)).toEqual([method]);
  });
});

describe('refused with 405', () => {
  it.each(refused)('%s: 405 method_not_allowed with Allow, and nothing sent to Starship', async (method) => {
    const res = await call(method, '/v1/starship/api/v1/echo');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe(allowHeader);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(res.body) as { code: string; requestId: string };
    expect(problem.code).toBe('method_not_allowed');
    expect(apiRequests()).toEqual([]);
    const line = subject.logs.entries().find((e) => e.requestId === problem.requestId);
    expect(line).toMatchObject({ method, status: 405, problem: 'method_not_allowed', caller: 'orders' });
  });

  it('a TRACE cannot reflect the broker’s token: it never leaves the broker', async () => {
    const res = await call('TRACE', '/v1/starship/api/v1/echo');
    expect(res.status).toBe(405);
    expect(res.body).not.toMatch(/\bat_[0-9a-f]{48}\b/);
    expect(apiRequests()).toEqual([]);
  });

  it('the service key is checked first: without it, any method is 401', async () => {
    const res = await call('TRACE', '/v1/starship/api/v1/echo', {});
    expect(res.status).toBe(401);
    expect(apiRequests()).toEqual([]);
  });

  it('CONNECT, which Node hands to the server rather than the app, gets the same 405 and the connection is closed', async () => {
    for (const target of ['/v1/starship/api/v1/echo', 'api-playground.starshiprewards.com:443']) {
      const answer = await raw(`CONNECT ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${serviceKeys.orders}\r\n\r\n`);
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
      expect(head).toContain(`\r\nAllow: ${allowHeader}\r\n`);
      expect(head).toContain('\r\nConnection: close');
      expect(JSON.parse(body)).toMatchObject({ status: 405, code: 'method_not_allowed' });
    }
    expect(apiRequests()).toEqual([]);
    await stillServing();
  });

  it('a method Node does not know (or lowercase) gets Node’s own 400 and a closed connection; nothing reaches Starship', async () => {
    for (const method of ['FOO', 'get', 'BREW', 'PROPFIND2']) {
      const answer = await raw(
        `${method} /v1/starship/api/v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${serviceKeys.orders}\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    }
    expect(apiRequests()).toEqual([]);
    await stillServing();
  });
});
