import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { readBody, send } from './http-kit.js';

/**
 * The demo's example web app, on an origin of its own, and the identity provider it signs users in
 * with. The page (sandbox/web/) is what a frontend developer would write against the broker; the
 * identity provider is the part a real app already has: it signs users in and issues them JWTs
 * (ES256, an hour long) from a key pair made at start, published as a JWKS for the broker.
 *
 * - `GET /`, `/app.js`, `/style.css`: the page, under a CSP that lets it call only itself and the broker.
 * - `GET /config.json`: where the broker's public door is (`{brokerUrl}`).
 * - `POST /sign-in` `{"user":"alice"|"bob"}` → `{token}`: the demo users need no password.
 * - `GET /.well-known/jwks.json`: the public key, for the broker's `FRONTEND_JWKS_URL`.
 */
export const demoUsers = ['alice', 'bob'] as const;
export type DemoUser = (typeof demoUsers)[number];

export interface DemoWebAppOptions {
  /** The `aud` of every token it issues (the broker's `FRONTEND_JWT_AUDIENCE`). */
  audience: string;
  port?: number;
  host?: string;
}

export interface DemoWebApp {
  /** Where a browser on this machine opens the app. */
  readonly url: string;
  /** Every origin a browser on this machine may load the app from (for CORS and Benji's allowed origins). */
  readonly origins: readonly string[];
  /** Where the broker fetches the keys (the app's own address, reachable from the broker). */
  readonly jwksUrl: string;
  readonly issuer: string;
  readonly audience: string;
  /** Every user token it issued: none may reach a log. */
  readonly issuedTokens: readonly string[];
  /** The token a sign-in would return, for the demo's curl lines and for tests. */
  signIn(user: DemoUser): Promise<string>;
  /** The broker's public door, which the page calls; known once the broker listens. */
  setBrokerUrl(url: string): void;
  close(): Promise<void>;
}

const tokenLifetimeS = 3600;
const staticFiles: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

export async function startDemoWebApp(options: DemoWebAppOptions): Promise<DemoWebApp> {
  const host = options.host ?? '127.0.0.1';
  const files = new Map<string, Buffer>();
  // Read once at start: the files are fixed, and a missing one should stop the demo, not a page load.
  for (const { file } of Object.values(staticFiles)) files.set(file, await readFile(new URL(`./web/${file}`, import.meta.url)));
  const keys = await generateKeyPair('ES256');
  const kid = randomUUID();
  const jwks = { keys: [{ ...(await exportJWK(keys.publicKey)), kid, alg: 'ES256', use: 'sig' }] };
  const issuedTokens: string[] = [];
  let brokerUrl: string | undefined;
  let issuer = '';

  async function signIn(user: DemoUser): Promise<string> {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .setSubject(user)
      .setIssuer(issuer)
      .setAudience(options.audience)
      .setIssuedAt()
      .setExpirationTime(`${tokenLifetimeS}s`)
      .sign(keys.privateKey);
    issuedTokens.push(token);
    return token;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://web').pathname;
    const page = staticFiles[path];
    if ((req.method === 'GET' || req.method === 'HEAD') && page !== undefined) {
      res.writeHead(200, { 'content-type': page.type, ...pageHeaders(brokerUrl) });
      return void res.end(files.get(page.file));
    }
    // Browsers ask for an icon on their own; the page has none.
    if (path === '/favicon.ico') return void res.writeHead(204).end();
    if (req.method === 'GET' && path === '/config.json') {
      if (brokerUrl === undefined) return send(res, 503, { error: 'not_ready' });
      return send(res, 200, { brokerUrl }, { 'cache-control': 'no-store' });
    }
    if (req.method === 'GET' && path === '/.well-known/jwks.json') return send(res, 200, jwks);
    if (req.method === 'POST' && path === '/sign-in') {
      const user = (parseJson(text) as { user?: unknown } | undefined)?.user;
      if (!demoUsers.includes(user as DemoUser)) return send(res, 400, { error: 'unknown_user', message: 'Sign in as alice or bob.' });
      return send(res, 200, { token: await signIn(user as DemoUser) }, { 'cache-control': 'no-store' });
    }
    return send(res, 404, { error: 'not_found' });
  }

  const server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  // A browser on this machine reaches an app on loopback or every interface by either name.
  const local = host === '127.0.0.1' || host === '0.0.0.0' || host === 'localhost';
  const origins = local ? [`http://localhost:${port}`, `http://127.0.0.1:${port}`] : [`http://${host}:${port}`];
  const url = origins[0] as string;
  issuer = url;

  return {
    url,
    origins,
    jwksUrl: `http://${local ? '127.0.0.1' : host}:${port}/.well-known/jwks.json`,
    issuer,
    audience: options.audience,
    issuedTokens,
    signIn,
    setBrokerUrl(value) {
      brokerUrl = value.replace(/\/+$/, '');
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The page may run only its own files and call only itself and the broker; no other site may frame
 * it. The popup it opens keeps its `window.opener` (`same-origin-allow-popups`), which is how
 * Benji's page hands the exchange token back.
 */
function pageHeaders(brokerUrl: string | undefined): Record<string, string> {
  const broker = brokerUrl === undefined ? '' : ` ${new URL(brokerUrl).origin}`;
  return {
    'content-security-policy': [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      `connect-src 'self'${broker}`,
      "img-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'cross-origin-opener-policy': 'same-origin-allow-popups',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
