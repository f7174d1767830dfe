import { readFileSync } from 'node:fs';
import type { BenjiMode } from '../upstream/benji/benji-modes.js';
import { envSchema, secretVariables, type Env } from './env-schema.js';
import { tracingConfig, type TracingConfig } from './tracing-env.js';

export interface Config {
  readonly http: {
    readonly host: string;
    readonly publicPort: number;
    readonly internalPort: number;
    /** A hop count or a comma list of addresses/subnets; never `true` (see env-schema.ts). */
    readonly trustProxy: number | string | undefined;
    readonly corsOrigins: readonly string[];
    readonly shutdownTimeoutMs: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly publicMaxConnections: number;
    readonly internalMaxConnections: number;
  };
  readonly logLevel: Env['LOG_LEVEL'];
  /** Shared state for every replica; absent: process memory, one replica. */
  readonly redis: RedisConfig | undefined;
  readonly benji: {
    readonly baseUrl: string;
    /** Benji's auth service (exchange and refresh of user tokens), another origin than the API. */
    readonly authBaseUrl: string;
    readonly apiKey: string;
    readonly partnershipId: string;
    readonly timeoutMs: number;
    /** The partner API's path prefixes services may reach (`/auth` never). */
    readonly proxyAllow: readonly string[];
    /** Linked users' Benji tokens: refreshed this long before expiry; a link lasts this long after its last exchange or refresh. */
    readonly links: { readonly refreshBeforeS: number; readonly ttlDays: number };
    /** What a frontend may ask for in a connect token. */
    readonly connectPolicy: {
      readonly displayName: string | undefined;
      readonly allowedModes: readonly BenjiMode[];
      readonly maxTransferAmount: number | undefined;
    };
  };
  readonly frontendAuth: FrontendAuthConfig;
  readonly connectTokenRateLimit: number;
  readonly starship: {
    readonly baseUrl: string;
    readonly timeoutMs: number;
    readonly proxyAllow: readonly string[];
    readonly auth: StarshipAuthConfig;
  };
  readonly internalAuth: {
    readonly keys: readonly { readonly caller: string; readonly key: string }[];
    readonly adminCallers: readonly string[];
  };
  readonly webhooks: WebhooksConfig;
  /** OpenTelemetry tracing; absent: off, and no SDK is loaded. */
  readonly tracing: TracingConfig | undefined;
}

/** Receiving the upstreams' webhooks, and delivering them to an internal endpoint. */
export interface WebhooksConfig {
  /** A provider's route exists only when its secrets are set: the current one, and the previous during a rotation. */
  readonly secrets: { readonly benji: readonly string[]; readonly starship: readonly string[] };
  readonly toleranceS: number;
  /** Unset: services read the stream themselves. */
  readonly forward: { readonly url: string; readonly secret: Buffer } | undefined;
  readonly maxAttempts: number;
  readonly streamMaxLen: number;
}

export interface RedisConfig {
  readonly connection: RedisConnectionConfig;
  /**
   * REDIS_KEY_PREFIX as one hash tag (`bff:` → `{bff:}`) unless it holds one: every key then lives in
   * one cluster slot, so every script and multi-key step works in cluster mode too.
   */
  readonly keyPrefix: string;
  /** AES-256-GCM key for secrets at rest in Redis. */
  readonly encryptionKey: Buffer;
}

/** One Redis (a URL), a Sentinel-managed primary, or a cluster: exactly one of the three is configured. */
export type RedisConnectionConfig =
  | { readonly kind: 'url'; readonly url: string }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly { readonly host: string; readonly port: number }[];
      readonly name: string;
      readonly sentinelPassword: string | undefined;
      readonly password: string | undefined;
      readonly tls: boolean;
    }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly { readonly host: string; readonly port: number }[];
      readonly password: string | undefined;
      readonly tls: boolean;
    };

/**
 * How the broker authenticates to Starship: a session it logs in to and refreshes, or the account's
 * API key and secret on every call (HMAC-signed when the credential has a signing secret).
 */
export type StarshipAuthConfig =
  | { readonly kind: 'session'; readonly username: string; readonly password: string; readonly refreshBeforeS: number }
  | { readonly kind: 'api-key'; readonly apiKey: string; readonly apiSecret: string; readonly signingSecret: string | undefined };

export type FrontendAuthConfig =
  | { readonly mode: 'none' }
  | {
      readonly mode: 'jwt';
      readonly secret: string | undefined;
      readonly jwksUrl: string | undefined;
      readonly issuer: string | undefined;
      readonly audience: string | undefined;
      readonly userClaim: string;
      /** Longest lifetime a user token may claim: `exp` at most this long after `iat` (or now). */
      readonly maxAgeS: number;
    };

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

type RawEnv = Record<string, string | undefined>;

export interface LoadOptions {
  readFile?: (path: string) => string;
  /** Production keys are at least 24 characters; only the demo's entry point asks for less. */
  minServiceKeyLength?: number;
}

/**
 * Parses the environment once. Every problem is collected and named by its variable, and an entry
 * of a list by its position; values are never echoed, so secrets cannot leak into start-up output.
 */
export function loadConfig(env: RawEnv, options: LoadOptions = {}): ConfigResult {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const problems: string[] = [];
  const input = withSecretFiles(withoutEmpty(env), readFile, problems);

  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? 'environment');
      const entry = typeof issue.path[1] === 'number' ? `entry ${issue.path[1] + 1}: ` : '';
      problems.push(`${name}: ${entry}${issue.code === 'invalid_type' && input[name] === undefined ? 'is required' : issue.message}`);
    }
  }
  // Cross-variable rules read each field on its own, so they are reported even when another fails.
  const field = <K extends keyof Env>(name: K): Env[K] | undefined => {
    const result = envSchema.shape[name].safeParse(input[name]);
    return result.success ? (result.data as Env[K]) : undefined;
  };
  if ((input.FRONTEND_AUTH ?? 'jwt') === 'jwt' && input.FRONTEND_JWT_SECRET === undefined && input.FRONTEND_JWKS_URL === undefined) {
    problems.push('FRONTEND_JWT_SECRET: FRONTEND_JWT_SECRET or FRONTEND_JWKS_URL is required when FRONTEND_AUTH=jwt');
  }
  if (input.WEBHOOK_FORWARD_URL !== undefined && input.WEBHOOK_FORWARD_SECRET === undefined) {
    problems.push('WEBHOOK_FORWARD_SECRET: is required with WEBHOOK_FORWARD_URL (forwarded deliveries are signed)');
  }
  if (input.WEBHOOK_FORWARD_URL === undefined && input.WEBHOOK_FORWARD_SECRET !== undefined) {
    problems.push('WEBHOOK_FORWARD_URL: is required with WEBHOOK_FORWARD_SECRET (nothing is forwarded without it)');
  }
  problems.push(...redisProblems(input));
  const [publicPort, internalPort] = [field('PORT'), field('INTERNAL_PORT')];
  if (publicPort !== undefined && publicPort !== 0 && publicPort === internalPort) {
    problems.push('INTERNAL_PORT: must differ from PORT (each door has its own port)');
  }
  const [headersMs, requestMs] = [field('HTTP_HEADERS_TIMEOUT_MS'), field('HTTP_REQUEST_TIMEOUT_MS')];
  if (headersMs !== undefined && requestMs !== undefined && headersMs > requestMs) {
    // Node refuses to start a server whose headers may take longer than the whole request.
    problems.push('HTTP_HEADERS_TIMEOUT_MS: must not be more than HTTP_REQUEST_TIMEOUT_MS');
  }
  problems.push(...starshipAuthProblems(input, field('STARSHIP_BASE_URL')));
  const serviceKeys = field('INTERNAL_API_KEYS');
  if (serviceKeys !== undefined) {
    problems.push(...callerProblems(serviceKeys, field('INTERNAL_ADMIN_CALLERS') ?? [], options.minServiceKeyLength ?? 24));
  }
  if (!parsed.success || problems.length > 0) return { ok: false, problems: withoutSecretValues(problems, input) };
  return { ok: true, config: deepFreeze(toConfig(parsed.data)) };
}

function toConfig(env: Env): Config {
  return {
    http: {
      host: env.HOST,
      publicPort: env.PORT,
      internalPort: env.INTERNAL_PORT,
      trustProxy: env.TRUST_PROXY,
      corsOrigins: env.CORS_ORIGINS,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: env.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      publicMaxConnections: env.PUBLIC_MAX_CONNECTIONS,
      internalMaxConnections: env.INTERNAL_MAX_CONNECTIONS,
    },
    logLevel: env.LOG_LEVEL,
    redis: redisConfig(env),
    benji: {
      baseUrl: env.BENJI_BASE_URL,
      authBaseUrl: env.BENJI_AUTH_BASE_URL,
      apiKey: env.BENJI_API_KEY,
      partnershipId: env.BENJI_PARTNERSHIP_ID,
      timeoutMs: env.BENJI_TIMEOUT_MS,
      proxyAllow: env.BENJI_PROXY_ALLOW,
      links: { refreshBeforeS: env.BENJI_USER_REFRESH_BEFORE_S, ttlDays: env.BENJI_LINK_TTL_DAYS },
      connectPolicy: {
        displayName: env.BENJI_DISPLAY_NAME,
        allowedModes: env.BENJI_ALLOWED_MODES,
        maxTransferAmount: env.BENJI_MAX_TRANSFER_AMOUNT,
      },
    },
    frontendAuth:
      env.FRONTEND_AUTH === 'none'
        ? { mode: 'none' }
        : {
            mode: 'jwt',
            secret: env.FRONTEND_JWT_SECRET,
            jwksUrl: env.FRONTEND_JWKS_URL,
            issuer: env.FRONTEND_JWT_ISSUER,
            audience: env.FRONTEND_JWT_AUDIENCE,
            userClaim: env.FRONTEND_USER_CLAIM,
            maxAgeS: env.FRONTEND_JWT_MAX_AGE_S,
          },
    connectTokenRateLimit: env.CONNECT_TOKEN_RATE_LIMIT,
    starship: {
      baseUrl: env.STARSHIP_BASE_URL,
      timeoutMs: env.STARSHIP_TIMEOUT_MS,
      proxyAllow: env.STARSHIP_PROXY_ALLOW,
      // The variables each kind needs are there: starshipAuthProblems refused the config otherwise.
      auth:
        env.STARSHIP_AUTH === 'api-key'
          ? {
              kind: 'api-key',
              apiKey: env.STARSHIP_API_KEY ?? '',
              apiSecret: env.STARSHIP_API_SECRET ?? '',
              signingSecret: env.STARSHIP_SIGNING_SECRET,
            }
          : {
              kind: 'session',
              username: env.STARSHIP_USERNAME ?? '',
              password: env.STARSHIP_PASSWORD ?? '',
              refreshBeforeS: env.STARSHIP_REFRESH_BEFORE_S,
            },
    },
    internalAuth: { keys: env.INTERNAL_API_KEYS, adminCallers: env.INTERNAL_ADMIN_CALLERS },
    webhooks: {
      secrets: { benji: env.BENJI_WEBHOOK_SALT ?? [], starship: env.STARSHIP_WEBHOOK_SECRET ?? [] },
      toleranceS: env.WEBHOOK_TOLERANCE_S,
      // The secret is required with the URL (checked in loadConfig).
      forward:
        env.WEBHOOK_FORWARD_URL === undefined || env.WEBHOOK_FORWARD_SECRET === undefined
          ? undefined
          : { url: env.WEBHOOK_FORWARD_URL, secret: env.WEBHOOK_FORWARD_SECRET },
      maxAttempts: env.WEBHOOK_MAX_ATTEMPTS,
      streamMaxLen: env.WEBHOOK_STREAM_MAXLEN,
    },
    tracing: tracingConfig(env),
  };
}

/** The one Redis connection configured, or undefined (checked by redisProblems). */
function redisConfig(env: Env): RedisConfig | undefined {
  if (env.TOKEN_ENCRYPTION_KEY === undefined) return undefined;
  let connection: RedisConnectionConfig;
  if (env.REDIS_URL !== undefined) connection = { kind: 'url', url: env.REDIS_URL };
  else if (env.REDIS_SENTINELS !== undefined)
    connection = {
      kind: 'sentinel',
      sentinels: env.REDIS_SENTINELS,
      name: env.REDIS_SENTINEL_NAME ?? '',
      sentinelPassword: env.REDIS_SENTINEL_PASSWORD,
      password: env.REDIS_PASSWORD,
      tls: env.REDIS_TLS,
    };
  else if (env.REDIS_CLUSTER_NODES !== undefined)
    connection = { kind: 'cluster', nodes: env.REDIS_CLUSTER_NODES, password: env.REDIS_PASSWORD, tls: env.REDIS_TLS };
  else return undefined;
  const prefix = env.REDIS_KEY_PREFIX;
  return { connection, keyPrefix: hasHashTag(prefix) ? prefix : `{${prefix}}`, encryptionKey: env.TOKEN_ENCRYPTION_KEY };
}

/** Redis's own rule: the first `{`, then the next `}`, with something between them. */
function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  const close = open === -1 ? -1 : prefix.indexOf('}', open + 1);
  return close > open + 1;
}

const redisModes = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const;

/** Exactly one way to reach Redis, with what it needs, and nothing that belongs to another. */
function redisProblems(input: Record<string, string>): string[] {
  const problems: string[] = [];
  const set = redisModes.filter((name) => input[name] !== undefined);
  if (set.length > 1) problems.push(`${set[1]}: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES`);
  if (set.length > 0 && input.TOKEN_ENCRYPTION_KEY === undefined) {
    problems.push(`TOKEN_ENCRYPTION_KEY: is required when ${set[0]} is set (tokens are stored encrypted)`);
  }
  if (input.REDIS_SENTINELS !== undefined && input.REDIS_SENTINEL_NAME === undefined) {
    problems.push('REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS (the name of the monitored primary)');
  }
  const sentinelOnly = ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'].filter((name) => input[name] !== undefined);
  if (input.REDIS_SENTINELS === undefined) for (const name of sentinelOnly) problems.push(`${name}: belongs with REDIS_SENTINELS`);
  if (input.REDIS_URL !== undefined) {
    for (const name of ['REDIS_PASSWORD', 'REDIS_TLS'].filter((other) => input[other] !== undefined)) {
      problems.push(`${name}: with REDIS_URL, put it in the URL (redis://:password@host, rediss:// for TLS)`);
    }
  }
  return problems;
}

const starshipVariables = {
  session: ['STARSHIP_USERNAME', 'STARSHIP_PASSWORD'],
  'api-key': ['STARSHIP_API_KEY', 'STARSHIP_API_SECRET'],
} as const;
const starshipOrigins = { production: 'https://api.starshiprewards.com', playground: 'https://api-playground.starshiprewards.com' };

/**
 * Each STARSHIP_AUTH needs its own variables and refuses the other's, so a half-migrated config
 * fails at start instead of running on credentials nobody meant. A test key with the production
 * origin, or a live key with the playground, is refused too (Starship's docs advise failing such a
 * deploy); other key shapes and origins are accepted.
 */
function starshipAuthProblems(input: Record<string, string>, baseUrl: string | undefined): string[] {
  const kind = input.STARSHIP_AUTH === 'api-key' ? 'api-key' : 'session';
  const other = kind === 'api-key' ? 'session' : 'api-key';
  const problems: string[] = [];
  for (const name of starshipVariables[kind]) {
    if (input[name] === undefined) problems.push(`${name}: is required with STARSHIP_AUTH=${kind}`);
  }
  const foreign = kind === 'session' ? [...starshipVariables['api-key'], 'STARSHIP_SIGNING_SECRET'] : starshipVariables.session;
  for (const name of foreign) {
    if (input[name] !== undefined) problems.push(`${name}: belongs to STARSHIP_AUTH=${other}; unset it with STARSHIP_AUTH=${kind}`);
  }
  const key = input.STARSHIP_API_KEY;
  if (kind === 'api-key' && key !== undefined && baseUrl !== undefined) {
    const origin = new URL(baseUrl).origin;
    if (key.startsWith('sk_test_') && origin === starshipOrigins.production)
      problems.push(`STARSHIP_API_KEY: a sandbox key (sk_test_…) cannot be used with the production STARSHIP_BASE_URL`);
    if (key.startsWith('sk_live_') && origin === starshipOrigins.playground)
      problems.push(`STARSHIP_API_KEY: a production key (sk_live_…) cannot be used with the playground STARSHIP_BASE_URL`);
  }
  return problems;
}

/** The longest service key, in bytes: the internal door compares keys as blocks of a fixed size (internal-auth.ts). */
export const maxServiceKeyBytes = 512;

/** Entries are named by position: what sits where a caller name belongs may be a misplaced key. */
function callerProblems(keys: Env['INTERNAL_API_KEYS'], adminCallers: Env['INTERNAL_ADMIN_CALLERS'], minKeyLength: number): string[] {
  const problems: string[] = [];
  keys.forEach(({ caller, key }, index) => {
    if (Buffer.byteLength(key) > maxServiceKeyBytes) {
      problems.push(`INTERNAL_API_KEYS: entry ${index + 1}: the key must be at most ${maxServiceKeyBytes} bytes`);
      return;
    }
    if (key.length >= minKeyLength) return;
    // `<key>:orders` parses as a long "caller" with a short "key": say which way round the pair goes.
    const swapped = caller.length >= minKeyLength ? ' (the form is caller:key, name first)' : '';
    problems.push(`INTERNAL_API_KEYS: entry ${index + 1}: the key must be at least ${minKeyLength} characters${swapped}`);
  });
  const callers = keys.map((entry) => entry.caller);
  const firstTwice = (values: readonly string[]) => {
    const second = values.findIndex((value, index) => values.indexOf(value) !== index);
    return second === -1 ? undefined : [values.indexOf(values[second] ?? '') + 1, second + 1];
  };
  const sameCaller = firstTwice(callers);
  if (sameCaller !== undefined) problems.push(`INTERNAL_API_KEYS: entries ${sameCaller[0]} and ${sameCaller[1]} name the same caller`);
  const sameKey = firstTwice(keys.map((entry) => entry.key));
  if (sameKey !== undefined) problems.push(`INTERNAL_API_KEYS: entries ${sameKey[0]} and ${sameKey[1]} share one key`);
  adminCallers.forEach((admin, index) => {
    if (!callers.includes(admin)) problems.push(`INTERNAL_ADMIN_CALLERS: entry ${index + 1} is not a caller in INTERNAL_API_KEYS`);
  });
  return problems;
}

/**
 * The messages above never interpolate a value; this is the second line of defence (as the
 * logger's redaction is for log lines), so a future message that does cannot print a secret.
 */
function withoutSecretValues(problems: string[], input: Record<string, string>): string[] {
  const values = secretVariables
    .flatMap((name) => {
      const value = input[name];
      return value === undefined ? [] : [value, ...value.split(/[,:]/)];
    })
    .map((value) => value.trim())
    .filter((value) => value.length >= 8)
    .sort((a, b) => b.length - a.length);
  return problems.map((problem) => values.reduce((text, value) => text.split(value).join('[redacted]'), problem));
}

/** `FOO=` in a .env file means "not set", not "set to the empty string". */
function withoutEmpty(env: RawEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') out[name] = value;
  }
  return out;
}

function withSecretFiles(env: Record<string, string>, readFile: (path: string) => string, problems: string[]): Record<string, string> {
  const out = { ...env };
  for (const name of secretVariables) {
    const path = env[`${name}_FILE`];
    if (path === undefined) continue;
    if (env[name] !== undefined) {
      problems.push(`${name}: set either ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      // Files written by editors and secret managers often end with a newline that is not part of the secret.
      const value = readFile(path).replace(/\r?\n$/, '');
      if (value.trim() !== '') out[name] = value;
    } catch (error) {
      // Not the path: a value pasted into NAME_FILE by mistake would be the secret itself.
      problems.push(`${name}_FILE: the file cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  // Buffers (keys) cannot be frozen; nothing hands them out for writing.
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
