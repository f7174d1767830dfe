import type { Clock } from '../../clock.js';
import type { SharedStore } from './shared-store.js';

/**
 * The store of a single replica without Redis: nothing to share, so a map. Every expiry is judged by
 * the injected clock (not timers), which keeps it in step with the credentials that use it.
 * Secrets stay in the process, so they are kept as they are.
 */
export function createMemoryStore(clock: Clock): SharedStore {
  const values = new Map<string, { value: string; expiresAt: number }>();

  function get(name: string): string | undefined {
    const entry = values.get(name);
    if (entry === undefined) return undefined;
    if (clock() < entry.expiresAt) return entry.value;
    values.delete(name);
    return undefined;
  }
  function set(name: string, value: string, expiresAt: number): void {
    if (expiresAt > clock()) values.set(name, { value, expiresAt });
    else values.delete(name);
  }

  return {
    get: async (name) => get(name),
    set: async (name, value, expiresAt) => set(name, value, expiresAt),
    getSecret: async (name) => get(name),
    setSecret: async (name, value, expiresAt) => set(name, value, expiresAt),
    async delete(name) {
      values.delete(name);
    },
    async acquireLock(name, owner, ttlMs) {
      if (get(name) !== undefined) return false;
      set(name, owner, clock() + ttlMs);
      return true;
    },
    async releaseLock(name, owner) {
      if (get(name) === owner) values.delete(name);
    },
    onReconnect() {
      // Memory never goes away, so there is nothing to reconnect to.
    },
    connected: () => true,
    firstConnection: async () => undefined,
  };
}
