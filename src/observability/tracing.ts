import type { IncomingHttpHeaders } from 'node:http';
import type { TracingConfig } from '../config/tracing-env.js';
import type * as OtelTracing from './otel-tracing.js';

/**
 * Tracing, as the rest of the broker sees it: a few spans at the places that matter (the inbound
 * request, each upstream call, renewals, lock waits, webhooks), through this small facade. Off (no
 * OTLP endpoint), it is `noTracing`: no OpenTelemetry module is loaded, and the hot paths, which
 * ask `enabled` once when they are built, run as they would without it. On, `loadTracingSdk` loads
 * the SDK (otel-tracing.ts) with a dynamic import, and compose.ts builds it.
 *
 * Manual spans rather than auto-instrumentation of Express, undici and ioredis: those would cost
 * on every call (Redis included) and record URLs and headers, which carry user ids and credentials.
 * What a span may carry is the closed list of attribute names below: never a token, a key, a user
 * id, a body or a URL with its query (test/observability/tracing.test.ts scans every exported span).
 */

// A type, not an interface: the SDK's attribute maps take it as it is.
export type SpanAttributes = {
  'broker.door'?: 'public' | 'internal';
  /** The internal caller's configured name (a service, never a user). */
  'broker.caller'?: string;
  'broker.upstream'?: 'benji' | 'starship';
  /** The upstream operation (`proxy`, `connect`, `login`, `refresh`, …), as the metrics name it. */
  'broker.operation'?: string;
  /** How the work ended, in the metrics' words (`success`, `rejected`, `timeout`, `acquired`, …). */
  'broker.outcome'?: string;
  /** Which renewal lock a wait was for (`starship session`, `benji link`), never whose. */
  'broker.lock'?: string;
  'broker.webhook.provider'?: string;
  'broker.webhook.duplicate'?: boolean;
  'broker.webhook.attempt'?: number;
  'http.request.method'?: string;
  /** The route pattern (`/v1/starship/{path}`), never the URL. */
  'http.route'?: string;
  'http.response.status_code'?: number;
  /** Why a span failed, in fixed words or an HTTP status (OpenTelemetry's `error.type`). */
  'error.type'?: string;
};

export interface SpanHandle {
  set(attributes: SpanAttributes): void;
  /** Marks the span failed; `errorType` is a fixed word or a status, never a message. */
  fail(errorType: string): void;
  /** Writes the span's `traceparent` (and `tracestate`) into outgoing headers. */
  inject(headers: Record<string, string>): void;
  end(): void;
}

/** The SERVER span of one inbound request. */
export interface RequestSpan {
  /** Runs the rest of the request with this span active, so that its upstream calls become children. */
  run(next: () => void): void;
  /** Names the span by its route pattern (known only once handled) and ends it. */
  end(route: string | undefined, status: number, caller: string | undefined): void;
  /** For the request's log line, which is written outside the span's context. */
  readonly traceId: string;
  readonly spanId: string;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Starts the SERVER span of a request, continuing the caller's `traceparent`/`tracestate` when valid. */
  serverSpan(headers: IncomingHttpHeaders, method: string, door: 'public' | 'internal'): RequestSpan;
  /**
   * Starts a CLIENT span, child of the active span, and writes its `traceparent` (and `tracestate`)
   * into `headers`, so that the upstream continues the broker's trace.
   */
  clientSpan(name: string, attributes: SpanAttributes, headers: Record<string, string>): SpanHandle;
  /**
   * Runs `work` in a span, child of the active span, and active while `work` runs (its log lines
   * carry its ids); the span ends when `work` settles. INTERNAL, or CLIENT for work that is one
   * outgoing call (a webhook delivery).
   */
  inSpan<T>(name: string, attributes: SpanAttributes, work: (span: SpanHandle) => Promise<T>, kind?: 'internal' | 'client'): Promise<T>;
  /** Sets attributes on the active span (a webhook's outcome on its request's span). */
  annotate(attributes: SpanAttributes): void;
  /** `traceId` and `spanId` of the active span, for log lines; empty when none is active. */
  logFields(): { traceId?: string; spanId?: string };
  /** Sends what has ended and not yet been exported (tests; shutdown does it too). */
  flush(): Promise<void>;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

const noSpan: SpanHandle = { set: () => undefined, fail: () => undefined, inject: () => undefined, end: () => undefined };
const noRequestSpan: RequestSpan = { run: (next) => next(), end: () => undefined, traceId: '', spanId: '' };

/** Tracing off: every call does nothing (and `inSpan` just runs its work). */
export const noTracing: Tracing = {
  enabled: false,
  serverSpan: () => noRequestSpan,
  clientSpan: () => noSpan,
  inSpan: (_name, _attributes, work) => work(noSpan),
  annotate: () => undefined,
  logFields: () => ({}),
  flush: async () => undefined,
  shutdown: async () => undefined,
};

/** The SDK module's shape; a type-only import, erased from the build, so nothing is loaded with it. */
export type TracingSdk = typeof OtelTracing;

/** The OpenTelemetry SDK, loaded only when tracing is configured. */
export function loadTracingSdk(): Promise<TracingSdk> {
  return import('./otel-tracing.js');
}

export interface TracingHooks {
  /** The build's version, for the `service.version` resource attribute. */
  version: string;
  /** An export failed after the last one succeeded (or at the first); `status` is the HTTP status, when there was an answer. */
  onExportFailure: (status: number | undefined) => void;
}

/** The broker's tracing: the SDK's when configured (it must have been loaded), else `noTracing`. */
export function createTracing(config: TracingConfig | undefined, sdk: TracingSdk | undefined, hooks: TracingHooks): Tracing {
  if (config === undefined) return noTracing;
  if (sdk === undefined) throw new Error('Tracing is configured but its SDK was not loaded: await loadTracingSdk() first.');
  return sdk.createOtelTracing(config, hooks);
}
