import type { WebhookProvider } from './signatures.js';

/** A verified event as it is stored: its raw JSON body, byte for byte. */
export interface StoredEvent {
  provider: WebhookProvider;
  /** The provider's event id when the body has one, else the SHA-256 of the raw body. */
  eventId: string;
  /** The provider's event type (`order.delivered`, `user_partner_authentication_created`), for logs. */
  type: string;
  /** ISO 8601. */
  receivedAt: string;
  body: string;
}

/** An event taken for delivery by one consumer. */
export interface QueuedEvent extends StoredEvent {
  /** The stream entry's id. */
  entryId: string;
  /** How many times it has been handed out for delivery, this one included. */
  attempts: number;
}

export interface QueueStats {
  /** Entries in the stream. */
  stored: number;
  /** Entries the delivery group has not acknowledged: handed out and unacknowledged, or not read yet. */
  pending: number;
  dead: number;
  /** Age of the oldest of those, in seconds; null when none. */
  oldestPendingAgeS: number | null;
}

/**
 * The durable queue of received webhooks: a Redis Stream read by the consumer group `forward`
 * (redis-webhook-queue.ts), or memory for a single replica (memory-webhook-queue.ts). Every method
 * rejects when the store cannot be reached.
 */
export interface WebhookQueue {
  /** Marks the event seen (7 days) and appends it, as one atomic step; `duplicate` when seen before. */
  append(event: StoredEvent): Promise<'stored' | 'duplicate'>;
  /** Entries nobody has been handed yet, oldest first, waiting up to `blockMs` for one. */
  readNew(consumer: string, count: number, blockMs: number): Promise<QueuedEvent[]>;
  /** Takes `entryId` again for another attempt (counted); undefined when it is no longer pending. */
  reclaim(consumer: string, entryId: string): Promise<QueuedEvent | undefined>;
  /** Tells other replicas these entries are still ours (they are waiting for a retry, not abandoned). */
  keepAlive(consumer: string, entryIds: readonly string[]): Promise<void>;
  /** Entries another consumer (a replica that died) left untouched for `minIdleMs`, now ours. */
  adoptStale(consumer: string, minIdleMs: number, count: number): Promise<QueuedEvent[]>;
  ack(entryId: string): Promise<void>;
  /** Moves the event to the dead letters with its last error, and acknowledges it, atomically. */
  deadLetter(event: QueuedEvent, lastError: string): Promise<void>;
  /** Puts a dead letter back for delivery; false when there is no such dead letter. */
  retryDead(deadId: string): Promise<boolean>;
  stats(nowMs: number): Promise<QueueStats>;
}

export const seenForS = 7 * 86_400;
export const deliveryGroup = 'forward';
