import type { Cooldown, TokenSet } from './token-set.js';

/**
 * Where the Starship session is shared between replicas (Redis) or kept for one (memory).
 * Every method may reject when the backing store is unreachable; the token manager treats that as
 * "no shared state right now" and carries on with what it holds in memory.
 */
export interface TokenStore {
  /** The stored set, or undefined when none (or when it cannot be decrypted, or is implausibly large). */
  read(): Promise<TokenSet | undefined>;
  /** Stores the set until its refresh token expires. */
  write(tokens: TokenSet): Promise<void>;
  /**
   * Takes the renewal lock for `owner` unless someone holds it; true when taken. Expires after ttlMs.
   * A held lock with no expiry or a later one than ttlMs is not a broker's: it is given ttlMs.
   */
  acquireLock(owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock only if `owner` still holds it (compare-and-delete). */
  releaseLock(owner: string): Promise<void>;
  /** The stored cooldown as written; the token manager decides how far to trust it. */
  readCooldown(): Promise<Cooldown | undefined>;
  /** Stores the cooldown until it ends. */
  writeCooldown(cooldown: Cooldown): Promise<void>;
  /** Runs `listener` each time the store becomes reachable again (Redis reconnected). */
  onReconnect(listener: () => void): void;
  /** True while the store has a live connection. A failing call while connected is not an outage. */
  connected(): boolean;
  /** Resolves once the store has connected for the first time, or after `timeoutMs`; at once after that. */
  firstConnection(timeoutMs: number): Promise<void>;
}
