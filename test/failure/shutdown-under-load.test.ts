import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { baseEnv, benjiApiKey, serviceKeys, starshipPassword, starshipUsername } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { startBrokerProcess } from '../support/process.js';

let starship: FakeStarship;
let benji: FakeBenji;
beforeAll(async () => {
  starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
  benji = await startFakeBenji({ apiKey: benjiApiKey });
});
afterAll(async () => {
  await starship.close();
  await benji.close();
});

type Outcome =
  { kind: 'answered'; status: number; complete: boolean } | { kind: 'not accepted'; code: string } | { kind: 'dropped'; code: string };

/**
 * One request on a fresh connection. A connection the server never took (refused, or reset before
 * any byte came back once the listener closed) is "not accepted"; any failure after the answer
 * started is "dropped".
 */
function call(port: number, path: string, headers: Record<string, string>, body?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let started = false;
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', agent: false, headers },
      (res) => {
        started = true;
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve({ kind: 'answered', status: res.statusCode ?? 0, complete: res.complete && bytes > 0 }));
        res.on('error', (error: NodeJS.ErrnoException) => resolve({ kind: 'dropped', code: error.code ?? error.message }));
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? error.message;
      resolve(!started && (code === 'ECONNREFUSED' || code === 'ECONNRESET') ? { kind: 'not accepted', code } : { kind: 'dropped', code });
    });
    req.end(body);
  });
}

it('drops no request when SIGTERM arrives during load on both doors', async () => {
  const broker = await startBrokerProcess({
    ...baseEnv,
    STARSHIP_BASE_URL: starship.url,
    BENJI_BASE_URL: benji.url,
    FRONTEND_AUTH: 'none',
    FRONTEND_JWT_SECRET: '',
    CONNECT_TOKEN_RATE_LIMIT: '1000000',
  });
  const outcomes: Outcome[] = [];
  let stop = false;
  try {
    // Every call takes a while upstream, so many are in flight when the signal lands.
    starship.fail('api', ...Array.from({ length: 10_000 }, () => ({ kind: 'delay' as const, ms: 30 })));
    benji.fail(...Array.from({ length: 10_000 }, () => ({ kind: 'delay' as const, ms: 30 })));
    const workers = Array.from({ length: 24 }, async (_, i) => {
      while (!stop) {
        const outcome =
          i % 3 === 0
            ? await call(
                broker.publicPort,
                '/v1/benji/connect-token',
                { 'content-type': 'application/json' },
                JSON.stringify({ mode: 'connect' }),
              )
            : await call(broker.internalPort, '/v1/starship/api/v1/products', { authorization: `Bearer ${serviceKeys.orders}` });
        outcomes.push(outcome);
        if (outcome.kind !== 'answered') return; // the broker is gone for this worker
      }
    });
    while (outcomes.length < 200) await new Promise((resolve) => setTimeout(resolve, 10));
    broker.child.kill('SIGTERM');
    const code = await broker.exited;
    stop = true;
    await Promise.all(workers);

    expect(code).toBe(0);
    expect(outcomes.filter((o) => o.kind === 'dropped')).toEqual([]);
    const answered = outcomes.filter((o): o is Extract<Outcome, { kind: 'answered' }> => o.kind === 'answered');
    expect(answered.filter((o) => !o.complete || o.status !== 200)).toEqual([]);
    expect(answered.length).toBeGreaterThan(200);
  } finally {
    stop = true;
    broker.child.kill('SIGKILL');
  }
});
