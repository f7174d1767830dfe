import { z } from 'zod';
import { healthBody } from './door-app.js';
import { readinessBody } from './readiness.js';
import { problemBody } from './problem.js';

/**
 * What the OpenAPI 3.1 descriptions of both doors share (public/public-openapi.ts,
 * internal/internal-openapi.ts): they are generated from the zod schemas that validate requests and
 * shape responses, so a description cannot drift from the code. Examples are checked against the
 * same schemas by test/http/openapi.test.ts.
 */

export const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any' });
export const content = (schema: z.ZodType, examples?: Record<string, unknown>) => ({
  'application/json': {
    schema: json(schema),
    ...(examples !== undefined && { examples: named(examples) }),
  },
});
export const problem = (description: string, headers?: object) => ({
  description,
  ...(headers !== undefined && { headers }),
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

export const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } };
export const otherMethods = 'Any other method on a path listed here answers 405 method_not_allowed with Allow; unknown paths answer 404.';

export const problemExample = {
  type: 'about:blank',
  title: 'Invalid request',
  status: 400,
  detail: 'mode: must be one of "connect", "transfer", "redeem", or their numbers 1, 3, 4',
  code: 'invalid_request',
  requestId: '4f1c7a52-2f0e-4a43-9d7e-3d2b9c1e8a10',
};

/** Probes every door answers. */
export const probes = {
  '/healthz': {
    get: { summary: 'Liveness: the process answers', responses: { '200': { description: 'Alive', content: content(healthBody) } } },
  },
  '/readyz': {
    get: {
      summary: 'Readiness: 200 while this door can serve (ok or degraded), 503 when it cannot or once shutdown began',
      responses: {
        '200': { description: 'Serving', content: content(readinessBody) },
        '503': { description: 'Not serving', content: content(readinessBody) },
      },
    },
  },
  '/openapi.json': { get: { summary: 'This description', responses: { '200': { description: 'OpenAPI 3.1 document' } } } },
};

export const components = (securitySchemes: object) => ({
  schemas: { Problem: { ...json(problemBody), examples: [problemExample] } },
  securitySchemes,
});

export function named(examples: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(examples).map(([name, value]) => [name, { value }]));
}
