import { components, content, json, named, otherMethods, probes, problem, retryAfter } from '../openapi.js';
import { z } from 'zod';
import type { WebhookProvider } from '../../webhooks/signatures.js';
import { exchangeBody, linkExamples, linkStatusBody } from './benji-link-schema.js';
import { connectTokenBody, connectTokenResponse } from './connect-token-schema.js';

/** The public door's OpenAPI description (served as /openapi.json). */

export const webhookReceipt = z.object({ received: z.literal(true), duplicate: z.literal(true).optional() });

/** Sent on every connect-token answer that was counted: a 200, a 429, and Benji's failures. */
const rateLimitHeaders = {
  'RateLimit-Limit': { description: 'Connect tokens allowed per minute (CONNECT_TOKEN_RATE_LIMIT)', schema: { type: 'integer' } },
  'RateLimit-Remaining': { description: 'Calls left in the current window', schema: { type: 'integer' } },
  'RateLimit-Reset': { description: 'Seconds until the window ends', schema: { type: 'integer' } },
};

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

const webhookRoute = (provider: WebhookProvider) => ({
  post: {
    summary: `Receive a ${provider === 'benji' ? 'Benji' : 'Starship'} webhook (only when ${provider === 'benji' ? 'BENJI_WEBHOOK_SALT' : 'STARSHIP_WEBHOOK_SECRET'} is set)`,
    description:
      provider === 'benji'
        ? 'x-benji-signature: HMAC-SHA256 keyed with the salt over the x-benji-timestamp value followed by the raw body, hex or base64; the timestamp (an HTTP date or ISO) within WEBHOOK_TOLERANCE_S. Stored once per event (id: the SHA-256 of the raw body), then answered.'
        : 'X-Signature: lowercase hex HMAC-SHA256 keyed with the secret over X-Timestamp + "." + the raw body; X-Timestamp (unix seconds) within WEBHOOK_TOLERANCE_S. Stored once per event (id: the body’s id, else the SHA-256 of the raw body), then answered.',
    requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
    responses: {
      '200': {
        description: 'Stored (or a duplicate of a stored event)',
        content: content(webhookReceipt, { stored: { received: true }, duplicate: { received: true, duplicate: true } }),
      },
      '400': problem('invalid_request: the body is not a JSON object'),
      '401': problem('invalid_signature: missing or wrong signature, or a timestamp outside the window (the detail says which)'),
      '413': problem('payload_too_large: body over 256 KiB'),
      '503': problem('store_unavailable: not stored (Redis down), with Retry-After; the provider retries', retryAfter),
    },
  },
});

export function publicOpenApi(webhookRoutes: readonly WebhookProvider[] = []): object {
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
      '/v1/benji/exchange': {
        post: {
          summary: 'Link the signed-in user’s Benji account: exchange the token Benji’s SDK handed over',
          description:
            'After Benji Connect, the SDK’s onSuccess hands the frontend a short-lived exchange token; the broker exchanges it with the partner key and keeps the user’s Benji tokens (encrypted, server-side). The answer never holds a Benji token. A new exchange replaces the user’s link. Counts towards the connect-token rate limit (one budget per user). Not served with FRONTEND_AUTH=none (404).',
          security: [{ userJwt: [] }],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: json(exchangeBody, 'input'), examples: named({ exchange: linkExamples.exchange }) } },
          },
          responses: {
            '200': {
              description: 'Linked (Cache-Control: no-store)',
              headers: rateLimitHeaders,
              content: content(linkStatusBody, { linked: linkExamples.linked }),
            },
            '400': problem('invalid_exchange_token: Benji refused it (invalid, expired or spent); invalid_request: the body'),
            '401': problem('unauthenticated: missing, invalid or expired user token'),
            '413': problem('payload_too_large: body over 16 KB'),
            '415': problem('unsupported_media_type: body not application/json, or in a charset other than UTF-8'),
            '429': problem('rate_limited', { ...retryAfter, ...rateLimitHeaders }),
            '502': problem('upstream_error'),
            '503': problem('store_unavailable (Redis), upstream_throttled or auth_unavailable, with Retry-After where known'),
            '504': problem('upstream_timeout'),
          },
        },
      },
      ...Object.fromEntries(webhookRoutes.map((provider) => [`/v1/webhooks/${provider}`, webhookRoute(provider)])),
      '/v1/benji/link': {
        get: {
          summary: 'Whether the signed-in user has linked a Benji account (never a token)',
          description: 'Not served with FRONTEND_AUTH=none (404).',
          security: [{ userJwt: [] }],
          responses: {
            '200': {
              description: 'The link, or {"linked":false} (Cache-Control: no-store)',
              content: content(linkStatusBody, { linked: linkExamples.linked, notLinked: linkExamples.notLinked }),
            },
            '401': problem('unauthenticated'),
            '503': problem('store_unavailable, with Retry-After; or auth_unavailable'),
          },
        },
        delete: {
          summary: 'Unlink: the broker forgets the user’s Benji tokens',
          description:
            'Idempotent. Once it has answered, no replica sends the user’s Benji token again. Not served with FRONTEND_AUTH=none (404).',
          security: [{ userJwt: [] }],
          responses: {
            '204': { description: 'Not linked (any more)' },
            '401': problem('unauthenticated'),
            '503': problem('store_unavailable, with Retry-After; or auth_unavailable'),
          },
        },
      },
    },
  };
}
