import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeBenji } from '../support/fakes.js';
import { benjiApiKey, buildBroker, type TestBroker } from '../support/broker.js';
import { jwtSecret, signUserToken } from '../support/jwt.js';

let benji: FakeBenji;
let subject: TestBroker;

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  subject = buildBroker({ BENJI_BASE_URL: benji.url, LOG_LEVEL: 'trace', BENJI_TIMEOUT_MS: '200' });
});
afterAll(async () => {
  await subject.close();
  await benji.close();
});

it('never writes the Benji API key, the JWT secret, user JWTs or issued tokens to the logs', async () => {
  const userJwt = await signUserToken({ sub: 'user-1' });
  const expiredJwt = await signUserToken({ sub: 'user-1' }, { expiresInS: -120 });
  const app = subject.broker.publicApp;
  const issued: string[] = [];

  const ok = await request(app)
    .post('/v1/benji/connect-token')
    .set('authorization', `Bearer ${userJwt}`)
    .set('cookie', 'session=s3cr3t-cookie')
    .send({ mode: 1 });
  expect(ok.status).toBe(200);
  issued.push(ok.body.token as string);
  await request(app).post('/v1/benji/connect-token').set('authorization', `Bearer ${expiredJwt}`).send({ mode: 1 });
  await request(app)
    .post('/v1/benji/connect-token')
    .set('authorization', `Bearer ${userJwt}`)
    .set('x-api-key', benjiApiKey)
    .send({ mode: 9 });
  for (const fault of [
    { kind: 'reply', status: 500, body: { error: 'unexpected_error', message: `key ${benjiApiKey} broke` } },
    { kind: 'reply', status: 401, body: { error: 'unauthorized_partner' } },
    { kind: 'hang' },
    { kind: 'raw', status: 200, text: 'garbage' },
  ] as const) {
    benji.fail(fault);
    const res = await request(app).post('/v1/benji/connect-token').set('authorization', `Bearer ${userJwt}`).send({ mode: 1 });
    expect(res.status).toBeGreaterThanOrEqual(500);
  }

  const logs = subject.logs.text();
  expect(logs.length).toBeGreaterThan(0);
  for (const secret of [benjiApiKey, jwtSecret, userJwt, expiredJwt, 's3cr3t-cookie', ...issued]) {
    expect(logs).not.toContain(secret);
  }
});
