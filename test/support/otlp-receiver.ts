import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * A stand-in for an OpenTelemetry collector: `POST /v1/traces` over OTLP/HTTP, in protobuf or JSON
 * (by Content-Type), gzipped or not. It decodes what the exporter really sent with a reader of its
 * own (below, after opentelemetry-proto's trace.proto), written apart from the SDK's serializer so
 * that the two can disagree, and keeps every raw body too, for scans that must not depend on the
 * decoding.
 */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: 'unspecified' | 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  status: { code: 'unset' | 'ok' | 'error'; message: string };
  /** The resource's attributes (service.name, …). */
  resource: Record<string, unknown>;
  scope: string;
}

export interface OtlpReceiver {
  /** The origin, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Every export as received: its headers, Content-Type and (decompressed) body. */
  readonly exports: Array<{ headers: IncomingHttpHeaders; contentType: string; body: Buffer }>;
  close(): Promise<void>;
}

const kinds = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
const statusCodes = ['unset', 'ok', 'error'] as const;

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const exports: OtlpReceiver['exports'][number][] = [];
  const server = createServer(async (req, res) => {
    const raw = await readAll(req);
    if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
    const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
    const contentType = req.headers['content-type'] ?? '';
    exports.push({ headers: req.headers, contentType, body });
    if (contentType.startsWith('application/x-protobuf')) {
      spans.push(...decodeProtobufRequest(body));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    } else if (contentType.startsWith('application/json')) {
      spans.push(...decodeJsonRequest(JSON.parse(body.toString('utf8')) as JsonRequest));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else res.writeHead(415).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    exports,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// --- protobuf ----------------------------------------------------------------------------------

/** A field's values by number: varints as bigints, fixed-width and length-delimited fields as bytes. */
type Fields = Map<number, Array<bigint | Buffer>>;

/** The protobuf wire format: tag (field << 3 | wire type), then the value. */
function readFields(buffer: Buffer): Fields {
  const fields: Fields = new Map();
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = buffer[at++];
      if (byte === undefined) throw new Error('truncated varint');
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
  };
  while (at < buffer.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    let value: bigint | Buffer;
    switch (tag & 7) {
      case 0:
        value = varint();
        break;
      case 1:
        value = buffer.subarray(at, (at += 8));
        break;
      case 2: {
        const length = Number(varint());
        value = buffer.subarray(at, (at += length));
        break;
      }
      case 5:
        value = buffer.subarray(at, (at += 4));
        break;
      default:
        throw new Error(`unsupported wire type ${tag & 7}`);
    }
    fields.set(field, [...(fields.get(field) ?? []), value]);
  }
  return fields;
}

const bytesOf = (fields: Fields, field: number) => (fields.get(field) ?? []).filter((value) => Buffer.isBuffer(value));
const first = (fields: Fields, field: number): Buffer | undefined => bytesOf(fields, field)[0];
const text = (fields: Fields, field: number) => first(fields, field)?.toString('utf8') ?? '';
const hex = (fields: Fields, field: number) => first(fields, field)?.toString('hex') ?? '';
const number = (fields: Fields, field: number) => Number((fields.get(field) ?? []).find((value) => typeof value === 'bigint') ?? 0n);
const messages = (fields: Fields, field: number) => bytesOf(fields, field).map(readFields);

/** AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7. */
function anyValue(fields: Fields): unknown {
  if (fields.has(1)) return text(fields, 1);
  if (fields.has(2)) return number(fields, 2) === 1;
  if (fields.has(3)) return number(fields, 3);
  if (fields.has(4)) return first(fields, 4)?.readDoubleLE(0);
  if (fields.has(5)) return messages(messages(fields, 5)[0] ?? new Map(), 1).map(anyValue);
  if (fields.has(6)) return keyValues(messages(messages(fields, 6)[0] ?? new Map(), 1));
  if (fields.has(7)) return first(fields, 7)?.toString('hex');
  return undefined;
}

/** KeyValue: key 1, value 2. */
function keyValues(list: Fields[]): Record<string, unknown> {
  return Object.fromEntries(list.map((kv) => [text(kv, 1), anyValue(messages(kv, 2)[0] ?? new Map())]));
}

/**
 * ExportTraceServiceRequest: resource_spans 1 → ResourceSpans: resource 1 (attributes 1),
 * scope_spans 2 → ScopeSpans: scope 1 (name 1), spans 2 → Span: trace_id 1, span_id 2,
 * trace_state 3, parent_span_id 4, name 5, kind 6, attributes 9, events 11 (name 2,
 * attributes 3), status 15 (message 2, code 3).
 */
function decodeProtobufRequest(body: Buffer): ReceivedSpan[] {
  return messages(readFields(body), 1).flatMap((resourceSpans) => {
    const resource = keyValues(messages(messages(resourceSpans, 1)[0] ?? new Map(), 1));
    return messages(resourceSpans, 2).flatMap((scopeSpans) => {
      const scope = text(messages(scopeSpans, 1)[0] ?? new Map(), 1);
      return messages(scopeSpans, 2).map((span): ReceivedSpan => {
        const status = messages(span, 15)[0] ?? new Map();
        return {
          traceId: hex(span, 1),
          spanId: hex(span, 2),
          traceState: text(span, 3),
          parentSpanId: hex(span, 4),
          name: text(span, 5),
          kind: kinds[number(span, 6)] ?? 'unspecified',
          attributes: keyValues(messages(span, 9)),
          events: messages(span, 11).map((event) => ({ name: text(event, 2), attributes: keyValues(messages(event, 3)) })),
          status: { code: statusCodes[number(status, 3)] ?? 'unset', message: text(status, 2) },
          resource,
          scope,
        };
      });
    });
  });
}

// --- JSON --------------------------------------------------------------------------------------

interface JsonKeyValue {
  key: string;
  value: JsonAnyValue;
}
interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
}
interface JsonRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: Array<{
      scope?: { name?: string };
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        traceState?: string;
        name: string;
        kind?: number;
        attributes?: JsonKeyValue[];
        events?: Array<{ name: string; attributes?: JsonKeyValue[] }>;
        status?: { code?: number; message?: string };
      }>;
    }>;
  }>;
}

function jsonValue(value: JsonAnyValue): unknown {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(jsonValue);
  if (value.kvlistValue !== undefined) return jsonAttributes(value.kvlistValue.values);
  return undefined;
}

function jsonAttributes(list: JsonKeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, jsonValue(value)]));
}

/** OTLP/JSON: the same messages, with ids as hex strings and enums as numbers. */
function decodeJsonRequest(request: JsonRequest): ReceivedSpan[] {
  return (request.resourceSpans ?? []).flatMap((resourceSpans) => {
    const resource = jsonAttributes(resourceSpans.resource?.attributes);
    return (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
      (scopeSpans.spans ?? []).map((span): ReceivedSpan => ({
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId ?? '',
        traceState: span.traceState ?? '',
        name: span.name,
        kind: kinds[span.kind ?? 0] ?? 'unspecified',
        attributes: jsonAttributes(span.attributes),
        events: (span.events ?? []).map((event) => ({ name: event.name, attributes: jsonAttributes(event.attributes) })),
        status: { code: statusCodes[span.status?.code ?? 0] ?? 'unset', message: span.status?.message ?? '' },
        resource,
        scope: scopeSpans.scope?.name ?? '',
      })),
    );
  });
}
