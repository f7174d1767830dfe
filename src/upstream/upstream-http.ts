import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { AppError } from '../errors.js';
import type { UpstreamMetrics } from '../observability/metrics.js';
import { noTracing, type Tracing } from '../observability/tracing.js';

/**
 * The plumbing of every call the broker makes to Benji or Starship, written once: connection pools,
 * a deadline per call, one timing metric per call, transport failures in the broker's error
 * vocabulary, and replies read only up to a cap. The clients (benji/, starship/) and the proxy
 * engine build on it.
 */

export type UpstreamName = 'benji' | 'starship';

/**
 * A keep-alive pool to one origin. Its own timeouts stop a connection that stalls; the deadline of
 * each call (below) bounds the whole call, the wait for a free connection included.
 */
export function createUpstreamPool(origin: string, { connections, timeoutMs }: { connections: number; timeoutMs: number }): Pool {
  return new Pool(origin, {
    connections,
    keepAliveTimeout: 30_000,
    connect: { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
}

export interface UpstreamRequest {
  method: Dispatcher.HttpMethod;
  /** Path and query, appended to the pool's origin. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer | undefined;
}

export interface UpstreamReply {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text; undefined when it was over `replyLimitBytes` (and was not read). */
  text: string | undefined;
}

export interface Upstream {
  readonly name: UpstreamName;
  /**
   * A call whose answer the caller streams: resolves at the response headers. The deadline runs
   * until then; `cancel` (the caller hanging up) aborts the call at any time, body included.
   */
  open(pool: Pool, operation: string, request: UpstreamRequest, cancel: Cancellation): Promise<Dispatcher.ResponseData>;
  /** A call whose answer the broker reads itself, up to the cap, all within the deadline. */
  exchange(pool: Pool, operation: string, request: UpstreamRequest): Promise<UpstreamReply>;
}

/**
 * One upstream's calls. Every failure rejects with an AppError (`upstream_timeout` when the
 * deadline passed, `upstream_error` when the exchange broke) whose cause is the transport error.
 * With tracing on, each call is a CLIENT span whose `traceparent` the upstream receives; the span,
 * like the timing metric, lasts until the answer's headers (or, for `exchange`, its body) are in.
 */
export function createUpstream({
  name,
  timeoutMs,
  metrics,
  tracing = noTracing,
}: {
  name: UpstreamName;
  timeoutMs: number;
  metrics: UpstreamMetrics;
  tracing?: Tracing;
}): Upstream {
  const observe = (operation: string, outcome: string, startedAt: number) =>
    metrics.observe(name, operation, outcome, (performance.now() - startedAt) / 1000);

  async function timed<T>(
    operation: string,
    request: UpstreamRequest,
    cancel: Cancellation,
    call: (request: UpstreamRequest) => Promise<T & { statusCode: number }>,
  ): Promise<T & { statusCode: number }> {
    const startedAt = performance.now();
    const timer = setTimeout(() => cancel.abort(new DeadlinePassed()), timeoutMs);
    try {
      const result = await call(request);
      observe(operation, String(result.statusCode), startedAt);
      return result;
    } catch (error) {
      const failure = transportError(name, error, cancel.reason instanceof DeadlinePassed);
      observe(operation, outcomeOf(failure), startedAt);
      throw failure;
    } finally {
      clearTimeout(timer);
    }
  }

  /** `timed`, in a CLIENT span; the request goes out with the span's trace context added to its headers. */
  async function traced<T>(
    operation: string,
    request: UpstreamRequest,
    cancel: Cancellation,
    call: (request: UpstreamRequest) => Promise<T & { statusCode: number }>,
  ): Promise<T> {
    const headers = { ...request.headers };
    const span = tracing.clientSpan(
      `${request.method} ${name} ${operation}`,
      { 'broker.upstream': name, 'broker.operation': operation, 'http.request.method': request.method },
      headers,
    );
    try {
      const result = await timed(operation, { ...request, headers }, cancel, call);
      span.set({ 'http.response.status_code': result.statusCode });
      if (result.statusCode >= 400) span.fail(String(result.statusCode));
      return result;
    } catch (error) {
      span.fail(outcomeOf(error));
      throw error;
    } finally {
      span.end();
    }
  }

  // Chosen once: with tracing off, a call runs exactly as it did before tracing existed.
  const measured = tracing.enabled ? traced : timed;

  return {
    name,
    open(pool, operation, request, cancel) {
      // undici sees only later cancellations: a caller that left while its body was read is gone already.
      if (cancel.cancelled) return Promise.reject(transportError(name, cancel.reason ?? new CallerGone()));
      return measured(operation, request, cancel, (sent) => pool.request({ ...sent, signal: cancel }));
    },
    exchange(pool, operation, request) {
      const cancel = new Cancellation();
      return measured(operation, request, cancel, async (sent) => {
        const reply = await pool.request({ ...sent, signal: cancel });
        return {
          statusCode: reply.statusCode,
          headers: reply.headers,
          text: await readCapped(reply.body, reply.headers['content-length']),
        };
      });
    },
  };
}

class DeadlinePassed extends Error {
  override name = 'TimeoutError';
}

class CallerGone extends Error {
  override name = 'AbortError';
}

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
 * EventEmitter with a `reason` and an 'abort' event as a request's signal, and an AbortSignal's
 * EventTarget listeners cost a proxied call measurably more (bench/README.md). (No `aborted`
 * property: undici 8 takes any signal that has one for an AbortSignal.)
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
