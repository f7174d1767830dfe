import { isIP } from 'node:net';
import proxyAddr from 'proxy-addr';
import { z } from 'zod';
import { benjiModes } from '../upstream/benji/benji-modes.js';
import { tracingEnv } from './tracing-env.js';

/**
 * Every environment variable the broker reads, keyed by its own name so that a problem names the
 * variable it is about. Values arrive as strings (empty counts as unset); each entry turns one into
 * its typed value. The README and .env.example list exactly these keys.
 */

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== ''),
);

const httpUrl = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).transform((value) => value.replace(/\/+$/, ''));

const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

const callerName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'caller names are letters, digits, . _ - (up to 64)');

/**
 * `caller:key`. A problem names the entry by its position, never by its content: a key typed where
 * the caller belongs (`<key>:orders`) must not be printed as a "caller". Key length is checked in
 * load-config.ts.
 */
const callerKey = z.string().transform((item, ctx) => {
  const colon = item.indexOf(':');
  const caller = item.slice(0, colon);
  const key = item.slice(colon + 1);
  if (colon < 1 || !callerName.safeParse(caller).success || key === '') {
    ctx.addIssue({ code: 'custom', message: 'must be caller:key with a plain caller name (letters, digits, . _ -)' });
    return z.NEVER;
  }
  return { caller, key };
});

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const maxTrustedHops = 5;

/**
 * One TRUST_PROXY entry: an address, a subnet or a proxy-addr name, as proxy-addr compiles it. A
 * subnet wider than /8 (IPv4) or /7 (IPv6, the unique-local range) is refused: trusting half the
 * internet (0.0.0.0/1, ::/1) is `true` spelled out. A number inside a list is refused too: proxy-addr
 * would read `1` as the address 0.0.0.1, not as a hop count.
 */
function trustedAddressProblem(entry: string): string | undefined {
  const what = 'must be an IP address, a subnet (10.0.0.0/8) or loopback, linklocal, uniquelocal; a hop count stands alone';
  if (/^\d+$/.test(entry)) return what;
  try {
    proxyAddr.compile(entry);
  } catch {
    return what;
  }
  const [address = '', mask] = entry.split('/');
  if (mask === undefined) return undefined;
  const bits = mask.includes('.')
    ? mask.split('.').reduce((sum, octet) => sum + (Number(octet) >>> 0).toString(2).replace(/0/g, '').length, 0)
    : Number(mask);
  const widest = isIP(address) === 6 ? 7 : 8;
  return bits < widest
    ? `a subnet wider than /${widest} trusts nearly anyone to say who the client is; name your proxies' own subnets`
    : undefined;
}

/**
 * Which hops of X-Forwarded-For are our own proxies. `true` is refused: it would trust whatever a
 * client sends, so on a directly reachable port any caller could pick its own IP and dodge the
 * anonymous rate limit. Addresses are compiled here with proxy-addr, as Express does at start, so
 * a bad one is reported by name instead of crashing the start. `false` means trust nothing.
 */
const trustProxy = z
  .string()
  .trim()
  .transform((value, ctx): number | string | undefined => {
    if (value === 'false') return undefined;
    if (value === 'true') {
      ctx.addIssue({
        code: 'custom',
        message:
          'true would trust any X-Forwarded-For a client sends; give the number of proxies in front of the broker (e.g. 1) or their addresses/subnets (e.g. 10.0.0.0/8)',
      });
      return z.NEVER;
    }
    if (/^\d+$/.test(value)) {
      const hops = Number(value);
      if (hops <= maxTrustedHops) return hops;
      ctx.addIssue({
        code: 'custom',
        message: `a hop count must be at most ${maxTrustedHops}: each hop trusted beyond the real proxies lets a client choose its own address`,
      });
      return z.NEVER;
    }
    const entries = value.split(',').map((entry) => entry.trim());
    entries.forEach((entry, index) => {
      const problem = trustedAddressProblem(entry);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [index], message: problem });
    });
    return entries.join(', ');
  });

/** Path prefixes a proxy may reach: plain paths, never the upstream's `/auth` or the whole API. */
const proxyAllow = list.pipe(
  z
    .array(
      z
        .string()
        .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'each prefix must be a plain path starting with /')
        .refine((prefix) => !/^\/auth(\/|$)/i.test(prefix) && prefix !== '/', 'must not open /auth or the whole API'),
    )
    .min(1, 'must name at least one prefix'),
);

/** `host:port,…`: Redis Sentinels or cluster nodes. */
const hostPorts = list.pipe(
  z
    .array(
      z
        .string()
        .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'each entry must be host:port')
        .transform((entry) => {
          const at = entry.lastIndexOf(':');
          return { host: entry.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(entry.slice(at + 1)) };
        })
        .refine(({ port }) => port > 0 && port < 65536, 'the port must be 1–65535'),
    )
    .min(1, 'must name at least one host:port'),
);

/** Up to two, comma-separated: the current one and, during a rotation, the one before. */
const webhookSecrets = list
  .pipe(
    z
      .array(z.string().min(16, 'each secret must be at least 16 characters'))
      .min(1, 'must name a secret')
      .max(2, 'at most two (the current one and, during a rotation, the previous one)'),
  )
  .optional();

/** Node resolves a host name only when it listens; an address is checked now, by name. */
const listenHost = z
  .string()
  .trim()
  .refine(
    (host) => isIP(host) !== 0 || host === 'localhost',
    'must be an IP address to listen on (0.0.0.0 or :: for every interface, 127.0.0.1 for this machine only) or localhost',
  );

export const envSchema = z.object({
  HOST: listenHost.default('0.0.0.0'),
  PORT: int(0, 65535).default(8080),
  INTERNAL_PORT: int(0, 65535).default(8081),
  TRUST_PROXY: trustProxy.optional(),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  HTTP_HEADERS_TIMEOUT_MS: int(100, 600_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(1_000, 3_600_000).default(65_000),
  PUBLIC_MAX_CONNECTIONS: int(1, 1_000_000).default(2_000),
  INTERNAL_MAX_CONNECTIONS: int(1, 1_000_000).default(500),
  LOG_LEVEL: z.enum(logLevels).default('info'),

  BENJI_BASE_URL: httpUrl.default('https://api-staging.withbenji.com'),
  BENJI_API_KEY: text(512),
  BENJI_PARTNERSHIP_ID: text(64),
  BENJI_DISPLAY_NAME: text(100).optional(),
  BENJI_ALLOWED_MODES: list
    .pipe(z.array(z.enum(benjiModes, { message: `each mode must be ${benjiModes.join(', ')}` })).min(1, 'must name at least one mode'))
    .default([...benjiModes]),
  BENJI_MAX_TRANSFER_AMOUNT: int(1, Number.MAX_SAFE_INTEGER).optional(),
  BENJI_TIMEOUT_MS: int(100, 120_000).default(10_000),
  BENJI_AUTH_BASE_URL: httpUrl.default('https://authservice-staging.withbenji.com'),
  BENJI_PROXY_ALLOW: proxyAllow.default(['/users/', '/transactions/', '/partnerships/']),
  BENJI_USER_REFRESH_BEFORE_S: int(0, 90 * 86_400).default(86_400),
  BENJI_LINK_TTL_DAYS: int(1, 3_650).default(180),

  FRONTEND_AUTH: z.enum(['jwt', 'none'], { message: 'must be jwt or none' }).default('jwt'),
  FRONTEND_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  FRONTEND_JWKS_URL: httpUrl.optional(),
  FRONTEND_JWT_ISSUER: text(512).optional(),
  FRONTEND_JWT_AUDIENCE: text(512).optional(),
  FRONTEND_USER_CLAIM: text(128).default('sub'),
  FRONTEND_JWT_MAX_AGE_S: int(60, 31_536_000).default(86_400),
  CORS_ORIGINS: list
    .pipe(z.array(z.url({ message: 'each origin must be a URL such as https://app.example.com' }).transform((o) => new URL(o).origin)))
    .default([]),
  CONNECT_TOKEN_RATE_LIMIT: int(1, 1_000_000).default(30),

  REDIS_URL: z.url({ protocol: /^rediss?$/, message: 'must be a redis:// or rediss:// URL' }).optional(),
  REDIS_SENTINELS: hostPorts.optional(),
  REDIS_SENTINEL_NAME: text(128).optional(),
  REDIS_SENTINEL_PASSWORD: z.string().min(1).max(1024).optional(),
  REDIS_CLUSTER_NODES: hostPorts.optional(),
  // The data nodes' password with Sentinel or Cluster (a URL carries its own).
  REDIS_PASSWORD: z.string().min(1).max(1024).optional(),
  REDIS_TLS: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .transform((value) => value === 'true')
    .default(false),
  REDIS_KEY_PREFIX: z.string().min(1).max(64).default('bff:'),
  TOKEN_ENCRYPTION_KEY: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9+/_-]+={0,2}$/, 'must be base64')
    .transform((value) => Buffer.from(value, 'base64'))
    .refine((key) => key.length === 32, 'must be 32 random bytes, base64-encoded (openssl rand -base64 32)')
    .optional(),

  STARSHIP_BASE_URL: httpUrl.default('https://api-playground.starshiprewards.com'),
  STARSHIP_AUTH: z.enum(['session', 'api-key'], { message: 'must be session or api-key' }).default('session'),
  // Required by STARSHIP_AUTH (checked in load-config.ts): username and password for a session,
  // key and secret for api-key.
  STARSHIP_USERNAME: text(256).optional(),
  STARSHIP_PASSWORD: z.string().min(1, 'must not be empty').max(1024).optional(),
  STARSHIP_API_KEY: text(512).optional(),
  STARSHIP_API_SECRET: text(1024).optional(),
  STARSHIP_SIGNING_SECRET: text(1024).optional(),
  STARSHIP_TIMEOUT_MS: int(100, 300_000).default(15_000),
  STARSHIP_REFRESH_BEFORE_S: int(0, 86_400).default(300),
  STARSHIP_PROXY_ALLOW: proxyAllow.default(['/api/v1/', '/status']),
  INTERNAL_API_KEYS: list.pipe(z.array(callerKey).min(1, 'must name at least one caller:key')),

  BENJI_WEBHOOK_SALT: webhookSecrets,
  STARSHIP_WEBHOOK_SECRET: webhookSecrets,
  WEBHOOK_TOLERANCE_S: int(1, 3_600).default(300),
  WEBHOOK_FORWARD_URL: httpUrl.optional(),
  WEBHOOK_FORWARD_SECRET: z
    .string()
    .trim()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be whsec_ followed by base64 (echo whsec_$(openssl rand -base64 32))')
    .transform((value) => Buffer.from(value.slice('whsec_'.length), 'base64'))
    .refine((key) => key.length >= 24, 'must hold at least 24 random bytes (echo whsec_$(openssl rand -base64 32))')
    .optional(),
  WEBHOOK_MAX_ATTEMPTS: int(1, 100).default(12),
  WEBHOOK_STREAM_MAXLEN: int(1_000, 100_000_000).default(100_000),
  INTERNAL_ADMIN_CALLERS: list.pipe(z.array(callerName)).default([]),

  ...tracingEnv,
});

export type Env = z.output<typeof envSchema>;

/** Variables that may also be given as NAME_FILE (a path whose content is the value). */
export const secretVariables = [
  'BENJI_API_KEY',
  'FRONTEND_JWT_SECRET',
  'REDIS_URL',
  'REDIS_SENTINEL_PASSWORD',
  'REDIS_PASSWORD',
  'TOKEN_ENCRYPTION_KEY',
  'STARSHIP_USERNAME',
  'STARSHIP_PASSWORD',
  'STARSHIP_API_KEY',
  'STARSHIP_API_SECRET',
  'STARSHIP_SIGNING_SECRET',
  'INTERNAL_API_KEYS',
  'BENJI_WEBHOOK_SALT',
  'STARSHIP_WEBHOOK_SECRET',
  'WEBHOOK_FORWARD_SECRET',
] as const;
