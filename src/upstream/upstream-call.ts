import { AppError } from '../errors.js';

const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * Runs one upstream exchange under a deadline and turns transport failures into the broker's
 * vocabulary: no answer in time is `upstream_timeout`, anything else that breaks the exchange
 * (refused, reset, DNS) is `upstream_error`. Errors the exchange throws itself pass through.
 */
export async function callUpstream<T>(upstream: string, timeoutMs: number, exchange: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return await exchange(signal);
  } catch (error) {
    if (error instanceof AppError) throw error;
    const code = (error as { code?: string }).code;
    if (signal.aborted || (code !== undefined && timeoutCodes.has(code))) {
      throw new AppError('upstream_timeout', `${upstream} did not answer in time.`, { logFields: { upstream, timeoutMs }, cause: error });
    }
    throw new AppError('upstream_error', `${upstream} could not be reached.`, {
      logFields: { upstream, reason: code ?? (error as Error).name },
      cause: error,
    });
  }
}

/** Parses a JSON body leniently: an unparseable body is `undefined`, for the caller to judge. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Seconds from a Retry-After header (delta-seconds or HTTP date); `fallbackS` when absent or unreadable. */
export function retryAfterSeconds(header: string | string[] | undefined, nowMs: number, fallbackS: number): number {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return fallbackS;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, Math.ceil((date - nowMs) / 1000)) : fallbackS;
}
