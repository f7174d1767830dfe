import { z } from 'zod';
import { parseStored, type SharedStore } from './stores/shared-store.js';
import type { Cooldown } from './token-set.js';

/**
 * A shared "do not log in before" mark (the Starship session's rule 6): set when a login is
 * throttled or its credentials rejected, so that no replica retries into a locked account. The
 * stored copy decides whenever the store answers, so one deleted from Redis frees the door at the
 * next read; but none is trusted for more than `maxS` from now by our own clock, and one found
 * longer (skewed or planted) is written back clamped, so its end is fixed once instead of moving on
 * with every read. While the store is away, the copy in memory decides.
 */
export interface LoginCooldown {
  /** The cooldown in force now, re-read from the store. */
  active(now: number): Promise<Cooldown | undefined>;
  /** The cooldown in force now, as last read: memory only, for probes and the hot path. */
  cached(now: number): Cooldown | undefined;
  /** Re-reads in the background (one read at a time), so a probe sees one deleted from Redis. */
  recheck(now: number): void;
  start(next: Cooldown): Promise<void>;
}

const cooldownSchema = z.object({
  until: z.number(),
  reason: z.enum(['throttled', 'credentials_rejected']),
}) satisfies z.ZodType<Cooldown>;

export function createLoginCooldown({
  store,
  name,
  maxS,
  onStoreError,
}: {
  store: SharedStore;
  /** Its name in the store, e.g. `starship:cooldown`. */
  name: string;
  maxS: number;
  onStoreError: (action: string, error: unknown) => void;
}): LoginCooldown {
  let cooldown: Cooldown | undefined;
  let check: Promise<unknown> | undefined;

  const write = (next: Cooldown) => store.set(name, JSON.stringify({ until: next.until, reason: next.reason }), next.until);
  const cached = (now: number) => (cooldown !== undefined && cooldown.until > now ? cooldown : undefined);

  async function active(now: number): Promise<Cooldown | undefined> {
    try {
      const shared = parseStored(cooldownSchema, await store.get(name));
      const latest = now + maxS * 1000;
      cooldown = shared === undefined || shared.until <= now ? undefined : { ...shared, until: Math.min(shared.until, latest) };
      if (shared !== undefined && shared.until > latest) await write({ ...shared, until: latest });
    } catch (error) {
      onStoreError('read cooldown', error);
    }
    return cached(now);
  }

  return {
    active,
    cached,
    recheck(now) {
      check ??= active(now).finally(() => {
        check = undefined;
      });
    },
    async start(next) {
      cooldown = next;
      try {
        await write(next);
      } catch (error) {
        onStoreError('write cooldown', error);
      }
    },
  };
}
