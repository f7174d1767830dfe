/**
 * A set of tokens as a credential keeps it: an access token, the refresh token that renews it,
 * their expiry times and when the broker received them (epoch ms). The Starship session is one;
 * the pure checks below are the rules every such set is judged by.
 */
export interface TokenSet {
  readonly accessToken: string;
  /** Empty once Starship refused it, or it may already have been spent: only a login renews then. */
  readonly refreshToken: string;
  /** When the access token stops working (Starship's `access_expires_at`). */
  readonly accessExpiresAt: number;
  /** When the refresh token stops working (Starship's `refresh_expires_at`); the store's TTL. */
  readonly refreshExpiresAt: number;
  /** When the broker received this set: with accessExpiresAt, the access token's lifetime. */
  readonly obtainedAt: number;
  readonly clientId: string;
}

/** A shared "do not call login before" mark, set when Starship throttles or rejects the login. */
export interface Cooldown {
  readonly until: number;
  readonly reason: 'throttled' | 'credentials_rejected';
}

/** What the checks below need of a set: a Benji user's tokens have no refresh expiry or client id. */
export type Lifetime = Pick<TokenSet, 'accessExpiresAt' | 'obtainedAt'>;

const lifetimeMs = (set: Lifetime) => set.accessExpiresAt - set.obtainedAt;

/** Safety margin so a token does not expire between our check and the upstream's. */
export const marginMs = (set: Lifetime) => Math.min(5_000, lifetimeMs(set) / 10);

/** The access token is still good at `now`, with the margin. */
export const unexpired = (set: Lifetime, now: number) => set.accessExpiresAt - marginMs(set) > now;

/** When renewal should start: `refreshBeforeS` before expiry, at most half the token's lifetime. */
export const refreshDueAt = (set: Lifetime, refreshBeforeS: number) =>
  set.accessExpiresAt - Math.min(refreshBeforeS * 1000, lifetimeMs(set) / 2);

/** The refresh token may be sent: not blanked, and not about to expire. */
export const canRefresh = (set: TokenSet, now: number) => set.refreshToken !== '' && set.refreshExpiresAt - marginMs(set) > now;

/** Obtained less than max(minAgeMs, 1 % of its lifetime) ago: a 401 to it says more about the endpoint. */
export const obtainedRecently = (set: Lifetime, now: number, minAgeMs: number) =>
  now - set.obtainedAt < Math.max(minAgeMs, lifetimeMs(set) / 100);

/**
 * How a stored set compares with the one in hand. The upstream's expiry times order the sets it
 * issued; on a tie, the later received. A set told apart by no time is the same set, unless only
 * its refresh token differs: blanked it is news (a replica saw it refused), restored a replay.
 */
export function compareSets(stored: TokenSet, ours: TokenSet): 'same' | 'newer' | 'older' {
  if (stored.accessToken === ours.accessToken && stored.refreshToken === ours.refreshToken) return 'same';
  const order =
    stored.accessExpiresAt - ours.accessExpiresAt || stored.refreshExpiresAt - ours.refreshExpiresAt || stored.obtainedAt - ours.obtainedAt;
  if (order !== 0) return order > 0 ? 'newer' : 'older';
  if (stored.accessToken !== ours.accessToken) return 'same';
  return stored.refreshToken === '' ? 'newer' : 'older';
}
