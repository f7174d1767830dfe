import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../sandbox/fake-benji.js';
import { startFakeBenji } from './support/fakes.js';
import { largeBodyByte, startFakeStarship } from '../sandbox/fake-starship.js';
import { baseEnv, benjiApiKey, partnershipId, serviceKeys, starshipPassword, starshipUsername } from './support/broker.js';
import { jwtSecret, signUserToken } from './support/jwt.js';
import { spawnBroker, startBrokerProcess } from './support/process.js';

let benji: FakeBenji;
beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
});
afterAll(() => benji.close());

async function askConnectToken(port: number): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/v1/benji/connect-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await signUserToken({ sub: 'u' })}`, 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'connect' }),
  });
}

describe('the broker process', () => {
  it('exits non-zero before listening, naming every bad variable and printing no secret', async () => {
    const spawned = spawnBroker({
      ...baseEnv,
      BENJI_PARTNERSHIP_ID: '',
      FRONTEND_JWT_SECRET: 'too-short-secret',
      PORT: 'eighty',
      BENJI_ALLOWED_MODES: 'connect,teleport',
    });
    expect(await spawned.exited).toBe(1);
    const output = spawned.stdout() + spawned.stderr();
    for (const name of ['BENJI_PARTNERSHIP_ID', 'FRONTEND_JWT_SECRET', 'PORT', 'BENJI_ALLOWED_MODES']) expect(output).toContain(name);
    expect(output).not.toContain('broker listening');
    expect(output).not.toContain(benjiApiKey);
    expect(output).not.toContain('too-short-secret');
  });

  it('reads secrets from NAME_FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'broker-secrets-'));
    writeFileSync(join(dir, 'benji-key'), `${benjiApiKey}\n`);
    writeFileSync(join(dir, 'jwt-secret'), `${jwtSecret}\n`);
    const broker = await startBrokerProcess({
      ...baseEnv,
      BENJI_BASE_URL: benji.url,
      BENJI_API_KEY: '',
      BENJI_API_KEY_FILE: join(dir, 'benji-key'),
      BENJI_PARTNERSHIP_ID: partnershipId,
      FRONTEND_JWT_SECRET: '',
      FRONTEND_JWT_SECRET_FILE: join(dir, 'jwt-secret'),
    });
    try {
      const res = await askConnectToken(broker.publicPort);
      expect(res.status).toBe(200);
      expect(benji.requests.at(-1)?.headers['x-api-key']).toBe(benjiApiKey);
    } finally {
      broker.child.kill('SIGTERM');
      await broker.exited;
    }
  });

  it('on SIGTERM lets an in-flight request finish, then exits 0', async () => {
    const broker = await startBrokerProcess({ ...baseEnv, BENJI_BASE_URL: benji.url });
    benji.fail({ kind: 'delay', ms: 700 });
    const before = benji.requests.length;
    const inFlight = askConnectToken(broker.publicPort);
    while (benji.requests.length === before) await new Promise((resolve) => setTimeout(resolve, 10));
    broker.child.kill('SIGTERM');

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await broker.exited).toBe(0);
    await expect(fetch(`http://127.0.0.1:${broker.publicPort}/healthz`)).rejects.toThrow();
    expect(broker.stdout()).toContain('"shutdown complete"');
  });

  it('serves each door only on its own port', async () => {
    // A reachable Starship: with none, the internal door is out (503) while a failed login backs off.
    const starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
    const broker = await startBrokerProcess({ ...baseEnv, BENJI_BASE_URL: benji.url, STARSHIP_BASE_URL: starship.url });
    try {
      // The internal door's /v1/benji/* is the Benji proxy, which wants a service key.
      const onInternal = await askConnectToken(broker.internalPort);
      expect(onInternal.status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${broker.publicPort}/v1/starship/api/v1/products`)).status).toBe(404);
      for (const port of [broker.publicPort, broker.internalPort]) {
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
        expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      }
    } finally {
      broker.child.kill('SIGINT');
      expect(await broker.exited).toBe(0);
      await starship.close();
    }
  });

  it('logs in to Starship once at start, and starts all the same when Starship is down', async () => {
    const starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
    const up = await startBrokerProcess({ ...baseEnv, STARSHIP_BASE_URL: starship.url });
    const down = await startBrokerProcess({ ...baseEnv }); // STARSHIP_BASE_URL points at a closed port
    try {
      for (let i = 0; i < 200 && starship.stats.logins === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(starship.stats.logins).toBe(1);
      expect(up.stdout()).toContain('REDIS_URL unset: Starship tokens and linked users’ Benji tokens live in process memory');
      expect((await fetch(`http://127.0.0.1:${down.internalPort}/healthz`)).status).toBe(200);
    } finally {
      up.child.kill('SIGTERM');
      down.child.kill('SIGTERM');
      expect(await up.exited).toBe(0);
      expect(await down.exited).toBe(0);
      await starship.close();
    }
    expect(down.stdout()).toContain('starship session not ready at start');
  });

  it('on SIGTERM lets slow proxied calls and a streaming download finish, then exits 0', async () => {
    const starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
    const broker = await startBrokerProcess({ ...baseEnv, STARSHIP_BASE_URL: starship.url });
    try {
      for (let i = 0; i < 200 && starship.stats.logins === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      const size = 5 * 1024 * 1024;
      starship.fail('api', ...Array.from({ length: 6 }, () => ({ kind: 'delay' as const, ms: 700 })));
      const headers = { authorization: `Bearer ${serviceKeys.orders}` };
      const base = `http://127.0.0.1:${broker.internalPort}/v1/starship/api/v1`;
      const slow = Array.from({ length: 5 }, (_, i) =>
        fetch(`${base}/echo/slow-${i}`, { headers }).then(async (r) => ({ status: r.status, body: await r.json() })),
      );
      const download = fetch(`${base}/large?bytes=${size}`, { headers }).then(async (r) => ({
        status: r.status,
        body: Buffer.from(await r.arrayBuffer()),
      }));
      while (starship.stats.apiCalls < 6) await new Promise((resolve) => setTimeout(resolve, 10));

      broker.child.kill('SIGTERM');
      const answers = await Promise.all(slow);
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
      expect(answers.map((a) => (a.body as { path: string }).path)).toEqual(Array.from({ length: 5 }, (_, i) => `/api/v1/echo/slow-${i}`));
      const file = await download;
      expect(file.status).toBe(200);
      expect(file.body.length).toBe(size);
      expect(file.body[size - 1]).toBe(largeBodyByte(size - 1));
      expect(await broker.exited).toBe(0);
    } finally {
      broker.child.kill('SIGKILL');
      await starship.close();
    }
  });

  it('cuts calls still open at SHUTDOWN_TIMEOUT_MS and exits 0 rather than hang', async () => {
    const starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
    const broker = await startBrokerProcess({
      ...baseEnv,
      STARSHIP_BASE_URL: starship.url,
      SHUTDOWN_TIMEOUT_MS: '300',
      STARSHIP_TIMEOUT_MS: '60000',
    });
    try {
      starship.fail('api', { kind: 'hang' });
      const hanging = fetch(`http://127.0.0.1:${broker.internalPort}/v1/starship/api/v1/products`, {
        headers: { authorization: `Bearer ${serviceKeys.orders}` },
      }).then(
        (r) => r.status,
        () => 'cut',
      );
      while (starship.stats.apiCalls < 1) await new Promise((resolve) => setTimeout(resolve, 10));
      const stoppedAt = Date.now();
      broker.child.kill('SIGTERM');
      expect(await hanging).toBe('cut');
      expect(await broker.exited).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(5_000); // generous: the point is that it does not wait 60 s
      expect(broker.stdout()).toContain('shutdown deadline reached');
    } finally {
      broker.child.kill('SIGKILL');
      await starship.close();
    }
  });
});
