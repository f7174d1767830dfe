import { z } from 'zod';

/**
 * The standard OpenTelemetry variables the broker reads itself: the switch (an OTLP endpoint, and
 * OTEL_SDK_DISABLED), the protocol, and the sampler, which the JS SDK 3 no longer reads from the
 * environment. The exporter reads the rest of OTEL_EXPORTER_OTLP_* (headers, timeout, compression,
 * certificates) and the resource detector OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; README
 * lists those apart, since they are not validated here.
 */

const endpoint = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL (OTLP/HTTP, e.g. http://collector:4318)' });

const protocol = z
  .string()
  .trim()
  .transform((value, ctx) => {
    if (value === 'http/protobuf' || value === 'http/json') return value;
    ctx.addIssue({
      code: 'custom',
      message:
        value === 'grpc'
          ? 'grpc is not supported: use http/protobuf (the collector’s port 4318) or http/json'
          : 'must be http/protobuf or http/json',
    });
    return z.NEVER;
  });

export const tracesSamplers = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type TracesSampler = (typeof tracesSamplers)[number];

export const tracingEnv = {
  // The specification's boolean: only `true` (in any case) is true.
  OTEL_SDK_DISABLED: z
    .string()
    .transform((value) => value.trim().toLowerCase() === 'true')
    .default(false),
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint.optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol.default('http/protobuf'),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol.optional(),
  OTEL_TRACES_SAMPLER: z
    .enum(tracesSamplers, { message: `must be one of ${tracesSamplers.join(', ')} (remote samplers are not supported)` })
    .default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z
    .string()
    .trim()
    .regex(/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/, 'must be a ratio from 0 to 1')
    .transform(Number)
    .default(1),
} as const;

type TracingEnv = z.output<z.ZodObject<typeof tracingEnv>>;

export interface TracingConfig {
  /** Where spans are sent: the traces endpoint as given, or the general endpoint with `/v1/traces`. */
  readonly url: string;
  readonly protocol: 'http/protobuf' | 'http/json';
  readonly sampler: TracesSampler;
  /** The ratio of the `traceidratio` samplers. */
  readonly samplerRatio: number;
}

/** Tracing is on when an OTLP endpoint is set and the SDK is not disabled; otherwise undefined. */
export function tracingConfig(env: TracingEnv): TracingConfig | undefined {
  const general = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (general === undefined ? undefined : `${general.replace(/\/+$/, '')}/v1/traces`);
  if (url === undefined || env.OTEL_SDK_DISABLED) return undefined;
  return {
    url,
    protocol: env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL,
    sampler: env.OTEL_TRACES_SAMPLER,
    samplerRatio: env.OTEL_TRACES_SAMPLER_ARG,
  };
}
