/**
 * One piece of work in flight per key in this process: concurrent callers for the same key share
 * it (a session's renewal, a user's token refresh) instead of each starting their own.
 */
export interface SingleFlight {
  /** Runs `work` unless work for `key` is in flight, in which case the caller joins that one. */
  run(key: string, work: () => Promise<void>): Promise<void>;
  /** The work in flight for `key`, if any. */
  inFlight(key: string): Promise<void> | undefined;
}

export function createSingleFlight(): SingleFlight {
  const flights = new Map<string, Promise<void>>();
  return {
    run(key, work) {
      let flight = flights.get(key);
      if (flight === undefined) {
        flight = work().finally(() => flights.delete(key));
        flights.set(key, flight);
      }
      return flight;
    },
    inFlight: (key) => flights.get(key),
  };
}
