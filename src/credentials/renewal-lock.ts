import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { noTracing, type Tracing } from '../observability/tracing.js';
import type { SharedStore } from './stores/shared-store.js';

/**
 * The lock that lets one replica renew a credential (refresh or log in) while the others wait and
 * then adopt its result. A value naming its owner (SET NX PX), a compare-and-delete release, a
 * bounded wait, and between tries a look at the store: the holder may already have written what
 * the waiter needed ("re-read under the lock" is the holder's part, in its work).
 */
export type LockWait =
  /** Ours: do the work, then release. */
  | { outcome: 'held'; release(): Promise<void> }
  /** The store is disconnected: go on in-process only (no replica can be asked). */
  | { outcome: 'local'; error: unknown }
  /** `whileWaiting` found the work done elsewhere: nothing left to do. */
  | { outcome: 'adopted' }
  /** The wait ran out. */
  | { outcome: 'timeout' }
  /** The store is connected but failing (out of memory, a read-only replica…). */
  | { outcome: 'failing'; error: unknown };

export interface RenewalLock {
  /**
   * Waits for the lock `name` at most the configured wait. `whileWaiting` runs after each failed
   * try; true means what the lock was wanted for is done (another replica stored a fresh result).
   */
  acquire(name: string, whileWaiting?: () => Promise<boolean>): Promise<LockWait>;
}

export interface RenewalLockOptions {
  store: SharedStore;
  /** How long a holder may keep the lock: longer than its work can take. */
  ttlMs: number;
  /** How long a waiter waits before it gives up. */
  waitMs: number;
  pollMs: number;
  /** How a wait ended and how long it took, for the lock-wait metric. */
  onWait?: (seconds: number, outcome: LockWait['outcome']) => void;
  /** Each wait is a span named after what the lock guards (`starship session`), never whose lock it is. */
  tracing?: Tracing;
  guards?: string;
}

export function createRenewalLock(options: RenewalLockOptions): RenewalLock {
  const { tracing = noTracing, guards = 'renewal' } = options;
  const lock = untracedLock(options);
  return {
    acquire: (name, whileWaiting) =>
      tracing.inSpan(`${guards} lock wait`, { 'broker.lock': guards }, async (span) => {
        const wait = await lock.acquire(name, whileWaiting);
        span.set({ 'broker.outcome': wait.outcome });
        return wait;
      }),
  };
}

function untracedLock({ store, ttlMs, waitMs, pollMs, onWait }: RenewalLockOptions): RenewalLock {
  const instance = randomUUID();
  let count = 0;

  return {
    async acquire(name, whileWaiting) {
      const owner = `${instance}:${++count}`;
      const startedAt = performance.now();
      const done = <T extends LockWait>(wait: T): T => {
        onWait?.((performance.now() - startedAt) / 1000, wait.outcome);
        return wait;
      };
      for (;;) {
        try {
          if (await store.acquireLock(name, owner, ttlMs)) {
            return done({ outcome: 'held', release: () => store.releaseLock(name, owner) });
          }
        } catch (error) {
          // Renewing without the shared lock while the store answers could send a refresh token twice.
          return done(store.connected() ? { outcome: 'failing', error } : { outcome: 'local', error });
        }
        if (performance.now() - startedAt > waitMs) return done({ outcome: 'timeout' });
        await sleep(pollMs);
        if (whileWaiting !== undefined && (await whileWaiting())) return done({ outcome: 'adopted' });
      }
    },
  };
}
