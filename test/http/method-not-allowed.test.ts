import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { benjiApiKey, buildBroker, serviceKeys, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';

/** A path that exists, asked with a method it does not take, is 405 with Allow; an unknown path stays 404. */
let benji: FakeBenji;
let subject: TestBroker;

beforeAll(async () => {
  benji = await startFakeBenji({ apiKey: benjiApiKey });
  subject = buildBroker({ BENJI_BASE_URL: benji.url });
});
afterAll(async () => {
  await subject.close();
  await benji.close();
});

const doors = () =>
  [
    ['public', subject.broker.publicApp],
    ['internal', subject.broker.internalApp],
  ] as const;
const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

function call(app: Express, method: (typeof methods)[number] | 'HEAD', path: string) {
  const agent = request(app);
  const verbs = {
    GET: agent.get,
    POST: agent.post,
    PUT: agent.put,
    PATCH: agent.patch,
    DELETE: agent.delete,
    OPTIONS: agent.options,
    HEAD: agent.head,
  };
  return verbs[method].call(agent, path);
}

describe('a known route with the wrong method', () => {
  it('answers 405 method_not_allowed with Allow on both doors, for every path the OpenAPI description lists', async () => {
    let checked = 0;
    for (const [door, app] of doors()) {
      const doc = (await request(app).get('/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
      for (const [path, operations] of Object.entries(doc.paths)) {
        if (path.includes('{')) continue; // the Starship proxy forwards methods itself
        const documented = Object.keys(operations).map((m) => m.toUpperCase());
        const allow = documented.includes('GET') ? [...documented, 'HEAD'] : documented;
        for (const method of methods.filter((m) => !documented.includes(m))) {
          const res = await call(app, method, path).set('authorization', `Bearer ${serviceKeys.ops}`);
          expect(res.status, `${door} ${method} ${path}`).toBe(405);
          expect(res.headers.allow, `${door} ${method} ${path}`).toBe(allow.join(', '));
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(res.body).toMatchObject({ status: 405, code: 'method_not_allowed', title: 'Method not allowed' });
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(30);
    expect(benji.requests).toHaveLength(0);
  });

  it('names what the route takes: GET connect-token, GET renew, POST /healthz', async () => {
    const connect = await request(subject.broker.publicApp).get('/v1/benji/connect-token');
    expect(connect.status).toBe(405);
    expect(connect.headers.allow).toBe('POST');
    expect(connect.body.detail).toBe('This route takes POST only.');

    // Before the service key: the route is in the door's OpenAPI description anyway.
    const renew = await request(subject.broker.internalApp).get('/v1/admin/starship/session/renew');
    expect(renew.status).toBe(405);
    expect(renew.headers.allow).toBe('POST');

    for (const [, app] of doors()) {
      const health = await request(app).post('/healthz');
      expect(health.status).toBe(405);
      expect(health.headers.allow).toBe('GET, HEAD');
      expect(health.body.detail).toBe('This route takes GET, HEAD only.');
    }
    const metrics = await request(subject.broker.internalApp).delete('/metrics');
    expect(metrics.status).toBe(405);
    expect(metrics.headers.allow).toBe('GET, HEAD');
  });

  it('still serves HEAD on GET routes, and keeps unknown paths 404', async () => {
    for (const [door, app] of doors()) {
      expect((await request(app).head('/healthz')).status).toBe(200);
      for (const [method, path] of [
        ['GET', '/nope'],
        // On the internal door /v1/benji/* is the Benji proxy's.
        door === 'public' ? (['POST', '/v1/benji/connect-token/extra'] as const) : (['POST', '/v1/benjiconnect-token'] as const),
        ['GET', '/v1/admin/starship/sessions'],
        ['DELETE', '/healthz/deep'],
      ] as const) {
        const res = await call(app, method, path);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.headers.allow).toBeUndefined();
        expect(res.body.code).toBe('not_found');
      }
    }
  });
});
