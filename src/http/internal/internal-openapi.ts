import { components, content, json, named, otherMethods, probes, problem } from '../openapi.js';
import { renewBody, sessionStatusBody } from './admin-routes.js';

/** The internal door's OpenAPI description (served as /openapi.json). */

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
            '409': problem('no_session: STARSHIP_AUTH=api-key, there is no session to renew'),
            '502': problem('upstream_error'),
            '503': problem('upstream_throttled, with Retry-After'),
            '504': problem('upstream_timeout: Starship did not answer the login (or logout) in time'),
          },
        },
      },
    },
  };
}
