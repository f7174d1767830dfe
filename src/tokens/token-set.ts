/** One Starship session as the broker keeps it: what login and refresh return, times in epoch ms. */
export interface TokenSet {
  readonly accessToken: string;
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
