import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { starshipSignature } from '../../sandbox/webhook-sender.js';
import { loadConfig } from '../../src/config/load-config.js';
import { loadTracingSdk, noTracing, type TracingSdk } from '../../src/observability/tracing.js';
import { readPackageVersion } from '../../src/package-version.js';
import { baseEnv, benjiApiKey, buildBroker, serviceKeys, starshipPassword, starshipUsername, type TestBroker } from '../support/broker.js';
import { startFakeBenji } from '../support/fakes.js';
import { signUserToken } from '../support/jwt.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { startBrokerProcess } from '../support/process.js';
import { allSecrets, secret } from '../support/secrets.js';
import { until } from '../support/until.js';

/*
 * Tracing through HTTP, against a loopback OTLP/HTTP receiver that decodes what the exporter really
 * sends: the caller's trace continued, the broker's own span context sent to Benji, Starship and the
 * webhook target, spans for renewals, lock waits and webhooks, trace ids in the log lines, and no
 * secret, user id, body or query in any exported byte. With no OTLP endpoint, no SDK is loaded.
 */

const starshipWebhookSecret = secret('starship-webhook-secret-for-traces-1a2b');
const forwardSecret = secret(`whsec_${randomBytes(32).toString('base64')}`);
const userId = secret('trace-user-0042');
const userIdHash = createHash('sha256').update(userId).digest('hex');
/** In a webhook's body and in a proxied query: neither may reach a span. */
const bodyMarker = 'event-body-marker-5c1d9e';
const queryMarker = 'query-marker-3b7a60';

/** What a span may carry, by attribute name (src/observability/tracing.ts). */
const allowedAttributes = new Set([
  'broker.door',
  'broker.caller',
  'broker.upstream',
  'broker.operation',
  'broker.outcome',
  'broker.lock',
  'broker.webhook.provider',
  'broker.webhook.duplicate',
  'broker.webhook.attempt',
  'http.request.method',
  'http.route',
  'http.response.status_code',
  'error.type',
]);

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
const traceparentOf = (headers: IncomingHttpHeaders) => {
  const match = traceparentPattern.exec(String(headers.traceparent));
  return match === null ? undefined : { traceId: match[1], parentId: match[2], flags: match[3] };
};
const callerContext = () => ({ traceId: randomBytes(16).toString('hex'), parentId: randomBytes(8).toString('hex') });

/** A webhook target that records what it receives and answers 200. */
async function startTarget() {
  const received: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(req.headers);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Flushes the broker's spans until one matches (server spans end on the response's close, a moment after it). */
async function spanWhere(subject: TestBroker, receiver: OtlpReceiver, what: string, match: (span: ReceivedSpan) => boolean) {
  await until(async () => {
    await subject.broker.tracing.flush();
    return receiver.spans.some(match);
  }, what);
  return receiver.spans.find(match) as ReceivedSpan;
}

describe('a traced broker (OTLP/HTTP protobuf)', () => {
  let now = Date.now();
  const clock = () => now;
  let sdk: TracingSdk;
  let receiver: OtlpReceiver;
  let starship: FakeStarship;
  let benji: FakeBenji;
  let target: Awaited<ReturnType<typeof startTarget>>;
  let subject: TestBroker;

  beforeAll(async () => {
    sdk = await loadTracingSdk();
    receiver = await startOtlpReceiver();
    starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword, clock });
    // Two-hour user tokens: refreshed an hour in (half their lifetime).
    benji = await startFakeBenji({ apiKey: benjiApiKey, clock, userAccessTtlS: 2 * 3600 });
    target = await startTarget();
    subject = buildBroker(
      {
        STARSHIP_BASE_URL: starship.url,
        BENJI_BASE_URL: benji.url,
        BENJI_AUTH_BASE_URL: benji.url,
        STARSHIP_WEBHOOK_SECRET: starshipWebhookSecret,
        WEBHOOK_FORWARD_URL: target.url,
        WEBHOOK_FORWARD_SECRET: forwardSecret,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      },
      { clock, tracingSdk: sdk, deliveryTimings: { blockMs: 50 } },
    );
  });
  afterAll(async () => {
    await subject.close();
    await Promise.all([receiver.close(), starship.close(), benji.close(), target.close()]);
  });

  const internal = () => subject.broker.internalApp;
  const asOrders = (call: request.Test) => call.set('authorization', `Bearer ${serviceKeys.orders}`);

  it('continues the caller’s trace: SERVER span, a CLIENT span per upstream call, whose context Starship receives', async () => {
    const caller = callerContext();
    const res = await asOrders(request(internal()).get(`/v1/starship/api/v1/products?search=${queryMarker}`))
      .set('traceparent', `00-${caller.traceId}-${caller.parentId}-01`)
      .set('tracestate', 'vendor=opaque');
    expect(res.status).toBe(200);

    const server = await spanWhere(
      subject,
      receiver,
      'the proxy’s server span',
      (s) => s.kind === 'server' && s.traceId === caller.traceId,
    );
    expect(server).toMatchObject({
      name: 'GET /v1/starship/{path}',
      parentSpanId: caller.parentId,
      traceState: 'vendor=opaque',
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/v1/starship/{path}',
        'http.response.status_code': 200,
        'broker.door': 'internal',
        'broker.caller': 'orders',
      },
      status: { code: 'unset' },
      scope: 'token-broker',
    });
    expect(server.resource).toMatchObject({ 'service.name': 'token-broker', 'service.version': readPackageVersion() });

    // The proxied call: its span is the parent Starship was told of, in the caller's trace.
    const proxied = starship.requests.find((r) => r.path === '/api/v1/products');
    const sent = traceparentOf(proxied?.headers ?? {});
    expect(sent).toMatchObject({ traceId: caller.traceId, flags: '01' });
    expect(sent?.parentId).not.toBe(caller.parentId);
    expect(proxied?.headers.tracestate).toBe('vendor=opaque');
    const client = receiver.spans.find((s) => s.spanId === sent?.parentId);
    expect(client).toMatchObject({
      kind: 'client',
      name: 'GET starship proxy',
      traceId: caller.traceId,
      parentSpanId: server.spanId,
      attributes: { 'broker.upstream': 'starship', 'broker.operation': 'proxy', 'http.response.status_code': 200 },
    });

    // The first call needed a session: the login, its lock wait and its own call to Starship, all in this trace.
    const inTrace = receiver.spans.filter((s) => s.traceId === caller.traceId);
    const login = inTrace.find((s) => s.name === 'starship session login');
    expect(login).toMatchObject({ kind: 'internal', parentSpanId: server.spanId, attributes: { 'broker.outcome': 'success' } });
    expect(inTrace.find((s) => s.name === 'starship session lock wait')).toMatchObject({
      parentSpanId: server.spanId,
      attributes: { 'broker.lock': 'starship session', 'broker.outcome': 'held' },
    });
    const loginCall = inTrace.find((s) => s.name === 'POST starship login');
    expect(loginCall).toMatchObject({ kind: 'client', parentSpanId: login?.spanId, attributes: { 'http.response.status_code': 200 } });
    const loginRequest = starship.requests.find((r) => r.path === '/auth/login');
    expect(traceparentOf(loginRequest?.headers ?? {})).toMatchObject({ traceId: caller.traceId, parentId: loginCall?.spanId });

    // Log lines carry the ids: the request's line its server span's, the login's line the login span's.
    const lines = subject.logs.entries();
    const completed = lines.find((l) => l.msg === 'request completed' && l.traceId === caller.traceId);
    expect(completed).toMatchObject({ spanId: server.spanId, url: expect.stringContaining('/v1/starship/api/v1/products') });
    // Logged once the login's span has ended, in the request's.
    expect(lines.find((l) => l.msg === 'starship login succeeded')).toMatchObject({ traceId: caller.traceId, spanId: server.spanId });
  });

  it('starts a trace of its own without a valid traceparent, and sends it to Benji (public door)', async () => {
    const jwt = await signUserToken({ sub: userId });
    const res = await request(subject.broker.publicApp)
      .post('/v1/benji/connect-token')
      .set('authorization', `Bearer ${jwt}`)
      .set('traceparent', 'not-a-traceparent')
      .send({ mode: 'connect' });
    expect(res.status).toBe(200);
    const connect = benji.requests.find((r) => r.path === '/auth/connect');
    const sent = traceparentOf(connect?.headers ?? {});
    expect(sent).toBeDefined();
    const client = await spanWhere(subject, receiver, 'the connect call', (s) => s.spanId === sent?.parentId);
    expect(client).toMatchObject({ kind: 'client', name: 'POST benji connect', attributes: { 'broker.upstream': 'benji' } });
    const server = await spanWhere(subject, receiver, 'the connect-token server span', (s) => s.spanId === client.parentSpanId);
    expect(server).toMatchObject({
      kind: 'server',
      name: 'POST /v1/benji/connect-token',
      parentSpanId: '',
      attributes: { 'broker.door': 'public', 'http.route': '/v1/benji/connect-token', 'http.response.status_code': 200 },
    });
    expect(server.attributes['broker.caller']).toBeUndefined();

    // A link for the renewal test below.
    const linked = await request(subject.broker.publicApp)
      .post('/v1/benji/exchange')
      .set('authorization', `Bearer ${jwt}`)
      .send({ exchangeToken: benji.issueExchangeToken(`ext-${userId}`) });
    expect(linked.status).toBe(200);
  });

  it('makes each renewal a span with its outcome: the Starship refresh, a linked user’s refresh, their lock waits', async () => {
    // Past the Starship access token's 15 minutes, and into the linked user's refresh window.
    now += 3600_000 + 60_000;
    const proxied = await asOrders(request(internal()).get('/v1/starship/api/v1/products'));
    expect(proxied.status).toBe(200);
    const refresh = await spanWhere(subject, receiver, 'the starship refresh', (s) => s.name === 'starship session refresh');
    expect(refresh).toMatchObject({ kind: 'internal', attributes: { 'broker.operation': 'refresh', 'broker.outcome': 'success' } });
    const server = receiver.spans.find((s) => s.spanId === refresh.parentSpanId);
    expect(server).toMatchObject({ kind: 'server', name: 'GET /v1/starship/{path}' });

    const asUser = await asOrders(request(internal()).get(`/v1/benji-users/${userId}/users/me`));
    expect(asUser.status).toBe(200);
    const userRefresh = await spanWhere(subject, receiver, 'the linked user’s refresh', (s) => s.name === 'benji link refresh');
    expect(userRefresh).toMatchObject({ attributes: { 'broker.outcome': 'success' } });
    const userServer = receiver.spans.find((s) => s.spanId === userRefresh.parentSpanId);
    // Named by the route's pattern: the user id stays out of the span.
    expect(userServer).toMatchObject({ name: 'GET /v1/benji-users/{userId}/{path}', attributes: { 'broker.caller': 'orders' } });
    expect(
      receiver.spans.find(
        (s) => s.name === 'benji link lock wait' && s.parentSpanId === userRefresh.parentSpanId && s.traceId === userRefresh.traceId,
      ),
    ).toMatchObject({ attributes: { 'broker.lock': 'benji link', 'broker.outcome': 'held' } });
    expect(receiver.spans.find((s) => s.name === 'GET benji refresh' && s.parentSpanId === userRefresh.spanId)).toMatchObject({
      kind: 'client',
      attributes: { 'http.response.status_code': 200 },
    });
  });

  it('puts a webhook’s receipt on its request span (provider, outcome, duplicate) and makes each delivery a span the target continues', async () => {
    const body = JSON.stringify({ id: 'evt_trace_1', event_type: 'order.created', data: { note: bodyMarker } });
    const send = (signature?: string) => {
      const timestamp = String(Math.floor(now / 1000));
      return request(subject.broker.publicApp)
        .post('/v1/webhooks/starship')
        .set('content-type', 'application/json')
        .set('x-timestamp', timestamp)
        .set('x-signature', signature ?? starshipSignature(starshipWebhookSecret, timestamp, body))
        .send(body);
    };
    expect((await send()).status).toBe(200);
    expect((await send()).body).toEqual({ received: true, duplicate: true });
    expect((await send('0'.repeat(64))).status).toBe(401);

    const receipts = async (count: number) => {
      await until(async () => {
        await subject.broker.tracing.flush();
        return receiver.spans.filter((s) => s.name === 'POST /v1/webhooks/starship').length >= count;
      }, `${count} webhook server spans`);
      return receiver.spans.filter((s) => s.name === 'POST /v1/webhooks/starship').map((s) => s.attributes);
    };
    const stored = await spanWhere(subject, receiver, 'the first receipt', (s) => s.attributes['broker.outcome'] === 'stored');
    // A line logged inside the request's handlers carries its span's ids.
    expect(subject.logs.entries().find((l) => l.msg === 'webhook received')).toMatchObject({
      traceId: stored.traceId,
      spanId: stored.spanId,
    });
    expect(await receipts(3)).toEqual([
      expect.objectContaining({ 'broker.webhook.provider': 'starship', 'broker.outcome': 'stored', 'broker.webhook.duplicate': false }),
      expect.objectContaining({ 'broker.webhook.provider': 'starship', 'broker.outcome': 'duplicate', 'broker.webhook.duplicate': true }),
      expect.objectContaining({ 'broker.outcome': 'rejected', 'error.type': 'bad_signature', 'http.response.status_code': 401 }),
    ]);

    await subject.broker.warmUp(); // starts the delivery worker
    await until(() => target.received.length === 1, 'the delivery');
    const sent = traceparentOf(target.received[0] ?? {});
    const delivery = await spanWhere(subject, receiver, 'the delivery span', (s) => s.spanId === sent?.parentId);
    expect(delivery).toMatchObject({
      kind: 'client',
      name: 'POST webhook delivery',
      attributes: { 'broker.webhook.provider': 'starship', 'broker.webhook.attempt': 1, 'broker.outcome': 'delivered' },
    });
    expect(subject.logs.entries().find((l) => l.msg === 'webhook delivered')).toMatchObject({
      traceId: delivery.traceId,
      spanId: delivery.spanId,
    });
  });

  it('exports no token, key, secret, user id, body or query: not in any byte sent, nor under any attribute name but the allowed', async () => {
    await subject.broker.tracing.flush();
    expect(receiver.exports.length).toBeGreaterThan(0);
    expect(receiver.exports.every((e) => e.contentType === 'application/x-protobuf')).toBe(true);
    const forbidden = [...allSecrets(), userId, userIdHash, userIdHash.slice(0, 16), bodyMarker, queryMarker];
    for (const { body } of receiver.exports) {
      const bytes = body.toString('latin1');
      expect(forbidden.filter((value) => bytes.includes(value)).map((value) => `${value.slice(0, 6)}…`)).toEqual([]);
      // Starship's tokens, which the broker never hands to a test, by their shape.
      expect(bytes.match(/\b(at|rt)_[0-9a-f]{48}\b/g) ?? []).toEqual([]);
    }
    const names = new Set(
      receiver.spans.flatMap((s) => [...Object.keys(s.attributes), ...s.events.flatMap((e) => Object.keys(e.attributes))]),
    );
    expect([...names].filter((name) => !allowedAttributes.has(name))).toEqual([]);
    expect(receiver.spans.flatMap((s) => s.events)).toEqual([]);
    expect(receiver.spans.filter((s) => s.status.message !== '')).toEqual([]);
  });
});

describe('sampling', () => {
  it('OTEL_TRACES_SAMPLER applies: at ratio 0 nothing is exported, and upstreams get the context unsampled', async () => {
    const receiver = await startOtlpReceiver();
    const starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
    const subject = buildBroker(
      {
        STARSHIP_BASE_URL: starship.url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0',
      },
      { tracingSdk: await loadTracingSdk() },
    );
    try {
      const caller = callerContext();
      const res = await request(subject.broker.internalApp)
        .get('/v1/starship/api/v1/products')
        .set('authorization', `Bearer ${serviceKeys.orders}`)
        .set('traceparent', `00-${caller.traceId}-${caller.parentId}-01`);
      expect(res.status).toBe(200);
      // Not parent-based: the caller's sampled flag does not decide.
      const sent = traceparentOf(starship.requests.find((r) => r.path === '/api/v1/products')?.headers ?? {});
      expect(sent).toMatchObject({ traceId: caller.traceId, flags: '00' });
      await subject.broker.tracing.flush();
      expect(receiver.spans).toEqual([]);
    } finally {
      await subject.close();
      await Promise.all([receiver.close(), starship.close()]);
    }
  });
});

describe('a collector refusing spans', () => {
  it('is logged once at warn with its status, and again only after an export has succeeded', async () => {
    let status = 400;
    const exports: number[] = [];
    const collector = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        exports.push(status);
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const subject = buildBroker({ OTEL_EXPORTER_OTLP_ENDPOINT: url }, { tracingSdk: await loadTracingSdk() });
    const exportOnce = async () => {
      const before = exports.length;
      // Any request makes a span (404: no such route).
      await request(subject.broker.internalApp).get('/nothing-here');
      await until(async () => {
        await subject.broker.tracing.flush();
        return exports.length > before;
      }, 'an export');
    };
    const warnings = () => subject.logs.entries().filter((l) => String(l.msg).startsWith('trace export failed'));
    try {
      await exportOnce();
      await exportOnce();
      expect(warnings()).toEqual([expect.objectContaining({ level: 'warn', status: 400 })]);
      status = 200;
      await exportOnce();
      status = 400;
      await exportOnce();
      expect(warnings()).toHaveLength(2);
    } finally {
      await subject.close();
      collector.closeAllConnections();
      collector.close();
    }
  });
});

describe('tracing off', () => {
  it('without an OTLP endpoint the broker has no tracing, and the caller’s traceparent is not forwarded', async () => {
    const starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
    const subject = buildBroker({ STARSHIP_BASE_URL: starship.url });
    try {
      expect(subject.broker.tracing).toBe(noTracing);
      const caller = callerContext();
      const res = await request(subject.broker.internalApp)
        .get('/v1/starship/api/v1/products')
        .set('authorization', `Bearer ${serviceKeys.orders}`)
        .set('traceparent', `00-${caller.traceId}-${caller.parentId}-01`)
        .set('tracestate', 'vendor=opaque');
      expect(res.status).toBe(200);
      const proxied = starship.requests.find((r) => r.path === '/api/v1/products');
      expect(proxied?.headers.traceparent).toBeUndefined();
      expect(proxied?.headers.tracestate).toBeUndefined();
      expect(subject.logs.entries().find((l) => l.msg === 'request completed')).not.toHaveProperty('traceId');
    } finally {
      await subject.close();
      await starship.close();
    }
  });

  it('OTEL_SDK_DISABLED=true turns it off even with an endpoint', () => {
    const loaded = loadConfig({ ...baseEnv, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'TRUE' });
    expect(loaded.ok && loaded.config.tracing).toBeUndefined();
  });
});

describe('configuration', () => {
  const tracingOf = (env: Record<string, string>) => {
    const loaded = loadConfig({ ...baseEnv, ...env });
    return loaded.ok ? loaded.config.tracing : loaded.problems;
  };

  it('sends to the traces endpoint as given, or to the general one with /v1/traces', () => {
    expect(tracingOf({})).toBeUndefined();
    expect(tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
    });
    expect(
      tracingOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example.com/otlp/spans',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      }),
    ).toEqual({
      url: 'https://traces.example.com/otlp/spans',
      protocol: 'http/json',
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
    });
  });

  it('refuses at start what the exporter or the SDK could not do, naming the variable', () => {
    expect(
      tracingOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_TRACES_SAMPLER: 'jaeger_remote',
        OTEL_TRACES_SAMPLER_ARG: '1.5',
      }),
    ).toEqual([
      expect.stringMatching(/^OTEL_EXPORTER_OTLP_ENDPOINT: must be an http\(s\) URL/),
      expect.stringMatching(/^OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported/),
      expect.stringMatching(/^OTEL_TRACES_SAMPLER: must be one of/),
      'OTEL_TRACES_SAMPLER_ARG: must be a ratio from 0 to 1',
    ]);
  });
});

describe('the process', () => {
  /** The broker as production runs it, with the module watch (test/support/module-watch.mjs) loaded first. */
  async function runBroker(env: Record<string, string>) {
    const starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
    const broker = await startBrokerProcess(
      { ...baseEnv, STARSHIP_BASE_URL: starship.url, ...env },
      { nodeArgs: ['--import', './test/support/module-watch.mjs'] },
    );
    try {
      const res = await request(`http://127.0.0.1:${broker.internalPort}`)
        .get('/v1/starship/api/v1/products')
        .set('authorization', `Bearer ${serviceKeys.orders}`);
      expect(res.status).toBe(200);
    } finally {
      broker.child.kill('SIGTERM');
      expect(await broker.exited).toBe(0);
      await starship.close();
    }
    const line = /opentelemetry modules loaded: (\[.*\])/.exec(broker.stderr())?.[1];
    expect(line, broker.stderr()).toBeDefined();
    return { modules: JSON.parse(line ?? '[]') as string[], stdout: broker.stdout() };
  }

  it('with no OTEL_* set, loads no OpenTelemetry SDK, exporter or context manager', async () => {
    const { modules } = await runBroker({});
    // Only the API, which prom-client has always loaded (for its exemplars): without an SDK it is a no-op.
    expect(modules.filter((name) => name !== '@opentelemetry/api')).toEqual([]);
  }, 30_000);

  it('with an endpoint, loads the SDK, which reads OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the exporter’s headers; JSON when asked; exports at shutdown', async () => {
    const collectorKey = secret('collector-api-key-9d8c7b6a5f');
    const receiver = await startOtlpReceiver();
    try {
      const { modules } = await runBroker({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_HEADERS: `x-collector-key=${collectorKey}`,
        OTEL_SERVICE_NAME: 'orders-broker',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,service.name=overridden',
      });
      expect(modules).toEqual(expect.arrayContaining(['@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-http']));
      expect(receiver.exports.map((e) => e.contentType)).toEqual(expect.arrayContaining([expect.stringMatching(/^application\/json/)]));
      expect(receiver.exports.every((e) => e.headers['x-collector-key'] === collectorKey)).toBe(true);
      const server = receiver.spans.find((s) => s.kind === 'server');
      expect(server).toMatchObject({ name: 'GET /v1/starship/{path}', attributes: { 'broker.caller': 'orders' } });
      // OTEL_SERVICE_NAME wins over the same key in OTEL_RESOURCE_ATTRIBUTES, and both over the broker's default.
      expect(server?.resource).toMatchObject({ 'service.name': 'orders-broker', 'deployment.environment.name': 'test' });
      // The start-up login, before any request: a trace of its own.
      expect(receiver.spans.find((s) => s.name === 'starship session login')).toMatchObject({ parentSpanId: '' });
    } finally {
      await receiver.close();
    }
  }, 30_000);
});
