import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { AppError } from '../errors.js';

/**
 * The most of one upstream reply the broker holds in memory (Benji's connect reply, Starship's auth
 * replies, error bodies read for the log). Real replies are a few hundred bytes; without a cap one
 * huge or endless reply could exhaust the heap that both doors share.
 */
export const replyLimitBytes = 64 * 1024;

/**
 * Reads a reply body as UTF-8 text, at most `limitBytes` of it. Past the cap it answers `undefined`
 * and destroys the body, which makes undici destroy the connection: draining an endless body would
 * hold the connection (and the call) until its deadline.
 */
export async function readCapped(
  body: Readable,
  contentLength: string | string[] | undefined,
  limitBytes = replyLimitBytes,
): Promise<string | undefined> {
  const declared = Number(Array.isArray(contentLength) ? contentLength[0] : contentLength);
  if (declared > limitBytes) {
    // Nothing else listens to this body: its abort must not surface as an unhandled 'error'.
    body.on('error', () => undefined);
    body.destroy();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  // Leaving the loop early (return) destroys the stream.
  for await (const chunk of body as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limitBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** How much upstream text (an error name or id) a log line carries. */
export const upstreamTextLimit = 100;

/**
 * Text an upstream sent, made fit for a log line: never trusted, it may echo our credentials back.
 * Configured secrets are scrubbed first (so that the cut cannot leave part of one behind), then it
 * is cut to `upstreamTextLimit` characters. Anything but a string is dropped.
 */
export function upstreamText(value: unknown, scrub: (text: string) => string): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = scrub(value);
  return clean.length > upstreamTextLimit ? `${clean.slice(0, upstreamTextLimit)}…` : clean;
}

/** No answer in time. A connect timeout is not one of them: the connection failed, which is a 502. */
const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** True when a failed exchange failed for lack of an answer in time (our deadline, `deadlinePassed`, or undici's). */
export function isTimeout(error: unknown, deadlinePassed = false): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return deadlinePassed || (code !== undefined && timeoutCodes.has(code)) || (error as Error | undefined)?.name === 'TimeoutError';
}

/**
 * Turns a transport failure into the broker's vocabulary: no answer in time is `upstream_timeout`,
 * anything else that broke the exchange (refused, reset, DNS) is `upstream_error`.
 */
export function transportError(upstream: string, error: unknown, deadlinePassed = false): AppError {
  if (error instanceof AppError) return error;
  if (isTimeout(error, deadlinePassed)) {
    return new AppError('upstream_timeout', `${upstream} did not answer in time.`, { logFields: { upstream }, cause: error });
  }
  const reason = (error as { code?: string }).code ?? (error as Error).name;
  return new AppError('upstream_error', `${upstream} could not be reached.`, { logFields: { upstream, reason }, cause: error });
}

/** The metrics label for a failed exchange. */
export function outcomeOf(error: unknown): 'timeout' | 'error' {
  return error instanceof AppError ? (error.code === 'upstream_timeout' ? 'timeout' : 'error') : isTimeout(error) ? 'timeout' : 'error';
}

/** Parses a JSON body leniently: an unparseable body is `undefined`, for the caller to judge. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The longest wait the broker passes on from an upstream's Retry-After (15 min). */
export const maxRetryAfterS = 15 * 60;

/**
 * Seconds from a Retry-After header (delta-seconds or HTTP date), at most `maxRetryAfterS`: an
 * upstream's absurd value must not tell our callers to go away for days. Undefined when absent or
 * unreadable (a negative number included).
 */
export function retryAfterSeconds(header: string | string[] | undefined, nowMs: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Math.min(Number(value), maxRetryAfterS);
  // Date.parse reads some bare numbers ("-5") as years: only a date with a name in it is a date.
  if (!/[a-z]/i.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.min(Math.max(0, Math.ceil((date - nowMs) / 1000)), maxRetryAfterS) : undefined;
}

/**
 * Cancels one upstream call: what an AbortController does, for undici, which accepts any
 * EventEmitter with a `reason` and an 'abort' event as a request's signal. An AbortSignal goes
 * through EventTarget listeners, which cost ~8% of a proxied call's CPU when measured side by side
 * under load; an EventEmitter's cost next to nothing. (No `aborted` property: undici 8 takes any
 * signal that has one for an AbortSignal.)
 */
export class Cancellation extends EventEmitter {
  cancelled = false;
  /** Why, when it was not the caller leaving: undici rejects the call with this error. */
  reason: Error | undefined;

  abort(reason?: Error): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.reason = reason;
    this.emit('abort');
  }
}
