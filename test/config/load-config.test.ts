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
  it('reads the Benji link and partner-proxy variables, and keeps Benji’s /auth closed', () => {
    const config = ok({
      ...required,
      BENJI_AUTH_BASE_URL: 'https://authservice.withbenji.com/',
      BENJI_PROXY_ALLOW: '/users/, /partnerships/49/triggers',
      BENJI_USER_REFRESH_BEFORE_S: '3600',
      BENJI_LINK_TTL_DAYS: '30',
    });
    expect(config.benji).toMatchObject({
      authBaseUrl: 'https://authservice.withbenji.com',
      proxyAllow: ['/users/', '/partnerships/49/triggers'],
      links: { refreshBeforeS: 3600, ttlDays: 30 },
    });
    expect(problems({ ...required, BENJI_PROXY_ALLOW: '/users/,/auth/connect' })).toEqual([
      'BENJI_PROXY_ALLOW: entry 2: must not open /auth or the whole API',
    ]);
    expect(problems({ ...required, BENJI_LINK_TTL_DAYS: '0' })).toEqual(['BENJI_LINK_TTL_DAYS: must be at least 1']);
    expect(problems({ ...required, BENJI_AUTH_BASE_URL: 'ftp://x' })).toEqual(['BENJI_AUTH_BASE_URL: must be an http(s) URL']);
  });

  it('reads Sentinel and Cluster settings, and takes exactly one way to reach Redis', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const sentinel = ok({
      ...required,
      REDIS_SENTINELS: 'sentinel-a:26379, [::1]:26380',
      REDIS_SENTINEL_NAME: 'broker',
      REDIS_SENTINEL_PASSWORD: 'sentinel-pass-123',
      REDIS_PASSWORD: 'data-pass-123',
      REDIS_TLS: 'true',
      REDIS_KEY_PREFIX: 'bff:{eu}:',
      TOKEN_ENCRYPTION_KEY: key,
    });
    expect(sentinel.redis?.connection).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 'sentinel-a', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'broker',
      sentinelPassword: 'sentinel-pass-123',
      password: 'data-pass-123',
      tls: true,
    });
    // A prefix that holds a hash tag is kept as it is.
    expect(sentinel.redis?.keyPrefix).toBe('bff:{eu}:');
    const cluster = ok({ ...required, REDIS_CLUSTER_NODES: 'node-1:7000,node-2:7000', TOKEN_ENCRYPTION_KEY: key });
    expect(cluster.redis?.connection).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'node-1', port: 7000 },
        { host: 'node-2', port: 7000 },
      ],
      password: undefined,
      tls: false,
    });
    expect(problems({ ...required, REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:7000', TOKEN_ENCRYPTION_KEY: key })).toEqual([
      'REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES',
    ]);
    expect(problems({ ...required, REDIS_SENTINELS: 'a:26379', TOKEN_ENCRYPTION_KEY: key })).toEqual([
      'REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS (the name of the monitored primary)',
    ]);
    expect(problems({ ...required, REDIS_URL: 'redis://a:6379', REDIS_PASSWORD: 'pw-123456', TOKEN_ENCRYPTION_KEY: key })).toEqual([
      'REDIS_PASSWORD: with REDIS_URL, put it in the URL (redis://:password@host, rediss:// for TLS)',
    ]);
    expect(problems({ ...required, REDIS_CLUSTER_NODES: 'no-port' })).toEqual([
      'REDIS_CLUSTER_NODES: entry 1: each entry must be host:port',
      'TOKEN_ENCRYPTION_KEY: is required when REDIS_CLUSTER_NODES is set (tokens are stored encrypted)',
    ]);
  });

  it('applies the documented defaults', () => {
    const config = ok(required);
    expect(config.http).toEqual({
      host: '0.0.0.0',
      publicPort: 8080,
      internalPort: 8081,
      trustProxy: undefined,
      corsOrigins: [],
      shutdownTimeoutMs: 10_000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 65_000,
      publicMaxConnections: 2_000,
      internalMaxConnections: 500,
    });
    expect(config.benji).toEqual({
      baseUrl: 'https://api-staging.withbenji.com',
      authBaseUrl: 'https://authservice-staging.withbenji.com',
      apiKey: 'key-123',
      partnershipId: '49',
      timeoutMs: 10_000,
      proxyAllow: ['/users/', '/transactions/', '/partnerships/'],
      links: { refreshBeforeS: 86_400, ttlDays: 180 },
      connectPolicy: { displayName: undefined, allowedModes: ['connect', 'transfer', 'redeem'], maxTransferAmount: undefined },
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
      timeoutMs: 15_000,
      proxyAllow: ['/api/v1/', '/status'],
      auth: { kind: 'session', username: 'api-user', password: 'api-password', refreshBeforeS: 300 },
    });
    expect(config.internalAuth).toEqual({ keys: [{ caller: 'orders', key: serviceKey }], adminCallers: [] });
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
    expect(config.starship.proxyAllow).toEqual(['/api/v1/products', '/status']);
    expect(config.internalAuth.keys).toEqual([
      { caller: 'orders', key: serviceKey },
      { caller: 'ops', key: `${'o'.repeat(30)}:with-colon` },
    ]);
    expect(config.internalAuth.adminCallers).toEqual(['ops']);
    expect(config.http.publicPort).toBe(9000);
    expect(config.benji.baseUrl).toBe('https://api.withbenji.com');
    expect(config.benji.connectPolicy.allowedModes).toEqual(['connect', 'redeem']);
    expect(config.benji.connectPolicy.maxTransferAmount).toBe(5000);
    expect(config.http.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:3000']);
    expect(config.http.trustProxy).toBe(1);
    // The prefix becomes one hash tag, so every key lives in one cluster slot.
    expect(config.redis).toEqual({
      connection: { kind: 'url', url: 'redis://cache:6379/2' },
      keyPrefix: '{rewards:}',
      encryptionKey: Buffer.alloc(32, 7),
    });
    expect(config.frontendAuth).toEqual({ mode: 'none' });
    expect(ok({ ...required, TRUST_PROXY: 'loopback, 10.0.0.0/8' }).http.trustProxy).toBe('loopback, 10.0.0.0/8');
    expect(ok({ ...required, TRUST_PROXY: '10.1.2.3,fd00::/8 , 192.168.0.0/255.255.0.0' }).http.trustProxy).toBe(
      '10.1.2.3, fd00::/8, 192.168.0.0/255.255.0.0',
    );
    expect(ok({ ...required, TRUST_PROXY: 'false' }).http.trustProxy).toBeUndefined();
  });

  it('bounds the lifetime a user token may claim with FRONTEND_JWT_MAX_AGE_S', () => {
    expect(ok({ ...required, FRONTEND_JWT_MAX_AGE_S: '3600' }).frontendAuth).toMatchObject({ mode: 'jwt', maxAgeS: 3600 });
    expect(problems({ ...required, FRONTEND_JWT_MAX_AGE_S: '10' })).toEqual(['FRONTEND_JWT_MAX_AGE_S: must be at least 60']);
    expect(problems({ ...required, FRONTEND_JWT_MAX_AGE_S: '1d' })).toEqual(['FRONTEND_JWT_MAX_AGE_S: must be a whole number']);
  });

  it('treats empty values as unset, as a .env file with FOO= means', () => {
    const config = ok({ ...required, PORT: '', BENJI_DISPLAY_NAME: '  ', FRONTEND_JWKS_URL: '' });
    expect(config.http.publicPort).toBe(8080);
    expect(config.benji.connectPolicy.displayName).toBeUndefined();
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

  it('checks internal callers and keys, naming entries by position, never by content', () => {
    const found = problems({
      ...required,
      INTERNAL_API_KEYS: 'orders:short-secret-key,billing:billing-key-that-is-long-enough,billing:another-key-that-is-long-enough',
      INTERNAL_ADMIN_CALLERS: 'ops',
    });
    expect(found).toEqual([
      'INTERNAL_API_KEYS: entry 1: the key must be at least 24 characters',
      'INTERNAL_API_KEYS: entries 2 and 3 name the same caller',
      'INTERNAL_ADMIN_CALLERS: entry 1 is not a caller in INTERNAL_API_KEYS',
    ]);
    expect(problems({ ...required, INTERNAL_API_KEYS: `a:${'k'.repeat(513)}` })).toEqual([
      'INTERNAL_API_KEYS: entry 1: the key must be at most 512 bytes',
    ]);
    expect(ok({ ...required, INTERNAL_API_KEYS: `a:${'k'.repeat(512)}` }).internalAuth.keys).toHaveLength(1);
    expect(problems({ ...required, INTERNAL_API_KEYS: `a:${serviceKey},b:${serviceKey}` })).toEqual([
      'INTERNAL_API_KEYS: entries 1 and 2 share one key',
    ]);
    expect(problems({ ...required, INTERNAL_API_KEYS: `a:${serviceKey},no-colon-here-but-long-enough-000` })).toEqual([
      'INTERNAL_API_KEYS: entry 2: must be caller:key with a plain caller name (letters, digits, . _ -)',
    ]);
    expect(found.join('\n')).not.toMatch(/short-secret-key|long-enough/);
  });

  it('never prints the value of a secret variable, whatever is wrong with it', () => {
    // A key typed where the caller belongs, in the shape (hex) that passes for a caller name.
    const swappedKey = '4f9c2b7e1d3a8f6c0b5e9d2a7c4f1e8b';
    const bad: Record<string, string> = {
      BENJI_API_KEY: `benji-key-too-long-${'k'.repeat(600)}`,
      FRONTEND_JWT_SECRET: 'short-jwt-secret-1',
      REDIS_URL: 'http://:redis-secret-pass@cache:6379',
      TOKEN_ENCRYPTION_KEY: 'bm90LTMyLWJ5dGVzLXNlY3JldA==',
      STARSHIP_USERNAME: `starship-user-${'u'.repeat(300)}`,
      STARSHIP_PASSWORD: `starship-pass-${'p'.repeat(1100)}`,
      INTERNAL_API_KEYS: `${swappedKey}:orders,billing:short-billing-key`,
    };
    const found = problems({ ...required, ...bad, INTERNAL_ADMIN_CALLERS: `orders,${swappedKey}` });
    for (const name of Object.keys(bad))
      expect(
        found.some((problem) => problem.startsWith(`${name}: `)),
        name,
      ).toBe(true);
    expect(found).toContain('INTERNAL_API_KEYS: entry 1: the key must be at least 24 characters (the form is caller:key, name first)');
    const text = found.join('\n');
    for (const value of [...Object.values(bad), swappedKey, 'short-billing-key', 'redis-secret-pass']) expect(text).not.toContain(value);
    const malformed = problems({ ...required, INTERNAL_API_KEYS: `orders:${serviceKey},bad caller:spaced-caller-key-000000000` });
    expect(malformed).toEqual(['INTERNAL_API_KEYS: entry 2: must be caller:key with a plain caller name (letters, digits, . _ -)']);

    // A secret pasted into NAME_FILE instead of a path: the "path" is not printed either.
    const pasted = 'benji-key-pasted-where-the-path-goes';
    const fromFile = problems({ ...required, BENJI_API_KEY: undefined, BENJI_API_KEY_FILE: pasted });
    expect(fromFile).toContain('BENJI_API_KEY_FILE: the file cannot be read (ENOENT)');
    expect(fromFile.join('\n')).not.toContain(pasted);
  });

  it('STARSHIP_AUTH=api-key takes the key, the secret and an optional signing secret, and refuses the session’s variables', () => {
    const apiKey = { STARSHIP_AUTH: 'api-key', STARSHIP_API_KEY: 'sk_test_abc', STARSHIP_API_SECRET: 'secret-1' };
    const { STARSHIP_USERNAME: _u, STARSHIP_PASSWORD: _p, ...withoutSession } = required;
    expect(ok({ ...withoutSession, ...apiKey }).starship.auth).toEqual({
      kind: 'api-key',
      apiKey: 'sk_test_abc',
      apiSecret: 'secret-1',
      signingSecret: undefined,
    });
    expect(ok({ ...withoutSession, ...apiKey, STARSHIP_SIGNING_SECRET: 'sign-1' }).starship.auth).toMatchObject({
      signingSecret: 'sign-1',
    });
    expect(problems({ ...required, ...apiKey })).toEqual([
      'STARSHIP_USERNAME: belongs to STARSHIP_AUTH=session; unset it with STARSHIP_AUTH=api-key',
      'STARSHIP_PASSWORD: belongs to STARSHIP_AUTH=session; unset it with STARSHIP_AUTH=api-key',
    ]);
    expect(problems({ ...withoutSession, STARSHIP_AUTH: 'api-key' })).toEqual([
      'STARSHIP_API_KEY: is required with STARSHIP_AUTH=api-key',
      'STARSHIP_API_SECRET: is required with STARSHIP_AUTH=api-key',
    ]);
    // And the other way round: a session refuses the key's variables.
    expect(problems({ ...required, STARSHIP_API_KEY: 'sk_test_abc', STARSHIP_SIGNING_SECRET: 'sign-1' })).toEqual([
      'STARSHIP_API_KEY: belongs to STARSHIP_AUTH=api-key; unset it with STARSHIP_AUTH=session',
      'STARSHIP_SIGNING_SECRET: belongs to STARSHIP_AUTH=api-key; unset it with STARSHIP_AUTH=session',
    ]);
    expect(problems({ ...withoutSession })).toEqual([
      'STARSHIP_USERNAME: is required with STARSHIP_AUTH=session',
      'STARSHIP_PASSWORD: is required with STARSHIP_AUTH=session',
    ]);
    expect(problems({ ...required, STARSHIP_AUTH: 'oauth' })[0]).toBe('STARSHIP_AUTH: must be session or api-key');
  });

  it('refuses a sandbox key with the production origin and a live key with the playground; other shapes pass', () => {
    const { STARSHIP_USERNAME: _u, STARSHIP_PASSWORD: _p, ...withoutSession } = required;
    const apiKey = (key: string, origin?: string) => ({
      ...withoutSession,
      STARSHIP_AUTH: 'api-key',
      STARSHIP_API_KEY: key,
      STARSHIP_API_SECRET: 'secret-1',
      ...(origin !== undefined && { STARSHIP_BASE_URL: origin }),
    });
    expect(problems(apiKey('sk_test_abc', 'https://api.starshiprewards.com'))).toEqual([
      'STARSHIP_API_KEY: a sandbox key (sk_test_…) cannot be used with the production STARSHIP_BASE_URL',
    ]);
    expect(problems(apiKey('sk_live_abc'))).toEqual([
      'STARSHIP_API_KEY: a production key (sk_live_…) cannot be used with the playground STARSHIP_BASE_URL',
    ]);
    expect(ok(apiKey('sk_live_abc', 'https://api.starshiprewards.com/')).starship.auth).toMatchObject({ apiKey: 'sk_live_abc' });
    expect(ok(apiKey('sk_test_abc')).starship.auth).toMatchObject({ apiKey: 'sk_test_abc' });
    expect(ok(apiKey('custom-key-shape', 'https://api.starshiprewards.com')).starship.auth).toMatchObject({ apiKey: 'custom-key-shape' });
  });

  it('refuses TRUST_PROXY=true and names a bad proxy address by position', () => {
    expect(problems({ ...required, TRUST_PROXY: 'true' })).toEqual([
      'TRUST_PROXY: true would trust any X-Forwarded-For a client sends; give the number of proxies in front of the broker (e.g. 1) or their addresses/subnets (e.g. 10.0.0.0/8)',
    ]);
    const notAnAddress = 'must be an IP address, a subnet (10.0.0.0/8) or loopback, linklocal, uniquelocal; a hop count stands alone';
    expect(problems({ ...required, TRUST_PROXY: 'loopback,10.0.0.0/33,proxy.internal,1' })).toEqual([
      `TRUST_PROXY: entry 2: ${notAnAddress}`,
      `TRUST_PROXY: entry 3: ${notAnAddress}`,
      `TRUST_PROXY: entry 4: ${notAnAddress}`,
    ]);
    expect(problems({ ...required, TRUST_PROXY: '6' })[0]).toMatch(/^TRUST_PROXY: a hop count must be at most 5/);
    expect(ok({ ...required, TRUST_PROXY: '5' }).http.trustProxy).toBe(5);
  });

  it('refuses TRUST_PROXY subnets so wide that they mean true', () => {
    for (const wide of ['0.0.0.0/1,128.0.0.0/1,::/1,8000::/1', '10.0.0.0/7', '10.0.0.0/254.0.0.0', '::/1']) {
      expect(problems({ ...required, TRUST_PROXY: wide })[0], wide).toMatch(
        /^TRUST_PROXY: entry 1: a subnet wider than \/(8|7) trusts nearly anyone/,
      );
    }
    for (const all of ['0.0.0.0/0', '::/0']) expect(problems({ ...required, TRUST_PROXY: all })[0], all).toMatch(/^TRUST_PROXY: entry 1: /);
    expect(ok({ ...required, TRUST_PROXY: '10.0.0.0/8,fc00::/7,192.168.0.0/255.255.0.0' }).http.trustProxy).toBe(
      '10.0.0.0/8, fc00::/7, 192.168.0.0/255.255.0.0',
    );
  });

  it('checks at parse time what would otherwise fail when the broker starts listening', () => {
    expect(problems({ ...required, HOST: 'not a host' })[0]).toMatch(/^HOST: must be an IP address to listen on/);
    expect(ok({ ...required, HOST: '::' }).http.host).toBe('::');
    expect(ok({ ...required, HOST: 'localhost' }).http.host).toBe('localhost');
    expect(problems({ ...required, PORT: '9000', INTERNAL_PORT: '9000' })).toEqual([
      'INTERNAL_PORT: must differ from PORT (each door has its own port)',
    ]);
    expect(ok({ ...required, PORT: '0', INTERNAL_PORT: '0' }).http.publicPort).toBe(0);
    expect(problems({ ...required, HTTP_HEADERS_TIMEOUT_MS: '40000', HTTP_REQUEST_TIMEOUT_MS: '30000' })).toEqual([
      'HTTP_HEADERS_TIMEOUT_MS: must not be more than HTTP_REQUEST_TIMEOUT_MS',
    ]);
    // Cross-variable checks still run when another variable fails.
    expect(problems({ ...required, PORT: '9000', INTERNAL_PORT: '9000', LOG_LEVEL: 'loud' })).toHaveLength(2);
  });

  it('requires a 32-byte encryption key with Redis, and refuses to open /auth through the proxy', () => {
    expect(problems({ ...required, REDIS_URL: 'redis://cache:6379' })).toEqual([
      'TOKEN_ENCRYPTION_KEY: is required when REDIS_URL is set (tokens are stored encrypted)',
    ]);
    expect(problems({ ...required, TOKEN_ENCRYPTION_KEY: Buffer.alloc(16).toString('base64') })[0]).toMatch(
      /^TOKEN_ENCRYPTION_KEY: must be 32 random bytes/,
    );
    expect(problems({ ...required, STARSHIP_PROXY_ALLOW: '/api/v1/,/auth/' })[0]).toMatch(
      /^STARSHIP_PROXY_ALLOW: entry 2: must not open \/auth/,
    );
    expect(problems({ ...required, STARSHIP_PROXY_ALLOW: 'api/v1' })[0]).toMatch(
      /^STARSHIP_PROXY_ALLOW: entry 1: each prefix must be a plain path/,
    );
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
      'FRONTEND_JWT_SECRET_FILE: the file cannot be read (ENOENT)',
    );
  });
});
