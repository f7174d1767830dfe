/**
 * What authenticates an outgoing call to an upstream, behind one small interface: the Starship
 * session (login, refresh, a token in the Authorization header), a static key, a user's token. The
 * proxy engine knows nothing else about credentials; a new scheme is a new implementation of this.
 */

/** One outgoing call, as the upstream will receive it. */
export interface OutgoingCall {
  /** Uppercase, as sent. */
  readonly method: string;
  /** The path exactly as sent, without the query. */
  readonly path: string;
  /** The query exactly as sent, without the `?`; '' when there is none. */
  readonly query: string;
  /** The exact body bytes sent, if any. */
  readonly body: Buffer | undefined;
}

/** The headers that authenticate one call. Handed back unchanged when the upstream refuses the call. */
export type CallHeaders = Readonly<Record<string, string>>;

export interface Credential {
  /**
   * The headers for this call: may renew first (a session with no valid token), or reject with an
   * AppError when no credential can be had (503 with Retry-After while a login cools down, …).
   */
  headersFor(call: OutgoingCall): Promise<CallHeaders>;
  /**
   * The upstream refused (401) a call made with `used`. True: the credential was renewed (now, or
   * since the call took its headers), so replay the call once with fresh headers. False: pass the
   * 401 on to the caller. Never rejects.
   */
  rejected(used: CallHeaders): Promise<boolean>;
}
