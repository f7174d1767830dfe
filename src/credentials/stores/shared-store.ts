import type { z } from 'zod';

/**
 * Where credentials keep what replicas share: sessions, cooldowns and renewal locks, each under a
 * name (`starship:session`, `starship:lock`, …). Redis shares them between replicas; memory serves
 * one replica. Values are strings; the credential that owns a value parses and judges it.
 *
 * Every method may reject when the backing store is unreachable; credentials treat that as "no
 * shared state right now" and carry on with what they hold in memory. Nothing read is trusted for
 * its size: a value over `maxStoredValueBytes` reads as absent.
 */
export interface SharedStore {
  /** The value, or undefined when absent (or oversized). */
  get(name: string): Promise<string | undefined>;
  /** Stores `value` until `expiresAt` (epoch ms, by the broker's clock); a time already past deletes it. */
  set(name: string, value: string, expiresAt: number): Promise<void>;
  /** Like get, for secrets: sealed at rest wherever the store keeps values outside the process. */
  getSecret(name: string): Promise<string | undefined>;
  /** Like set, for secrets (tokens): sealed for `name`, so a value copied to another name does not open. */
  setSecret(name: string, value: string, expiresAt: number): Promise<void>;
  delete(name: string): Promise<void>;
  /**
   * Takes the lock `name` for `owner` unless someone holds it; true when taken. It expires after
   * ttlMs. A lock held with no expiry, or a longer one than ttlMs, was not set by a broker: it is
   * given ttlMs, so it lapses within one wait.
   */
  acquireLock(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock only if `owner` still holds it (compare-and-delete). */
  releaseLock(name: string, owner: string): Promise<void>;
  /** Runs `listener` each time the store becomes reachable again (Redis reconnected). */
  onReconnect(listener: () => void): void;
  /** True while the store has a live connection. A failing call while connected is not an outage. */
  connected(): boolean;
  /** Resolves once the store has connected for the first time, or after `timeoutMs`; at once after that. */
  firstConnection(timeoutMs: number): Promise<void>;
}

/** Anything stored that is larger is not something the broker wrote: it is ignored as corrupt. */
export const maxStoredValueBytes = 64 * 1024;

/** A stored value as `schema` has it, or undefined for anything else (absent, corrupt, foreign). */
export function parseStored<T>(schema: z.ZodType<T>, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
