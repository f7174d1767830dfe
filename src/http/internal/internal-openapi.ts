import { components, content, json, named, otherMethods, probes, problem } from '../openapi.js';
import { renewBody, sessionStatusBody } from './admin-routes.js';
import { linkDetailsBody } from './benji-links-route.js';
import { webhookStatsBody } from './webhook-admin-routes.js';

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
  const benjiProxy = (asUser: boolean) => ({
    summary: asUser ? 'Call Benji as a linked user, with their access token' : 'Call Benji’s partner API with the partner key',
    description: `Forwarded to {BENJI_BASE_URL}/{path}?{query} with x-api-key: ${asUser ? 'the user’s Benji access token (refreshed by the broker; on a 401 renewed and replayed once)' : 'the partner key'}, when the path starts with a prefix of BENJI_PROXY_ALLOW (/auth never). Benji’s own statuses pass through. The same methods, header hygiene, streaming and deadline (BENJI_TIMEOUT_MS) as the Starship proxy.`,
    security: service,
    parameters: [
      ...(asUser
        ? [
            {
              name: 'userId',
              in: 'path',
              required: true,
              description: 'The frontend user id the link was stored under (the verified FRONTEND_USER_CLAIM), percent-encoded',
              schema: { type: 'string' },
            },
          ]
        : []),
      { name: 'path', in: 'path', required: true, description: 'Benji path, e.g. users/123', schema: { type: 'string' } },
    ],
    responses: {
      default: { description: 'Benji’s answer, streamed' },
      ...(asUser && { '400': problem('invalid_request: the user id is not valid') }),
      ...denied,
      ...(asUser && { '404': problem('not_linked: the user has no link, or Benji refused to refresh it (connect again)') }),
      '413': problem('payload_too_large: body over 1 MiB'),
      '502': problem('upstream_error'),
      '503': problem(asUser ? 'store_unavailable or upstream_throttled, with Retry-After' : 'upstream_throttled, with Retry-After'),
      '504': problem('upstream_timeout'),
    },
  });
  const partnerProxy = benjiProxy(false);
  const userProxy = benjiProxy(true);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Token broker — internal door',
      version: '1',
      description: `Starship Rewards and Benji for internal services; operations. ${otherMethods}`,
    },
    components: components({ serviceKey: { type: 'http', scheme: 'bearer', description: 'A key from INTERNAL_API_KEYS' } }),
    paths: {
      ...probes,
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Text exposition format' } } } },
      '/v1/starship/{path}': { get: proxy, head: proxy, post: proxy, put: proxy, patch: proxy, delete: proxy },
      '/v1/benji/{path}': {
        get: partnerProxy,
        head: partnerProxy,
        post: partnerProxy,
        put: partnerProxy,
        patch: partnerProxy,
        delete: partnerProxy,
      },
      '/v1/benji-users/{userId}/{path}': {
        get: userProxy,
        head: userProxy,
        post: userProxy,
        put: userProxy,
        patch: userProxy,
        delete: userProxy,
      },
      '/v1/benji/links/{userId}': {
        get: {
          summary: 'A user’s Benji link: the Benji user and merchant ids, e.g. for triggers (never a token)',
          security: service,
          parameters: [
            {
              name: 'userId',
              in: 'path',
              required: true,
              description: 'The frontend user id the link was stored under',
              schema: { type: 'string' },
            },
          ],
          responses: {
            '200': {
              description: 'The link, or {"linked":false}',
              content: content(linkDetailsBody, {
                linked: {
                  linked: true,
                  benjiUserId: '1001',
                  merchantId: '77',
                  linkedAt: '2026-12-02T09:30:00.000Z',
                  accessExpiresAt: '2027-03-02T09:30:00.000Z',
                },
                notLinked: { linked: false },
              }),
            },
            ...denied,
            '503': problem('store_unavailable, with Retry-After'),
          },
        },
      },
      '/v1/admin/webhooks': {
        get: {
          summary: 'Received webhooks: stored, pending delivery, dead letters, age of the oldest pending',
          security: service,
          responses: {
            '200': {
              description: 'Counts',
              content: content(webhookStatsBody, { counts: { stored: 1200, pending: 3, dead: 1, oldestPendingAgeS: 42 } }),
            },
            ...denied,
            '503': problem('store_unavailable, with Retry-After'),
          },
        },
      },
      '/v1/admin/webhooks/dead/{id}/retry': {
        post: {
          summary: 'Put a dead letter back for delivery',
          security: service,
          parameters: [
            {
              name: 'id',
              in: 'path',
              required: true,
              description: 'The dead letter’s stream id (XRANGE {prefix}webhooks:dead)',
              schema: { type: 'string' },
            },
          ],
          responses: {
            '200': { description: 'Back in the stream, delivered like a new event' },
            '400': problem('invalid_request: not a stream id'),
            ...denied,
            '404': problem('not_found: no such dead letter'),
            '503': problem('store_unavailable, with Retry-After'),
          },
        },
      },
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
