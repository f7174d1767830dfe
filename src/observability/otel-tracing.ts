import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  defaultResource,
  detectResources,
  resourceAttributesEnvDetector,
  resourceFromAttributes,
  serviceNameEnvDetector,
} from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import type { TracingConfig } from '../config/tracing-env.js';
import type { RequestSpan, SpanAttributes, SpanHandle, Tracing, TracingHooks } from './tracing.js';

/**
 * The OpenTelemetry SDK behind the tracing facade (tracing.ts), loaded only when tracing is on.
 *
 * Nothing here is global: the provider, the context manager (AsyncLocalStorage, so that spans
 * started inside a request's handlers find their parent) and the W3C propagator belong to this
 * broker, and every span is started with its parent context given explicitly. Two brokers in one
 * process (tests) keep their traces apart, and no library's own instrumentation can attach to ours.
 *
 * The exporter is OTLP/HTTP, protobuf or JSON as OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL says, and
 * reads its other OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression) itself; the
 * resource takes OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES over the broker's defaults. Spans
 * leave in batches (every 5 s, or 512 at a time), off the request path.
 */
/** How long shutdown waits for the last export. */
const shutdownWaitMs = 2_000;

export function createOtelTracing(config: TracingConfig, { version, onExportFailure }: TracingHooks): Tracing {
  const exporter = reportingFailures(
    config.protocol === 'http/json' ? new JsonExporter({ url: config.url }) : new ProtobufExporter({ url: config.url }),
    onExportFailure,
  );
  const provider = new TracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ 'service.name': 'token-broker', 'service.version': version }))
      .merge(detectResources({ detectors: [resourceAttributesEnvDetector, serviceNameEnvDetector] })),
    sampler: samplerOf(config),
    spanProcessors: [new BatchSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('token-broker', version);
  const contextManager = new AsyncLocalStorageContextManager().enable();
  const propagator = new W3CTraceContextPropagator();

  const activeSpan = () => trace.getSpan(contextManager.active());

  function handle(span: Span): SpanHandle & { failed: boolean } {
    return {
      failed: false,
      set: (attributes) => span.setAttributes(attributes),
      fail(errorType) {
        this.failed = true;
        span.setAttribute('error.type', errorType);
        span.setStatus({ code: SpanStatusCode.ERROR });
      },
      inject: (headers) => propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter),
      end: () => span.end(),
    };
  }

  return {
    enabled: true,

    serverSpan(headers, method, door): RequestSpan {
      // An invalid or absent traceparent extracts to nothing: the request starts a trace of its own.
      const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      const span = tracer.startSpan(
        method,
        { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'broker.door': door } satisfies SpanAttributes },
        parent,
      );
      const context = trace.setSpan(parent, span);
      const { traceId, spanId } = span.spanContext();
      return {
        traceId,
        spanId,
        run: (next) => contextManager.with(context, next),
        end(route, status, caller) {
          const attributes: SpanAttributes = { 'http.response.status_code': status };
          if (route !== undefined) {
            span.updateName(`${method} ${route}`);
            attributes['http.route'] = route;
          }
          if (caller !== undefined) attributes['broker.caller'] = caller;
          span.setAttributes(attributes);
          // A server span fails on a 5xx only: a 4xx is the caller's mistake, answered as it should be.
          if (status >= 500) {
            span.setAttribute('error.type', String(status));
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
        },
      };
    },

    clientSpan(name, attributes, headers) {
      const parent = contextManager.active();
      const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
      propagator.inject(trace.setSpan(parent, span), headers, defaultTextMapSetter);
      return handle(span);
    },

    async inSpan(name, attributes, work, kind = 'internal') {
      const parent = contextManager.active();
      const span = tracer.startSpan(name, { kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL, attributes }, parent);
      const handled = handle(span);
      try {
        return await contextManager.with(trace.setSpan(parent, span), () => work(handled));
      } catch (error) {
        // The error's code or class only: messages may quote what an upstream sent.
        if (!handled.failed) handled.fail(errorType(error));
        throw error;
      } finally {
        span.end();
      }
    },

    annotate(attributes) {
      activeSpan()?.setAttributes(attributes);
    },

    logFields() {
      const span = activeSpan();
      if (span === undefined) return {};
      const { traceId, spanId } = span.spanContext();
      return { traceId, spanId };
    },

    // A failed export has been reported (reportingFailures); it must not fail the caller, least of all shutdown.
    flush: () => provider.forceFlush().catch(() => undefined),
    // A collector that does not answer must not hold the exit past the orchestrator's grace period:
    // what is not out by then is dropped.
    shutdown: () => Promise.race([provider.shutdown().catch(() => undefined), sleep(shutdownWaitMs, undefined, { ref: false })]),
  };
}

/** OTEL_TRACES_SAMPLER and its ratio, as the specification defines them. */
function samplerOf({ sampler, samplerRatio }: TracingConfig): Sampler {
  const root = sampler.endsWith('always_on')
    ? new AlwaysOnSampler()
    : sampler.endsWith('always_off')
      ? new AlwaysOffSampler()
      : new TraceIdRatioBasedSampler(samplerRatio);
  return sampler.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

/**
 * The exporter, telling the broker when exports start failing (once, until one succeeds again):
 * without it a wrong endpoint would lose every span in silence. Only the HTTP status is passed on;
 * a collector's error text is not the broker's to log.
 */
function reportingFailures(exporter: SpanExporter, onFailure: (status: number | undefined) => void): SpanExporter {
  let failing = false;
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        if (result.code === ExportResultCode.SUCCESS) failing = false;
        else if (!failing) {
          failing = true;
          const status = (result.error as { code?: unknown } | undefined)?.code;
          onFailure(typeof status === 'number' ? status : undefined);
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}

/** What failed, as the broker's error code or the error's class: fixed words, never a message. */
function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^[a-z_]{1,40}$/.test(code)) return code;
  return error instanceof Error ? error.name : 'error';
}
