import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CallHistogram } from './call-histogram.js';

/**
 * The broker's Prometheus metrics, in a registry of its own (no global state, so two brokers in one
 * test process do not collide). Labels hold doors, routes, operations and outcomes — never a user id,
 * a caller key or a token.
 */

/** What the upstream clients report: one observation per upstream call. */
export interface UpstreamMetrics {
  observe(upstream: 'benji' | 'starship', operation: string, outcome: string, seconds: number): void;
}

/** What the token manager reports. */
export interface TokenMetrics {
  renewal(kind: 'login' | 'refresh', result: string): void;
  lockWait(seconds: number, outcome: 'acquired' | 'adopted' | 'store_down' | 'timeout'): void;
  storeError(action: string): void;
}

export const noMetrics: UpstreamMetrics & TokenMetrics & AuthMetrics = {
  userToken: () => undefined,
  observe: () => undefined,
  renewal: () => undefined,
  lockWait: () => undefined,
  storeError: () => undefined,
};

/** What happens to linked users' Benji tokens (credentials/benji-links.ts). */
export type LinkEvent = 'linked' | 'refreshed' | 'refresh_failed' | 'refresh_refused' | 'removed';

/** Values read at scrape time, from the token manager's memory (no I/O). */
export interface SessionGauges {
  accessExpiresAt(): number | undefined;
  cooldownUntil(): number | undefined;
}

/** What the public door's authentication reports. */
export interface AuthMetrics {
  userToken(outcome: 'verified' | 'cached' | 'rejected'): void;
}

export interface Metrics extends UpstreamMetrics, TokenMetrics, AuthMetrics {
  /** An upstream refused a call made with a credential that cannot be renewed (a static key). */
  credentialRejected(upstream: 'benji' | 'starship', credential: string): void;
  readonly registry: Registry;
  /** One request served; the caller is a configured service name (bounded), never a user. */
  observeRequest(door: string, route: string, method: string, status: number, caller: string, seconds: number): void;
  redisError(source: string): void;
  linkEvent(event: LinkEvent): void;
  /** A webhook received: stored, duplicate, or rejected for `reason`. */
  webhookReceived(provider: string, outcome: 'stored' | 'duplicate' | 'rejected', reason?: string): void;
  webhookDelivery(outcome: 'delivered' | 'failed' | 'dead'): void;
  /** Age of the oldest webhook not yet delivered, in seconds (0: none). */
  webhookBacklog(seconds: number): void;
  watchSession(gauges: SessionGauges, now: () => number): void;
}

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const httpDuration = new CallHistogram({
    name: 'broker_http_request_duration_seconds',
    help: 'Requests served, by door, route pattern, method, status and internal caller (none on the public door).',
    labelNames: ['door', 'route', 'method', 'status', 'caller'],
    buckets: latencyBuckets,
    registers: [registry],
  });
  const upstreamDuration = new CallHistogram({
    name: 'broker_upstream_request_duration_seconds',
    help: 'Calls to Benji and Starship, by operation and outcome (HTTP status, timeout or error).',
    labelNames: ['upstream', 'operation', 'outcome'],
    buckets: latencyBuckets,
    registers: [registry],
  });
  const renewals = new Counter({
    name: 'broker_starship_token_renewals_total',
    help: 'Starship logins and refreshes, by result.',
    labelNames: ['kind', 'result'] as const,
    registers: [registry],
  });
  const lockWaits = new Histogram({
    name: 'broker_starship_lock_wait_seconds',
    help: 'Time spent waiting for the renewal lock shared by replicas, by how the wait ended.',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
    registers: [registry],
  });
  const userTokens = new Counter({
    name: 'broker_user_token_checks_total',
    help: 'User JWTs checked on the public door: verified (signature checked), cached (verified before), rejected.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const credentialRejections = new Counter({
    name: 'broker_upstream_credential_rejections_total',
    help: 'Calls an upstream refused (401) that were made with a credential the broker cannot renew, by upstream and credential.',
    labelNames: ['upstream', 'credential'] as const,
    registers: [registry],
  });
  const linkEvents = new Counter({
    name: 'broker_benji_link_events_total',
    help: 'Linked users: links stored (linked), user tokens refreshed, refreshes failed or refused by Benji, links removed.',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  const webhooksReceived = new Counter({
    name: 'broker_webhooks_received_total',
    help: 'Webhooks received, by provider and outcome (stored, duplicate, rejected) and, for rejections, the reason.',
    labelNames: ['provider', 'outcome', 'reason'] as const,
    registers: [registry],
  });
  const webhookDeliveries = new Counter({
    name: 'broker_webhook_deliveries_total',
    help: 'Attempts to forward a webhook to WEBHOOK_FORWARD_URL: delivered, failed (to be retried), dead (dead-lettered).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const webhookBacklog = new Gauge({
    name: 'broker_webhook_oldest_pending_seconds',
    help: 'Age of the oldest webhook the delivery group has not acknowledged (0 when none), as this replica last saw it.',
    registers: [registry],
  });
  const redisErrors = new Counter({
    name: 'broker_redis_errors_total',
    help: 'Redis failures: lost connections and failed token-store calls.',
    labelNames: ['source'] as const,
    registers: [registry],
  });

  return {
    registry,
    observeRequest: (door, route, method, status, caller, seconds) =>
      httpDuration.record([door, route, method, String(status), caller], seconds),
    observe: (upstream, operation, outcome, seconds) => upstreamDuration.record([upstream, operation, outcome], seconds),
    renewal: (kind, result) => renewals.inc({ kind, result }),
    lockWait: (seconds, outcome) => lockWaits.observe({ outcome }, seconds),
    storeError: (action) => redisErrors.inc({ source: `store_${action.replace(/\s+/g, '_')}` }),
    redisError: (source) => redisErrors.inc({ source }),
    linkEvent: (event) => linkEvents.inc({ event }),
    webhookReceived: (provider, outcome, reason = '') => webhooksReceived.inc({ provider, outcome, reason }),
    webhookDelivery: (outcome) => webhookDeliveries.inc({ outcome }),
    webhookBacklog: (seconds) => webhookBacklog.set(seconds),
    credentialRejected: (upstream, credential) => credentialRejections.inc({ upstream, credential }),
    userToken: (outcome) => userTokens.inc({ outcome }),
    watchSession(gauges, now) {
      new Gauge({
        name: 'broker_starship_access_token_expires_in_seconds',
        help: 'Seconds until the Starship access token in hand expires (negative: expired; absent: none).',
        registers: [registry],
        collect() {
          const expiresAt = gauges.accessExpiresAt();
          this.reset();
          if (expiresAt !== undefined) this.set((expiresAt - now()) / 1000);
        },
      });
      new Gauge({
        name: 'broker_starship_login_cooldown_seconds',
        help: 'Seconds left in the shared Starship login cooldown (0 when none).',
        registers: [registry],
        collect() {
          const until = gauges.cooldownUntil();
          this.set(until === undefined ? 0 : Math.max(0, (until - now()) / 1000));
        },
      });
    },
  };
}
