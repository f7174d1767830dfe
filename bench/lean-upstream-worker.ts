import { randomBytes, randomUUID } from 'node:crypto';
import { FAKE_STARSHIP_PRODUCTS } from '../sandbox/fake-starship.js';
import type { LeanStats } from './lean-upstreams.js';
import { createRawServer, response, type RawRequest } from './raw-http.js';

/**
 * One worker of bench/lean-upstreams.ts: both fakes, on the ports the primary chose (node:cluster
 * shares them between the workers). Starship accepts a Bearer token any worker issued (it starts
 * with the run's prefix: nothing is kept per token, so a worker can accept another's) or, for the
 * API-key runs, the configured key and secret with a signature.
 */
function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`bench/lean-upstream-worker.ts needs ${name}`);
  return value;
}

const send = process.send?.bind(process);
if (send === undefined) throw new Error('bench/lean-upstream-worker.ts is forked by bench/lean-upstreams.ts');

const login = { username: env('BENCH_STARSHIP_USERNAME'), password: env('BENCH_STARSHIP_PASSWORD') };
const apiKey = { key: env('BENCH_STARSHIP_API_KEY'), secret: env('BENCH_STARSHIP_API_SECRET') };
const benjiKey = env('BENCH_BENJI_API_KEY');
const accessTtlMs = Number(env('BENCH_ACCESS_TTL_S')) * 1000;

const bearerPrefix = `Bearer ${env('LEAN_TOKEN_PREFIX')}`;
const stats: LeanStats = {
  logins: 0,
  loginFailures: 0,
  refreshes: 0,
  refreshFailures: 0,
  refreshReuses: 0,
  apiCalls: 0,
  logouts: 0,
  largeBytes: 0,
};
const products = response({ status: 200, body: Buffer.from(JSON.stringify(FAKE_STARSHIP_PRODUCTS)) });
const unauthorized = response({
  status: 401,
  body: Buffer.from(JSON.stringify({ error: 'Unauthorized', message: 'Invalid or expired token' })),
});
const notFound = response({ status: 404, body: Buffer.from('{"error":"not_found"}') });
const unauthorizedPartner = response({ status: 401, body: Buffer.from('{"error":"unauthorized_partner"}') });

/**
 * The API-key runs: key, secret and a signature of the right form. The HMAC itself is checked by
 * the tests, against the sandbox fake; checked here too, it would take CPU from the target on this
 * shared machine that the Bearer runs, and a real Starship on its own hosts, do not take.
 */
const signature = /^t=\d+,v1=[0-9a-f]{64}$/;
const keyAndSecretSigned = (headers: RawRequest['headers']) =>
  headers['x-api-key'] === apiKey.key && headers['x-api-secret'] === apiKey.secret && signature.test(headers['x-signature'] ?? '');

// The proxied calls are answered with a response built once: the fakes must cost as little as they
// can, so that wrk against them alone outruns every target (run.ts checks).
const starship = createRawServer(({ method, url, headers, body }) => {
  if (method === 'GET' && url === '/api/v1/products') {
    stats.apiCalls++;
    const bearer = headers.authorization;
    const allowed = bearer !== undefined ? bearer.startsWith(bearerPrefix) : keyAndSecretSigned(headers);
    return allowed ? products : unauthorized;
  }
  if (method === 'POST' && url === '/auth/login') {
    let sent: { username?: unknown; password?: unknown } = {};
    try {
      sent = JSON.parse(body.toString('utf8')) as typeof sent;
    } catch {
      // counted as a failed login below
    }
    if (sent.username !== login.username || sent.password !== login.password) {
      stats.loginFailures++;
      return unauthorized;
    }
    stats.logins++;
    const token = `${bearerPrefix.slice('Bearer '.length)}${randomBytes(24).toString('hex')}`;
    const now = Date.now();
    return response({
      status: 200,
      body: Buffer.from(
        JSON.stringify({
          access_token: token,
          refresh_token: `rt_${randomBytes(24).toString('hex')}`,
          access_expires_at: new Date(now + accessTtlMs).toISOString(),
          refresh_expires_at: new Date(now + 3_600_000).toISOString(),
          client_id: 123456,
        }),
      ),
    });
  }
  return notFound;
});

const benji = createRawServer(({ method, url, headers }) => {
  if (method !== 'POST' || url !== '/auth/connect') return notFound;
  if (headers['x-api-key'] !== benjiKey) return unauthorizedPartner;
  return response({
    status: 200,
    body: Buffer.from(JSON.stringify({ code: 'ok', data: { token: randomUUID(), connect_url: 'https://connect.example/hosted' } })),
  });
});

const listen = (server: typeof starship, port: string) => new Promise<void>((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
await Promise.all([listen(starship, env('LEAN_STARSHIP_PORT')), listen(benji, env('LEAN_BENJI_PORT'))]);

process.on('message', (message: unknown) => {
  if (message === 'stats') send(stats);
});
process.on('disconnect', () => process.exit(0));
send('listening');
