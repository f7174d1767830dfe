import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { renewBody, sessionStatusBody } from '../../src/http/internal/admin-routes.js';
import { linkDetailsBody } from '../../src/http/internal/benji-links-route.js';
import { webhookStatsBody } from '../../src/http/internal/webhook-admin-routes.js';
import { webhookReceipt } from '../../src/http/public/public-openapi.js';
import { exchangeBody, linkStatusBody } from '../../src/http/public/benji-link-schema.js';
import { connectTokenBody, connectTokenResponse } from '../../src/http/public/connect-token-schema.js';
import { problemBody } from '../../src/http/problem.js';
import { buildBroker, type TestBroker } from '../support/broker.js';

let subject: TestBroker;
beforeAll(() => {
  // Webhook routes exist (and are described) only when their secrets are set.
  subject = buildBroker({ BENJI_WEBHOOK_SALT: 'benji-salt-0123456789abcdef', STARSHIP_WEBHOOK_SECRET: 'starship-secret-0123456789' });
});
afterAll(() => subject.close());

interface Operation {
  requestBody?: { content: Record<string, { examples?: Record<string, { value: unknown }> }> };
  responses: Record<string, { content?: Record<string, { examples?: Record<string, { value: unknown }> }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: { Problem: { examples: unknown[] } } };
}

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
  rawPath?: string;
}

/** Every (method, path) the Express app serves, read from its router; mounted handlers become `{path}`. */
function routesOf(app: Express): string[] {
  const found = new Set<string>();
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route !== undefined) {
        // `_all` is methodNotAllowed: the 405 for the methods a path does not take, not an operation.
        const path = layer.route.path.replace(/:(\w+)/g, '{$1}');
        for (const method of Object.keys(layer.route.methods)) if (method !== '_all') found.add(`${method} ${path}`);
      } else if (layer.handle.stack !== undefined) {
        walk(layer.handle.stack);
      } else if (layer.rawPath !== undefined && layer.rawPath !== '/') {
        for (const method of ['get', 'head', 'post', 'put', 'patch', 'delete']) found.add(`${method} ${layer.rawPath}/{path}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return [...found].sort();
}

/** A mounted handler's own parameters (the user of /v1/benji-users) are inside its `{path}` for routesOf. */
const documented = (doc: Document) =>
  Object.entries(doc.paths)
    .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path.replace('/{userId}/{path}', '/{path}')}`))
    .sort();

async function fetchDocument(app: Express): Promise<Document> {
  const res = await request(app).get('/openapi.json');
  expect(res.status).toBe(200);
  return res.body as Document;
}

/** The zod schema each documented example must satisfy. */
const schemas: Record<string, { request?: z.ZodType; responses: Record<string, z.ZodType> }> = {
  'post /v1/benji/connect-token': { request: connectTokenBody, responses: { '200': connectTokenResponse } },
  'post /v1/benji/exchange': { request: exchangeBody, responses: { '200': linkStatusBody } },
  'get /v1/benji/link': { responses: { '200': linkStatusBody } },
  'get /v1/benji/links/{userId}': { responses: { '200': linkDetailsBody } },
  'post /v1/webhooks/benji': { responses: { '200': webhookReceipt } },
  'post /v1/webhooks/starship': { responses: { '200': webhookReceipt } },
  'get /v1/admin/webhooks': { responses: { '200': webhookStatsBody } },
  'get /v1/admin/starship/session': { responses: { '200': sessionStatusBody } },
  'post /v1/admin/starship/session/renew': { request: renewBody, responses: { '200': sessionStatusBody } },
};

describe.each([
  ['public', () => subject.broker.publicApp],
  ['internal', () => subject.broker.internalApp],
])('the %s door’s OpenAPI description', (_door, app) => {
  it('is OpenAPI 3.1 and describes exactly the routes the door serves', async () => {
    const doc = await fetchDocument(app());
    expect(doc.openapi).toBe('3.1.0');
    expect(documented(doc)).toEqual(routesOf(app()));
  });

  it('has examples that pass the same validation as real requests and responses', async () => {
    const doc = await fetchDocument(app());
    let checked = 0;
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const expected = schemas[`${method} ${path}`];
        for (const media of Object.values(operation.requestBody?.content ?? {})) {
          for (const { value } of Object.values(media.examples ?? {})) {
            expect(expected?.request?.safeParse(value).success, `${method} ${path} request example`).toBe(true);
            checked++;
          }
        }
        for (const [status, response] of Object.entries(operation.responses)) {
          for (const media of Object.values(response.content ?? {})) {
            for (const { value } of Object.values(media.examples ?? {})) {
              expect(expected?.responses[status]?.safeParse(value).success, `${method} ${path} ${status} example`).toBe(true);
              checked++;
            }
          }
        }
      }
    }
    for (const example of doc.components.schemas.Problem.examples) {
      expect(problemBody.safeParse(example).success).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(1);
  });
});

it('documents a body schema that refuses what the route refuses', async () => {
  const doc = await fetchDocument(subject.broker.publicApp);
  const schema = (
    doc.paths['/v1/benji/connect-token']?.post?.requestBody?.content['application/json'] as {
      schema: { additionalProperties: boolean; required: string[] };
    }
  ).schema;
  expect(schema.additionalProperties).toBe(false);
  expect(schema.required).toEqual(['mode']);
});
