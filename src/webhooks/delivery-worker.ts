import { createHmac, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { noTracing, type Tracing } from '../observability/tracing.js';
import type { QueuedEvent, WebhookQueue } from './webhook-queue.js';

/*
 * Delivering stored webhooks to WEBHOOK_FORWARD_URL, at least once. Rules, and why:
 *
 * 1. Each replica is one consumer of the group `forward`; an entry is acknowledged (XACK) only
 *    after a 2xx, so a crash at any point leaves it pending, never lost.
 * 2. A failed attempt is retried with exponential backoff and jitter (1 s doubling to 10 min) by the
 *    replica that holds it; an entry's attempts are its delivery count in the group. After
 *    WEBHOOK_MAX_ATTEMPTS it moves to the dead letters with its last error (atomically with the
 *    acknowledgement), logged at error and counted; an admin can put it back.
 * 3. While the target looks down (no answer, a 5xx or 429), the replica takes no new entries and
 *    probes with its oldest failed one; once that is delivered, the rest follow in stream order. So
 *    an outage keeps each provider's order. A 4xx is about that event alone: it backs off on its
 *    own and the others go on.
 * 4. Entries a replica waits to retry are touched every keep-alive period (XCLAIM JUSTID), so other
 *    replicas see them as held. Entries left untouched for the claim time (a replica that died) are
 *    taken over (XAUTOCLAIM) and delivered at once.
 * 5. Shutdown: no new entries are taken; the delivery in flight finishes; the rest stay pending for
 *    the next replica.
 */

export interface DeliveryTimings {
  /** How long one read waits for new entries. */
  blockMs: number;
  /** Pending entries untouched this long belong to a replica that died. */
  claimIdleMs: number;
  keepAliveMs: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  /** The deadline of one delivery. */
  timeoutMs: number;
}

export const defaultDeliveryTimings: DeliveryTimings = {
  blockMs: 1_000,
  claimIdleMs: 60_000,
  keepAliveMs: 20_000,
  baseBackoffMs: 1_000,
  maxBackoffMs: 600_000,
  timeoutMs: 10_000,
};

export interface DeliveryWorkerOptions {
  queue: WebhookQueue;
  url: string;
  /** The forward secret's key bytes (the base64 part of `whsec_…`). */
  secret: Buffer;
  maxAttempts: number;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  random?: () => number;
  timings?: Partial<DeliveryTimings>;
  /** Each attempt is a CLIENT span (provider, attempt, outcome), whose traceparent the target receives. */
  tracing?: Tracing;
}

export interface DeliveryWorker {
  start(): void;
  /** Stops taking entries; resolves once the delivery in flight has finished. */
  stop(): Promise<void>;
}

/** Standard Webhooks: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. */
export function standardSignature(secret: Buffer, id: string, timestampS: number, body: string): string {
  return `v1,${createHmac('sha256', secret).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

export function createDeliveryWorker(options: DeliveryWorkerOptions): DeliveryWorker {
  const { queue, secret, maxAttempts, clock, logger, metrics } = options;
  const tracing = options.tracing ?? noTracing;
  const random = options.random ?? Math.random;
  const timings = { ...defaultDeliveryTimings, ...options.timings };
  const target = new URL(options.url);
  const pool = new Pool(target.origin, { connections: 4, headersTimeout: timings.timeoutMs, bodyTimeout: timings.timeoutMs });
  const path = `${target.pathname}${target.search}`;
  const consumer = `broker-${process.pid}-${randomBytes(4).toString('hex')}`;
  const log = logger.child({ component: 'webhook-delivery' });

  /** Own entries waiting for another attempt, and when it is due. */
  const waiting = new Map<string, number>();
  let targetDown = false;
  let stopping = false;
  let running: Promise<void> | undefined;
  let nextKeepAlive = 0;
  let nextAdopt = 0;
  let nextStats = 0;
  let loopFailureLogged = false;

  const backoffMs = (attempts: number) => {
    const exponential = Math.min(timings.maxBackoffMs, timings.baseBackoffMs * 2 ** (attempts - 1));
    return Math.min(timings.maxBackoffMs, Math.round(exponential * (0.75 + random() / 2)));
  };

  /** One attempt, in a span of its own (its log lines carry its ids); true when delivered. */
  function deliver(event: QueuedEvent): Promise<boolean> {
    const attributes = {
      'broker.webhook.provider': event.provider,
      'broker.webhook.attempt': event.attempts,
      'http.request.method': 'POST',
    };
    return tracing.inSpan(
      'POST webhook delivery',
      attributes,
      async (span) => {
        const headers: Record<string, string> = {};
        span.inject(headers);
        const { outcome, reason } = await attempt(event, headers);
        span.set({ 'broker.outcome': outcome });
        if (reason !== undefined) span.fail(reason);
        return outcome === 'delivered';
      },
      'client',
    );
  }

  /** One attempt, with the trace context headers of its span. */
  async function attempt(
    event: QueuedEvent,
    traceHeaders: Record<string, string>,
  ): Promise<{ outcome: 'delivered' | 'failed' | 'dead'; reason?: string }> {
    const body = `{"provider":${JSON.stringify(event.provider)},"receivedAt":${JSON.stringify(event.receivedAt)},"event":${event.body}}`;
    const timestampS = Math.floor(clock() / 1000);
    const fields = { eventId: event.eventId, provider: event.provider, eventType: event.type, attempt: event.attempts };
    let failure: { reason: string; down: boolean };
    try {
      const reply = await pool.request({
        method: 'POST',
        path,
        headers: {
          ...traceHeaders,
          'content-type': 'application/json',
          'webhook-id': event.eventId,
          'webhook-timestamp': String(timestampS),
          'webhook-signature': standardSignature(secret, event.eventId, timestampS, body),
        },
        body,
        signal: AbortSignal.timeout(timings.timeoutMs),
      });
      await reply.body.dump();
      if (reply.statusCode >= 200 && reply.statusCode < 300) {
        await queue.ack(event.entryId);
        metrics.webhookDelivery('delivered');
        log.info(fields, 'webhook delivered');
        if (targetDown) {
          // Back up: what waited behind the probe follows now, in stream order.
          targetDown = false;
          for (const id of waiting.keys()) waiting.set(id, 0);
        }
        return { outcome: 'delivered' };
      }
      failure = { reason: `status ${reply.statusCode}`, down: reply.statusCode >= 500 || reply.statusCode === 429 };
    } catch (error) {
      failure = { reason: (error as { code?: string }).code ?? (error as Error).name, down: true };
    }

    if (event.attempts >= maxAttempts) {
      await queue.deadLetter(event, failure.reason);
      waiting.delete(event.entryId);
      metrics.webhookDelivery('dead');
      log.error({ ...fields, reason: failure.reason }, 'webhook dead-lettered after its last attempt');
      return { outcome: 'dead', reason: failure.reason };
    }
    waiting.set(event.entryId, clock() + backoffMs(event.attempts));
    if (failure.down) targetDown = true;
    else if (targetDown) {
      // Any answer but a 5xx or 429 says the target is up: this event is refused on its own, and
      // what waited behind it goes on.
      targetDown = false;
      for (const [id, at] of waiting) if (id !== event.entryId && at > clock()) waiting.set(id, 0);
    }
    metrics.webhookDelivery('failed');
    log.warn({ ...fields, reason: failure.reason }, 'webhook delivery failed; will retry');
    return { outcome: 'failed', reason: failure.reason };
  }

  /** Own retries that are due, oldest first; while the target is down, only the oldest, as a probe. */
  async function retryDue(): Promise<void> {
    const now = clock();
    const due = [...waiting].filter(([, at]) => at <= now).map(([id]) => id);
    due.sort(compareIds);
    const oldest = [...waiting.keys()].sort(compareIds)[0];
    for (const id of targetDown ? due.filter((candidate) => candidate === oldest) : due) {
      if (stopping) return;
      await keepAliveIfDue();
      waiting.delete(id);
      const event = await queue.reclaim(consumer, id);
      if (event !== undefined && !(await deliver(event)) && targetDown) return;
    }
  }

  /** Tells the other replicas what this one holds, when due: also between deliveries, as one pass can be long. */
  async function keepAliveIfDue(): Promise<void> {
    const now = clock();
    if (now < nextKeepAlive) return;
    nextKeepAlive = now + timings.keepAliveMs;
    await queue.keepAlive(consumer, [...waiting.keys()]);
  }

  async function pass(): Promise<void> {
    const now = clock();
    await keepAliveIfDue();
    if (now >= nextAdopt) {
      nextAdopt = now + Math.min(5_000, timings.claimIdleMs / 4);
      for (const event of await queue.adoptStale(consumer, timings.claimIdleMs, 16)) {
        log.info({ eventId: event.eventId, provider: event.provider }, 'webhook taken over from a replica that stopped delivering');
        if (stopping || targetDown) waiting.set(event.entryId, 0);
        else await deliver(event);
      }
    }
    if (now >= nextStats) {
      nextStats = now + 5_000;
      metrics.webhookBacklog((await queue.stats(now)).oldestPendingAgeS ?? 0);
    }
    await retryDue();
    if (stopping) return;
    // Nothing left to probe with (the last one was delivered or dead-lettered): read on.
    if (waiting.size === 0) targetDown = false;
    if (targetDown || waiting.size > 0) {
      // Retries first; new entries wait until what failed before them is through (rule 3).
      const next = Math.min(...waiting.values());
      await sleep(Math.max(10, Math.min(timings.blockMs, next - clock())));
      if (targetDown) return;
    }
    for (const event of await queue.readNew(consumer, 16, timings.blockMs)) {
      // Stopping: what was read stays pending, for the next replica (or this one's restart).
      if (stopping) return;
      await keepAliveIfDue();
      if (targetDown) waiting.set(event.entryId, 0);
      else await deliver(event);
    }
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      try {
        await pass();
        loopFailureLogged = false;
      } catch (error) {
        // Redis down or failing: nothing is lost (entries stay pending); try again shortly.
        if (!loopFailureLogged) log.warn({ reason: (error as Error).message }, 'webhook delivery paused: the queue is unreachable');
        loopFailureLogged = true;
        await sleep(1_000);
      }
    }
  }

  return {
    start() {
      running ??= loop();
    },
    async stop() {
      stopping = true;
      await running;
      await pool.close();
    },
  };
}

/** Stream ids (`<ms>-<seq>`) in stream order. */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
