/** Time, injected so that expiry logic is tested without sleeping. Epoch milliseconds. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
