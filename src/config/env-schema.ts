import { z } from 'zod';

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

const httpUrl = z
  .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
  .transform((value) => value.replace(/\/+$/, ''));

const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

export const benjiModes = ['connect', 'transfer', 'redeem'] as const;
export type BenjiModeName = (typeof benjiModes)[number];

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Express's `trust proxy` accepts a boolean, a hop count, or a list of addresses/subnets. */
const trustProxy = z
  .string()
  .trim()
  .transform((value): boolean | number | string => {
    if (value === 'true') return true;
    if (value === 'false') return false;
    if (/^\d+$/.test(value)) return Number(value);
    return value;
  });

export const envSchema = z.object({
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(8080),
  INTERNAL_PORT: int(0, 65535).default(8081),
  TRUST_PROXY: trustProxy.optional(),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  LOG_LEVEL: z.enum(logLevels).default('info'),

  BENJI_BASE_URL: httpUrl.default('https://api-staging.withbenji.com'),
  BENJI_API_KEY: text(512),
  BENJI_PARTNERSHIP_ID: text(64),
  BENJI_DISPLAY_NAME: text(100).optional(),
  BENJI_ALLOWED_MODES: list
    .pipe(z.array(z.enum(benjiModes, { message: 'each mode must be connect, transfer or redeem' })).min(1, 'must name at least one mode'))
    .default([...benjiModes]),
  BENJI_MAX_TRANSFER_AMOUNT: int(1, Number.MAX_SAFE_INTEGER).optional(),
  BENJI_TIMEOUT_MS: int(100, 120_000).default(10_000),

  FRONTEND_AUTH: z.enum(['jwt', 'none'], { message: 'must be jwt or none' }).default('jwt'),
  FRONTEND_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  FRONTEND_JWKS_URL: httpUrl.optional(),
  FRONTEND_JWT_ISSUER: text(512).optional(),
  FRONTEND_JWT_AUDIENCE: text(512).optional(),
  FRONTEND_USER_CLAIM: text(128).default('sub'),
  CORS_ORIGINS: list
    .pipe(z.array(z.url({ message: 'each origin must be a URL such as https://app.example.com' }).transform((o) => new URL(o).origin)))
    .default([]),
  CONNECT_TOKEN_RATE_LIMIT: int(1, 1_000_000).default(30),

  REDIS_URL: z.url({ protocol: /^rediss?$/, message: 'must be a redis:// or rediss:// URL' }).optional(),
  REDIS_KEY_PREFIX: z.string().min(1).max(64).default('bff:'),
});

export type Env = z.output<typeof envSchema>;

/** Variables that may also be given as NAME_FILE (a path whose content is the value). */
export const secretVariables = ['BENJI_API_KEY', 'FRONTEND_JWT_SECRET', 'REDIS_URL'] as const;
