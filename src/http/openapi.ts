import { z } from 'zod';
import { renewBody, sessionStatusBody } from './admin-routes.js';
import { healthBody, readinessBody } from './base-app.js';
import { connectTokenBody, connectTokenResponse } from './connect-token-schema.js';
import { problemBody } from './problem.js';

/**
 * The OpenAPI 3.1 description of each door, generated from the zod schemas that validate requests
 * and shape responses, so the description cannot drift from the code. Examples are checked against
 * the same schemas by test/http/openapi.test.ts.
 */

const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any' });
const content = (schema: z.ZodType, examples?: Record<string, unknown>) => ({
  'application/json': {
    schema: json(schema),
    ...(examples !== undefined && { examples: named(examples) }),
  },
});
const problem = (description: string, headers?: object) => ({
  description,
  ...(headers !== undefined && { headers }),
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** Sent on every connect-token answer that was counted: a 200, a 429, and Benji's failures. */
const rateLimitHeaders = {
  'RateLimit-Limit': { description: 'Connect tokens allowed per minute (CONNECT_TOKEN_RATE_LIMIT)', schema: { type: 'integer' } },
  'RateLimit-Remaining': { description: 'Calls left in the current window', schema: { type: 'integer' } },
  'RateLimit-Reset': { description: 'Seconds until the window ends', schema: { type: 'integer' } },
};
const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } };
const otherMethods = 'Any other method on a path listed here answers 405 method_not_allowed with Allow; unknown paths answer 404.';

export const connectTokenExamples = {
  request: {
    connect: { mode: 'connect' },
    transfer: { mode: 'transfer', amount: 1000, allowsEditing: false },
    redeem: { mode: 4, displayName: 'Reward Cookies' },
  },
  response: {
    hosted: {
      token: '0c371a1c-aa81-11ef-b28c-0a58a9feac02',
      mode: 'transfer',
      connectUrl: 'https://connect.withbenji.com/khkgfoud76td',
      hostedUrl: 'https://connect.withbenji.com/khkgfoud76td?connect_token=0c371a1c-aa81-11ef-b28c-0a58a9feac02',
    },
    sdkOnly: { token: '0c371a1c-aa81-11ef-b28c-0a58a9feac02', mode: 'connect', connectUrl: null, hostedUrl: null },
  },
};

export const adminExamples = {
  session: {
    state: 'valid',
    accessExpiresAt: '2030-01-01T00:15:00.000Z',
    refreshExpiresAt: '2030-01-08T00:00:00.000Z',
    clientId: '123456',
    cooldownUntil: null,
  },
  renew: { revokePrevious: true },
};

export const problemExample = {
  type: 'about:blank',
  title: 'Invalid request',
  status: 400,
  detail: 'mode: must be one of "connect", "transfer", "redeem", or their numbers 1, 3, 4',
  code: 'invalid_request',
  requestId: '4f1c7a52-2f0e-4a43-9d7e-3d2b9c1e8a10',
};

/** Probes every door answers. */
const probes = {
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

const components = (securitySchemes: object) => ({
  schemas: { Problem: { ...json(problemBody), examples: [problemExample] } },
  securitySchemes,
});

export function publicOpenApi(): object {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Token broker — public door',
      version: '1',
      description: `Benji Connect tokens for signed-in frontend users. ${otherMethods}`,
    },
    components: components({ userJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } }),
    paths: {
      ...probes,
      '/v1/benji/connect-token': {
        post: {
          summary: 'Issue a Benji Connect token for the signed-in user',
          description:
            'The user id sent to Benji is the verified claim of the bearer JWT; partnership and API key are server-side. The body is UTF-8 JSON. Only calls that pass the token and body checks count towards the rate limit.',
          security: [{ userJwt: [] }],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: json(connectTokenBody, 'input'), examples: named(connectTokenExamples.request) } },
          },
          responses: {
            '200': {
              description: 'A connect token (Cache-Control: no-store)',
              headers: rateLimitHeaders,
              content: content(connectTokenResponse, connectTokenExamples.response),
            },
            '400': problem(
              'invalid_request: empty body, not UTF-8, not JSON, not a JSON object, unknown or invalid fields, amount over the limit',
            ),
            '401': problem('unauthenticated: missing, invalid or expired user token'),
            '403': problem('mode_not_allowed: the mode is not enabled for this partner'),
            '413': problem('payload_too_large: body over 16 KB'),
            '415': problem('unsupported_media_type: body not application/json, or in a charset other than UTF-8'),
            '429': problem('rate_limited', { ...retryAfter, ...rateLimitHeaders }),
            '502': problem('upstream_error', rateLimitHeaders),
            '503': problem('upstream_throttled (with Retry-After) or auth_unavailable'),
            '504': problem('upstream_timeout', rateLimitHeaders),
          },
        },
      },
    },
  };
}

export function internalOpenApi(): object {
  const service = [{ serviceKey: [] }];
  const denied = { '401': problem('unauthenticated: no or unknown service key'), '403': problem('forbidden') };
  const proxy = {
    summary: 'Call Starship Rewards with the broker’s managed token',
    description:
      'Forwarded to {STARSHIP_BASE_URL}/{path}?{query} when the path starts with an allowed prefix. Starship’s own statuses pass through unchanged. Only GET, HEAD, POST, PUT, PATCH and DELETE are forwarded; any other method (TRACE, OPTIONS, CONNECT, WebDAV…) answers 405 method_not_allowed with Allow and reaches nothing.',
    security: service,
    parameters: [
      { name: 'path', in: 'path', required: true, description: 'Starship path, e.g. api/v1/products', schema: { type: 'string' } },
    ],
    responses: {
      default: { description: 'Starship’s answer, streamed' },
      ...denied,
      '413': problem('payload_too_large: body over 1 MiB'),
      '502': problem('upstream_error'),
      '503': problem('upstream_throttled, with Retry-After'),
      '504': problem('upstream_timeout'),
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Token broker — internal door',
      version: '1',
      description: `Starship Rewards for internal services; operations. ${otherMethods}`,
    },
    components: components({ serviceKey: { type: 'http', scheme: 'bearer', description: 'A key from INTERNAL_API_KEYS' } }),
    paths: {
      ...probes,
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Text exposition format' } } } },
      '/v1/starship/{path}': { get: proxy, head: proxy, post: proxy, put: proxy, patch: proxy, delete: proxy },
      '/v1/admin/starship/session': {
        get: {
          summary: 'The shared Starship session (never a token)',
          security: service,
          responses: {
            '200': { description: 'Session state', content: content(sessionStatusBody, { session: adminExamples.session }) },
            ...denied,
          },
        },
      },
      '/v1/admin/starship/session/renew': {
        post: {
          summary: 'Force a fresh Starship login; with revokePrevious, log the old session out first (credential rotation)',
          description: 'The body is UTF-8 JSON; no body at all means {} (a plain renewal). A body of any other type or charset is refused.',
          security: service,
          requestBody: {
            required: false,
            content: { 'application/json': { schema: json(renewBody, 'input'), examples: named({ renew: adminExamples.renew }) } },
          },
          responses: {
            '200': { description: 'The new session state', content: content(sessionStatusBody) },
            '400': problem('invalid_request: not UTF-8, not JSON, not a JSON object, or fields other than revokePrevious'),
            ...denied,
            '413': problem('payload_too_large: body over 1 KB'),
            '415': problem('unsupported_media_type: body not application/json, or in a charset other than UTF-8'),
            '502': problem('upstream_error'),
            '503': problem('upstream_throttled, with Retry-After'),
            '504': problem('upstream_timeout: Starship did not answer the login (or logout) in time'),
          },
        },
      },
    },
  };
}

function named(examples: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(examples).map(([name, value]) => [name, { value }]));
}
