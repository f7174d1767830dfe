import type { Clock } from '../clock.js';
import type { Cooldown, TokenSet } from './token-set.js';
import type { TokenStore } from './token-store.js';

/**
 * The store for a single replica without Redis: nothing to share, so plain variables. Every expiry
 * is judged by the injected clock (not timers), which keeps it in step with the token manager.
 */
export function createMemoryTokenStore(clock: Clock): TokenStore {
  let session: TokenSet | undefined;
  let lock: { owner: string; expiresAt: number } | undefined;
  let cooldown: Cooldown | undefined;

  const lockHolder = () => (lock !== undefined && clock() < lock.expiresAt ? lock.owner : undefined);

  return {
    async read() {
      return session !== undefined && clock() < session.refreshExpiresAt ? session : undefined;
    },
    async write(tokens) {
      session = { ...tokens };
    },
    async acquireLock(owner, ttlMs) {
      if (lockHolder() !== undefined) return false;
      lock = { owner, expiresAt: clock() + ttlMs };
      return true;
    },
    async releaseLock(owner) {
      if (lockHolder() === owner) lock = undefined;
    },
    async readCooldown() {
      return cooldown !== undefined && clock() < cooldown.until ? cooldown : undefined;
    },
    async writeCooldown(next) {
      cooldown = { ...next };
    },
    onReconnect() {
      // Memory never goes away, so there is nothing to reconnect to.
    },
    connected: () => true,
    firstConnection: async () => undefined,
  };
}
