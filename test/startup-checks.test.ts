import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../sandbox/fake-benji.js';
import { startFakeStarship, type FakeStarship } from '../sandbox/fake-starship.js';
import { readPackageVersion } from '../src/package-version.js';
import { baseEnv, benjiApiKey, starshipPassword, starshipUsername } from './support/broker.js';
import { startFakeBenji } from './support/fakes.js';
import { spawnBroker, startBrokerProcess } from './support/process.js';
import { secret } from './support/secrets.js';

let benji: FakeBenji;
let starship: FakeStarship;
beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
});
afterAll(async () => {
  await benji.close();
  await starship.close();
});

/** The broker's own env, pointed at the fakes, so a broker that started by mistake would be seen calling them. */
const env = () => ({ ...baseEnv, BENJI_BASE_URL: benji.url, STARSHIP_BASE_URL: starship.url });
const stackTrace = /\n\s+at .+:\d+/;

/** Runs the broker to its exit; one that does not exit by itself is killed and reported as such. */
async function runToExit(
  extraEnv: Record<string, string>,
  args: string[] = [],
  { nodeArgs = [], without = [] }: { nodeArgs?: string[]; without?: string[] } = {},
): Promise<{ code: number | null | 'still running'; stdout: string; stderr: string }> {
  const full: Record<string, string> = { ...env(), ...extraEnv };
  for (const name of without) delete full[name];
  const spawned = spawnBroker(full, { args, nodeArgs });
  const code = await Promise.race([
    spawned.exited,
    new Promise<'still running'>((resolve) => setTimeout(resolve, 10_000, 'still running')),
  ]);
  if (code === 'still running') {
    spawned.child.kill('SIGKILL');
    await spawned.exited;
  }
  return { code, stdout: spawned.stdout(), stderr: spawned.stderr() };
}

describe('the command line', () => {
  it('--help prints the usage and exits 0; --version prints the version and exits 0', async () => {
    const help = await runToExit({}, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: node dist/main.js [option]');
    expect(help.stdout).toContain('--check-config');
    const version = await runToExit({}, ['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${readPackageVersion()}\n` });
  });

  it('refuses an unknown option with exit 2 and the usage, without listening or calling an upstream', async () => {
    const [logins, benjiCalls] = [starship.stats.logins, benji.requests.length];
    const typo = await runToExit({}, ['--check-confg']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('Unknown option --check-confg.');
    expect(typo.stderr).toContain('Usage: node dist/main.js');
    expect(typo.stdout).not.toContain('broker listening');
    // A positional argument may be a secret typed in the wrong place: it is not echoed.
    const pasted = secret('a-secret-typed-as-an-argument-0000');
    const positional = await runToExit({}, [pasted]);
    expect(positional.code).toBe(2);
    expect(positional.stderr).toContain('Unexpected argument.');
    expect(positional.stdout + positional.stderr).not.toContain(pasted);
    expect(starship.stats.logins).toBe(logins);
    expect(benji.requests).toHaveLength(benjiCalls);
  });

  it('puts the version in the "broker listening" line and in /healthz of both doors', async () => {
    const broker = await startBrokerProcess(env());
    try {
      const line = broker
        .stdout()
        .split('\n')
        .find((l) => l.includes('"broker listening"'));
      expect(JSON.parse(line ?? '{}')).toMatchObject({ version: readPackageVersion() });
      for (const port of [broker.publicPort, broker.internalPort]) {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        expect(await res.json()).toEqual({ status: 'ok', version: readPackageVersion() });
      }
    } finally {
      broker.child.kill('SIGTERM');
      expect(await broker.exited).toBe(0);
    }
  });
});

describe('--check-config catches what would fail at start', () => {
  it('refuses TRUST_PROXY=true, a HOST that is no address, and one port for both doors, naming each variable', async () => {
    const checked = await runToExit({ TRUST_PROXY: 'true', HOST: 'not a host', PORT: '9000', INTERNAL_PORT: '9000' }, ['--check-config']);
    expect(checked.code).toBe(1);
    expect(checked.stderr).toContain('TRUST_PROXY: true would trust any X-Forwarded-For a client sends');
    expect(checked.stderr).toContain('HOST: must be an IP address to listen on');
    expect(checked.stderr).toContain('INTERNAL_PORT: must differ from PORT');
    expect(checked.stderr).not.toMatch(stackTrace);
  });

  it('names a bad TRUST_PROXY address instead of crashing at start with a stack trace', async () => {
    const checked = await runToExit({ TRUST_PROXY: 'loopback,10.0.0.0/33' }, ['--check-config']);
    expect(checked.code).toBe(1);
    expect(checked.stderr).toContain('TRUST_PROXY: entry 2: must be an IP address, a subnet');
    const started = await runToExit({ TRUST_PROXY: 'loopback,10.0.0.0/33' });
    expect(started.code).toBe(1);
    expect(started.stdout).not.toContain('broker listening');
    expect(started.stderr).not.toMatch(stackTrace);
  });

  it('a port already taken at start is reported by its variable, without a stack trace, and exits 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = String((taken.address() as { port: number }).port);
    try {
      const started = await runToExit({ INTERNAL_PORT: port });
      expect(started.code).toBe(1);
      expect(started.stderr).toBe(`INTERNAL_PORT: cannot listen on 127.0.0.1:${port} (EADDRINUSE)\n`);
    } finally {
      taken.close();
    }
  });

  it('never prints a secret, whichever secret variable is wrong and however', async () => {
    const swappedKey = secret('4f9c2b7e1d3a8f6c0b5e9d2a7c4f1e8b');
    const bad = {
      BENJI_API_KEY: secret(`benji-key-too-long-${'k'.repeat(600)}`),
      FRONTEND_JWT_SECRET: secret('short-jwt-secret-1'),
      REDIS_URL: secret('http://:redis-secret-pass@cache:6379'),
      TOKEN_ENCRYPTION_KEY: secret('bm90LTMyLWJ5dGVzLXNlY3JldA=='),
      STARSHIP_USERNAME: secret(`starship-user-${'u'.repeat(300)}`),
      STARSHIP_PASSWORD: secret(`starship-pass-${'p'.repeat(1100)}`),
      // The key typed where the caller belongs, and a short key.
      INTERNAL_API_KEYS: secret(`${swappedKey}:orders,billing:short-billing-key`),
    };
    const checked = await runToExit(bad, ['--check-config']);
    expect(checked.code).toBe(1);
    for (const name of Object.keys(bad)) expect(checked.stderr).toContain(`  - ${name}: `);
    expect(checked.stderr).toContain(
      'INTERNAL_API_KEYS: entry 1: the key must be at least 24 characters (the form is caller:key, name first)',
    );
    const output = checked.stdout + checked.stderr;
    for (const value of [...Object.values(bad), swappedKey, 'short-billing-key', 'redis-secret-pass']) expect(output).not.toContain(value);
  });
});

describe('values cut by --env-file at a #', () => {
  it('warns about a Starship password or key that Node cut at a #, by name only; quoted, the value is kept and valid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'broker-env-'));
    const file = join(dir, '.env');
    const before = secret('starship-pass-before');
    const after = secret('after-the-hash-part');
    writeFileSync(
      file,
      [
        `STARSHIP_PASSWORD=${before}#${after}`,
        `BENJI_API_KEY="${benjiApiKey}#quoted-and-kept"`,
        `FRONTEND_JWT_SECRET=${'j'.repeat(40)} # a comment after a space is a comment`,
        `INTERNAL_API_KEYS=#orders:${'o'.repeat(30)}`,
      ].join('\n'),
    );
    const fromFile = {
      nodeArgs: [`--env-file=${file}`],
      without: ['STARSHIP_PASSWORD', 'BENJI_API_KEY', 'FRONTEND_JWT_SECRET', 'INTERNAL_API_KEYS'],
    };
    const checked = await runToExit({}, ['--check-config'], fromFile);
    // INTERNAL_API_KEYS is empty once cut, so the configuration is invalid; both warnings are printed.
    expect(checked.code).toBe(1);
    expect(checked.stderr).toContain('INTERNAL_API_KEYS: is required');
    expect(checked.stderr).toContain(
      'Warning: STARSHIP_PASSWORD: its value in the env file has a # straight after other characters, and Node\'s --env-file keeps only what comes before the #; if the # is part of the value, quote it: STARSHIP_PASSWORD="…"',
    );
    expect(checked.stderr).toContain('Warning: INTERNAL_API_KEYS: its value in the env file starts with #');
    expect(checked.stderr).not.toMatch(/Warning: (BENJI_API_KEY|FRONTEND_JWT_SECRET)/);
    expect(checked.stdout + checked.stderr).not.toMatch(new RegExp(`${before}|${after}`));

    // Fixed as the warning says: valid, and no warning.
    writeFileSync(file, `STARSHIP_PASSWORD="${before}#${after}"\nINTERNAL_API_KEYS=${baseEnv.INTERNAL_API_KEYS}\n`);
    const fixed = await runToExit({}, ['--check-config'], { ...fromFile, without: ['STARSHIP_PASSWORD', 'INTERNAL_API_KEYS'] });
    expect(fixed).toMatchObject({ code: 0, stdout: 'Configuration is valid.\n', stderr: '' });
  });
});
