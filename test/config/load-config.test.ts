import { describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/load-config.js';

const serviceKey = 'k'.repeat(24);
const required = {
  BENJI_API_KEY: 'key-123',
  BENJI_PARTNERSHIP_ID: '49',
  FRONTEND_JWT_SECRET: 'x'.repeat(32),
  STARSHIP_USERNAME: 'api-user',
  STARSHIP_PASSWORD: 'api-password',
  INTERNAL_API_KEYS: `orders:${serviceKey}`,
};
const encryptionKey = Buffer.alloc(32, 7).toString('base64');

function ok(env: Record<string, string | undefined>): Config {
  const result = loadConfig(env, {
    readFile: () => {
      throw Object.assign(new Error('no files in this test'), { code: 'ENOENT' });
    },
  });
  if (!result.ok) throw new Error(result.problems.join('; '));
  return result.config;
}

function problems(env: Record<string, string | undefined>, files: Record<string, string> = {}): string[] {
  const result = loadConfig(env, {
    readFile: (path) => {
      const content = files[path];
      if (content === undefined) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
      return content;
    },
  });
  if (result.ok) throw new Error('expected problems');
  return result.problems;
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = ok(required);
    expect(config.http).toEqual({
      host: '0.0.0.0',
      publicPort: 8080,
      internalPort: 8081,
      trustProxy: undefined,
      corsOrigins: [],
      shutdownTimeoutMs: 10_000,
    });
    expect(config.benji).toEqual({
      baseUrl: 'https://api-staging.withbenji.com',
      apiKey: 'key-123',
      partnershipId: '49',
      displayName: undefined,
      allowedModes: ['connect', 'transfer', 'redeem'],
      maxTransferAmount: undefined,
      timeoutMs: 10_000,
    });
    expect(config.frontendAuth).toEqual({
      mode: 'jwt',
      secret: 'x'.repeat(32),
      jwksUrl: undefined,
      issuer: undefined,
      audience: undefined,
      userClaim: 'sub',
      maxAgeS: 86_400,
    });
    expect(config.connectTokenRateLimit).toBe(30);
    expect(config.redis).toBeUndefined();
    expect(config.logLevel).toBe('info');
    expect(config.starship).toEqual({
      baseUrl: 'https://api-playground.starshiprewards.com',
      username: 'api-user',
      password: 'api-password',
      timeoutMs: 15_000,
      refreshBeforeS: 300,
      proxyAllow: ['/api/v1/', '/status'],
    });
    expect(config.internalAuth).toEqual({ keys: [{ caller: 'orders', key: serviceKey }], adminCallers: [] });
    expect(config.tokenEncryptionKey).toBeUndefined();
    expect(Object.isFrozen(config.benji)).toBe(true);
  });

  it('parses every kind of value', () => {
    const config = ok({
      ...required,
      PORT: '9000',
      BENJI_BASE_URL: 'https://api.withbenji.com/',
      BENJI_ALLOWED_MODES: ' connect , redeem ',
      BENJI_MAX_TRANSFER_AMOUNT: '5000',
      CORS_ORIGINS: 'https://app.example.com/, http://localhost:3000',
      TRUST_PROXY: '1',
      REDIS_URL: 'redis://cache:6379/2',
      REDIS_KEY_PREFIX: 'rewards:',
      TOKEN_ENCRYPTION_KEY: encryptionKey,
      FRONTEND_AUTH: 'none',
      STARSHIP_PROXY_ALLOW: '/api/v1/products,/status',
      INTERNAL_API_KEYS: `orders:${serviceKey}, ops:${'o'.repeat(30)}:with-colon`,
      INTERNAL_ADMIN_CALLERS: 'ops',
    });
    expect(config.tokenEncryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(config.starship.proxyAllow).toEqual(['/api/v1/products', '/status']);
    expect(config.internalAuth.keys).toEqual([
      { caller: 'orders', key: serviceKey },
      { caller: 'ops', key: `${'o'.repeat(30)}:with-colon` },
    ]);
    expect(config.internalAuth.adminCallers).toEqual(['ops']);
    expect(config.http.publicPort).toBe(9000);
    expect(config.benji.baseUrl).toBe('https://api.withbenji.com');
    expect(config.benji.allowedModes).toEqual(['connect', 'redeem']);
    expect(config.benji.maxTransferAmount).toBe(5000);
    expect(config.http.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:3000']);
    expect(config.http.trustProxy).toBe(1);
    expect(config.redis).toEqual({ url: 'redis://cache:6379/2', keyPrefix: 'rewards:' });
    expect(config.frontendAuth).toEqual({ mode: 'none' });
    expect(ok({ ...required, TRUST_PROXY: 'true' }).http.trustProxy).toBe(true);
    expect(ok({ ...required, TRUST_PROXY: 'loopback, 10.0.0.0/8' }).http.trustProxy).toBe('loopback, 10.0.0.0/8');
  });

  it('bounds the lifetime a user token may claim with FRONTEND_JWT_MAX_AGE_S', () => {
    expect(ok({ ...required, FRONTEND_JWT_MAX_AGE_S: '3600' }).frontendAuth).toMatchObject({ mode: 'jwt', maxAgeS: 3600 });
    expect(problems({ ...required, FRONTEND_JWT_MAX_AGE_S: '10' })).toEqual(['FRONTEND_JWT_MAX_AGE_S: must be at least 60']);
    expect(problems({ ...required, FRONTEND_JWT_MAX_AGE_S: '1d' })).toEqual(['FRONTEND_JWT_MAX_AGE_S: must be a whole number']);
  });

  it('treats empty values as unset, as a .env file with FOO= means', () => {
    const config = ok({ ...required, PORT: '', BENJI_DISPLAY_NAME: '  ', FRONTEND_JWKS_URL: '' });
    expect(config.http.publicPort).toBe(8080);
    expect(config.benji.displayName).toBeUndefined();
  });

  it('reports every problem at once, each naming its variable, never its value', () => {
    const found = problems({
      BENJI_API_KEY: 'very-secret-api-key',
      STARSHIP_PASSWORD: 'starship-secret-password',
      FRONTEND_JWT_SECRET: 'short-but-secret',
      PORT: '99999',
      BENJI_TIMEOUT_MS: 'soon',
      BENJI_ALLOWED_MODES: 'connect,teleport',
      LOG_LEVEL: 'loud',
      REDIS_URL: 'http://not-redis',
      CONNECT_TOKEN_RATE_LIMIT: '0',
    });
    const names = found.map((p) => p.split(':')[0]);
    expect(names).toEqual(
      expect.arrayContaining([
        'BENJI_PARTNERSHIP_ID',
        'STARSHIP_USERNAME',
        'INTERNAL_API_KEYS',
        'FRONTEND_JWT_SECRET',
        'PORT',
        'BENJI_TIMEOUT_MS',
        'BENJI_ALLOWED_MODES',
        'LOG_LEVEL',
        'REDIS_URL',
        'CONNECT_TOKEN_RATE_LIMIT',
      ]),
    );
    expect(found.join('\n')).not.toMatch(/very-secret-api-key|short-but-secret|starship-secret-password/);
  });

  it('checks internal callers and keys without ever printing a key', () => {
    const found = problems({
      ...required,
      INTERNAL_API_KEYS: 'orders:short-secret-key,billing:billing-key-that-is-long-enough,billing:another-key-that-is-long-enough',
      INTERNAL_ADMIN_CALLERS: 'ops',
    });
    expect(found).toContain('INTERNAL_API_KEYS: the key of caller orders must be at least 24 characters');
    expect(
      problems({
        ...required,
        INTERNAL_API_KEYS: `a:${serviceKey},b:${'z'.repeat(24)},a:${'y'.repeat(24)}`,
        INTERNAL_ADMIN_CALLERS: 'ops',
      }),
    ).toEqual(['INTERNAL_API_KEYS: caller a is listed twice', 'INTERNAL_ADMIN_CALLERS: ops is not a caller in INTERNAL_API_KEYS']);
    expect(problems({ ...required, INTERNAL_API_KEYS: `a:${serviceKey},b:${serviceKey}` })).toEqual([
      'INTERNAL_API_KEYS: two callers share one key',
    ]);
    expect(problems({ ...required, INTERNAL_API_KEYS: 'no-colon-here-but-long-enough-000' })).toEqual([
      'INTERNAL_API_KEYS: each entry must be caller:key with a plain caller name',
    ]);
    expect(found.join('\n')).not.toMatch(/short-secret-key|long-enough/);
  });

  it('requires a 32-byte encryption key with Redis, and refuses to open /auth through the proxy', () => {
    expect(problems({ ...required, REDIS_URL: 'redis://cache:6379' })).toEqual([
      'TOKEN_ENCRYPTION_KEY: is required when REDIS_URL is set (tokens are stored encrypted)',
    ]);
    expect(problems({ ...required, TOKEN_ENCRYPTION_KEY: Buffer.alloc(16).toString('base64') })[0]).toMatch(
      /^TOKEN_ENCRYPTION_KEY: must be 32 random bytes/,
    );
    expect(problems({ ...required, STARSHIP_PROXY_ALLOW: '/api/v1/,/auth/' })[0]).toMatch(/^STARSHIP_PROXY_ALLOW: must not open \/auth/);
    expect(problems({ ...required, STARSHIP_PROXY_ALLOW: 'api/v1' })[0]).toMatch(/^STARSHIP_PROXY_ALLOW: each prefix must be a plain path/);
  });

  it('needs a JWT secret or a JWKS URL unless FRONTEND_AUTH=none', () => {
    const { FRONTEND_JWT_SECRET: _omitted, ...withoutSecret } = required;
    expect(problems(withoutSecret)).toEqual([
      'FRONTEND_JWT_SECRET: FRONTEND_JWT_SECRET or FRONTEND_JWKS_URL is required when FRONTEND_AUTH=jwt',
    ]);
    expect(ok({ ...withoutSecret, FRONTEND_JWKS_URL: 'https://id.example.com/jwks' }).frontendAuth).toMatchObject({
      jwksUrl: 'https://id.example.com/jwks',
    });
  });

  it('reads secrets from NAME_FILE, refusing both forms at once and naming unreadable files', () => {
    const result = loadConfig(
      { ...required, BENJI_API_KEY: undefined, BENJI_API_KEY_FILE: '/run/secrets/benji' },
      {
        readFile: (path) => {
          expect(path).toBe('/run/secrets/benji');
          return 'from-file-key\n';
        },
      },
    );
    expect(result.ok && result.config.benji.apiKey).toBe('from-file-key');

    expect(problems({ ...required, BENJI_API_KEY_FILE: '/run/secrets/benji' }, { '/run/secrets/benji': 'x' })).toEqual([
      'BENJI_API_KEY: set either BENJI_API_KEY or BENJI_API_KEY_FILE, not both',
    ]);
    expect(problems({ ...required, FRONTEND_JWT_SECRET: undefined, FRONTEND_JWT_SECRET_FILE: '/nope' })).toContain(
      'FRONTEND_JWT_SECRET_FILE: cannot read /nope (ENOENT)',
    );
  });
});
