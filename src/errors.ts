/**
 * The one error vocabulary of the broker. Code anywhere throws an AppError with one of these codes;
 * http/problem.ts alone turns it into an HTTP answer. Statuses live here so the mapping is one table.
 */
export const errorCatalog = {
  invalid_request: { status: 400, title: 'Invalid request' },
  invalid_exchange_token: { status: 400, title: 'Invalid exchange token' },
  unauthenticated: { status: 401, title: 'Unauthenticated' },
  invalid_signature: { status: 401, title: 'Invalid signature' },
  forbidden: { status: 403, title: 'Forbidden' },
  mode_not_allowed: { status: 403, title: 'Mode not allowed' },
  not_found: { status: 404, title: 'Not found' },
  not_linked: { status: 404, title: 'Not linked' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  no_session: { status: 409, title: 'No session' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal_error: { status: 500, title: 'Internal error' },
  upstream_error: { status: 502, title: 'Upstream error' },
  upstream_throttled: { status: 503, title: 'Upstream throttled' },
  auth_unavailable: { status: 503, title: 'Identity provider unavailable' },
  not_ready: { status: 503, title: 'Not ready' },
  store_unavailable: { status: 503, title: 'Store unavailable' },
  upstream_timeout: { status: 504, title: 'Upstream timeout' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalog;

export interface AppErrorOptions {
  /** Seconds a client should wait before retrying (sent as Retry-After). */
  retryAfterS?: number;
  /** The methods the route takes (sent as Allow with method_not_allowed). */
  allow?: readonly string[];
  /**
   * Extra fields for the log line only; never sent to the client. Must hold no secrets. A string
   * `reason` is also written on the request line of a 4xx answer, whose error is not logged.
   */
  logFields?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterS: number | undefined;
  readonly allow: readonly string[] | undefined;
  readonly logFields: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, detail?: string, options: AppErrorOptions = {}) {
    super(detail ?? errorCatalog[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = errorCatalog[code].status;
    this.retryAfterS = options.retryAfterS;
    this.allow = options.allow;
    this.logFields = options.logFields;
  }
}
