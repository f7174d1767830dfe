import type { Clock } from '../clock.js';
import { seenForS, type QueuedEvent, type StoredEvent, type WebhookQueue } from './webhook-queue.js';

/**
 * The queue of a single replica without Redis: the same semantics as the stream and its group, in
 * memory. Events are lost on restart (the README and the start-up warning say so); fine for the
 * demo and a single test replica.
 */
export function createMemoryWebhookQueue({ clock, maxLen }: { clock: Clock; maxLen: number }): WebhookQueue {
  const seen = new Map<string, number>();
  const entries: (StoredEvent & { entryId: string })[] = [];
  /** Entries handed out and not acknowledged: who has them, and how many times they were handed out. */
  const pending = new Map<string, { consumer: string; attempts: number; since: number }>();
  const dead: (StoredEvent & { entryId: string; error: string })[] = [];
  /** How far the group has read: entries after this index were never handed out. */
  let readUpTo = 0;
  let sequence = 0;
  let appends = 0;
  const waiters: (() => void)[] = [];

  const nextId = () => `${clock()}-${sequence++}`;
  const find = (entryId: string) => entries.find((entry) => entry.entryId === entryId);
  const handOut = (entry: StoredEvent & { entryId: string }, consumer: string): QueuedEvent => {
    const state = pending.get(entry.entryId);
    const attempts = (state?.attempts ?? 0) + 1;
    pending.set(entry.entryId, { consumer, attempts, since: clock() });
    return { ...entry, attempts };
  };

  function trim(): void {
    // Never below what is pending or unread.
    while (entries.length > maxLen && readUpTo > 0 && !pending.has(entries[0]?.entryId ?? '')) {
      entries.shift();
      readUpTo--;
    }
  }

  function append(event: StoredEvent): void {
    entries.push({ ...event, entryId: nextId() });
    trim();
    for (const wake of waiters.splice(0)) wake();
  }

  return {
    async append(event) {
      const key = `${event.provider}:${event.eventId}`;
      const now = clock();
      // Expired marks go now and then, so the map holds about a week of events, not all of them.
      if (seen.size > 1_000 && ++appends % 1_000 === 0) for (const [name, until] of seen) if (until <= now) seen.delete(name);
      const until = seen.get(key);
      if (until !== undefined && until > now) return 'duplicate';
      seen.set(key, now + seenForS * 1000);
      append(event);
      return 'stored';
    },
    async readNew(consumer, count, blockMs) {
      if (readUpTo >= entries.length) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, blockMs);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      const batch = entries.slice(readUpTo, readUpTo + count);
      readUpTo += batch.length;
      return batch.map((entry) => handOut(entry, consumer));
    },
    async reclaim(consumer, entryId) {
      const entry = find(entryId);
      return entry === undefined || !pending.has(entryId) ? undefined : handOut(entry, consumer);
    },
    async keepAlive(consumer, entryIds) {
      for (const id of entryIds) {
        const state = pending.get(id);
        if (state !== undefined) pending.set(id, { ...state, consumer, since: clock() });
      }
    },
    async adoptStale(consumer, minIdleMs, count) {
      const now = clock();
      const stale = [...pending].filter(([, state]) => now - state.since >= minIdleMs).slice(0, count);
      return stale.flatMap(([id]) => {
        const entry = find(id);
        return entry === undefined ? [] : [handOut(entry, consumer)];
      });
    },
    async ack(entryId) {
      pending.delete(entryId);
      trim();
    },
    async deadLetter(event, lastError) {
      const { attempts: _attempts, ...stored } = event;
      dead.push({ ...stored, entryId: nextId(), error: lastError });
      pending.delete(event.entryId);
    },
    async retryDead(deadId) {
      const at = dead.findIndex((entry) => entry.entryId === deadId);
      if (at === -1) return false;
      const [letter] = dead.splice(at, 1);
      if (letter !== undefined) {
        const { entryId: _entryId, error: _error, ...event } = letter;
        append(event);
      }
      return true;
    },
    async stats(nowMs) {
      const waiting = [...pending.keys(), ...entries.slice(readUpTo).map((entry) => entry.entryId)];
      const oldest = waiting.map((id) => Number(id.split('-')[0])).sort((a, b) => a - b)[0];
      return {
        stored: entries.length,
        pending: waiting.length,
        dead: dead.length,
        oldestPendingAgeS: oldest === undefined ? null : Math.max(0, Math.round((nowMs - oldest) / 1000)),
      };
    },
  };
}
