import { hash } from 'node:crypto';
import express, { type Express } from 'express';
import type { Clock } from '../../clock.js';
import { AppError } from '../../errors.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Tracing } from '../../observability/tracing.js';
import { refusalDetails, verifiers, webhookProviders, type WebhookProvider } from '../../webhooks/signatures.js';
import type { WebhookQueue } from '../../webhooks/webhook-queue.js';
import { parseBody } from '../parse-body.js';
import { methodNotAllowed } from '../problem.js';

export interface WebhookRouteDeps {
  queue: WebhookQueue;
  /** A provider's route exists only when it has secrets. */
  secrets: Record<WebhookProvider, readonly string[]>;
  toleranceS: number;
  clock: Clock;
  metrics: Metrics;
  tracing: Tracing;
}

export const webhookPath = (provider: WebhookProvider) => `/v1/webhooks/${provider}`;

const rawBody = express.raw({ type: () => true, limit: '256kb' });
/** Where each provider puts the event's type. */
const typeField: Record<WebhookProvider, string> = { benji: 'event', starship: 'event_type' };

/**
 * `POST /v1/webhooks/{benji,starship}`. In order: the body's raw bytes (413 past 256 KiB), the
 * signature over exactly those bytes against every configured secret (401 invalid_signature, the
 * detail saying which check failed), a JSON object (400), then one atomic "seen + stored" step. The
 * answer is 200 only once the event is in the store; a store that cannot be reached is 503 with
 * Retry-After (both providers retry), never a 2xx for an event not stored.
 */
export function mountWebhookRoutes(app: Express, { queue, secrets, toleranceS, clock, metrics, tracing }: WebhookRouteDeps): void {
  for (const provider of webhookProviders) {
    if (secrets[provider].length === 0) continue;
    const path = webhookPath(provider);
    // Each outcome is counted and put on the request's span (a refusal's reason as its error type).
    const received = (outcome: 'stored' | 'duplicate' | 'rejected', reason?: string) => {
      metrics.webhookReceived(provider, outcome, reason);
      tracing.annotate({
        'broker.webhook.provider': provider,
        'broker.outcome': outcome,
        ...(outcome === 'rejected' ? { 'error.type': reason } : { 'broker.webhook.duplicate': outcome === 'duplicate' }),
      });
    };
    app.post(path, async (req, res) => {
      try {
        await parseBody(rawBody, req, res);
      } catch (error) {
        received('rejected', 'body');
        throw error;
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const refusal = verifiers[provider](req.headers, body, { secrets: secrets[provider], nowMs: clock(), toleranceS });
      if (refusal !== undefined) {
        received('rejected', refusal);
        throw new AppError('invalid_signature', refusalDetails[refusal], { logFields: { reason: refusal } });
      }
      const event = jsonObject(body);
      if (event === undefined) {
        received('rejected', 'not_json_object');
        throw new AppError('invalid_request', 'The body must be a JSON object.');
      }
      const eventId = providerId(event) ?? hash('sha256', body, 'hex');
      const type = plainText(event[typeField[provider]]) ?? 'unknown';
      let outcome: 'stored' | 'duplicate';
      try {
        outcome = await queue.append({ provider, eventId, type, receivedAt: new Date(clock()).toISOString(), body: body.toString('utf8') });
      } catch (error) {
        throw new AppError('store_unavailable', 'The event could not be stored; retry later.', {
          retryAfterS: 10,
          logFields: { provider, eventId },
          cause: error,
        });
      }
      received(outcome);
      req.log.info({ requestId: req.id, provider, eventId, eventType: type, duplicate: outcome === 'duplicate' }, 'webhook received');
      res.json(outcome === 'stored' ? { received: true } : { received: true, duplicate: true });
    });
    app.route(path).all(methodNotAllowed(['POST']));
  }
}

function jsonObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The provider's own event id, when the body has a plain one. */
function providerId(event: Record<string, unknown>): string | undefined {
  for (const field of ['id', 'event_id']) {
    const value = event[field];
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
    const text = plainText(value);
    if (text !== undefined) return text;
  }
  return undefined;
}

/** Printable ASCII, at most 200 characters: what a provider sends may end up in a log line or a header. */
function plainText(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\x21-\x7e]{1,200}$/.test(value) ? value : undefined;
}
