import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { AppError, ErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RequestSpan, Tracing } from '../observability/tracing.js';

/** What a request's handlers tell its log line and metrics, typed: the one use of `res.locals`. */
declare module 'express-serve-static-core' {
  interface Locals {
    /** The route pattern, for a handler mounted with `use` (Express's own req.route covers the rest). */
    route?: string;
    /** The URL to log instead of the one called, when the path names a user (their id hashed instead). */
    loggedUrl?: string;
    /** The internal caller's configured name. */
    caller?: string;
    /** The problem code of an error answer. */
    problem?: ErrorCode;
    /** Why a 4xx was refused, in fixed words (a user token's audience, …). */
    reason?: string;
    /** The cause of a 5xx, or of an answer cut short. */
    error?: AppError;
  }
}

declare module 'http' {
  interface IncomingMessage {
    /** The request id: the caller's X-Request-Id when it is sane, else a fresh UUID. */
    id: string;
    /** The door's logger, for handlers with something to add; include `requestId: req.id`. */
    log: Logger;
  }
}

/** An inbound X-Request-Id is kept only when it is short and plain, so it cannot forge log lines. */
const saneRequestId = /^[A-Za-z0-9._:-]{1,128}$/;
const quietPaths = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Query parameter names that may carry a credential, matched anywhere in the decoded name and in
 * any case (`apiKey`, `x-api-key`, `access_token`, `X-Amz-Signature`, `client_assertion`), or as
 * the whole name for words too short to look for inside others (`pin`, `otp`, `state`). Broad on
 * purpose: a redacted `country_code` costs a little debugging, a logged key costs a rotation.
 */
const credentialName = /key|token|secret|pass|pwd|sig|code|auth|session|credential|cookie|jwt|bearer|assertion|hmac|nonce|hash/i;
const credentialWord = /^(pin|otp|state)$/i;
const isCredentialName = (name: string) => credentialName.test(name) || credentialWord.test(name);

/**
 * The URL as logged: values of credential-like parameters become `[redacted]`, names stay: in the
 * query, and in `;name=value` parameters of the path, which some servers read too.
 */
function loggedUrl(url: string, queryAt = url.indexOf('?')): string {
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const loggedPath = path.includes(';')
    ? path
        .split('/')
        .map((segment) => redactParams(segment, /(;)/, 1))
        .join('/')
    : path;
  if (queryAt === -1) return loggedPath;
  const query = url.slice(queryAt + 1);
  // Every name is part of the query: when nothing in it matches (and nothing is encoded), none does.
  if (!credentialName.test(query) && !query.includes('%') && !/(^|[&;])(pin|otp|state)=/i.test(query)) return `${loggedPath}?${query}`;
  // `;` separates parameters for some servers: a value after one is judged by its own name.
  return `${loggedPath}?${redactParams(query, /([&;])/, 0)}`;
}

/** Splits on `separator` (kept), redacting each `name=value` from the `first` piece on. */
function redactParams(text: string, separator: RegExp, first: number): string {
  const params = text.split(separator);
  for (let i = first * 2; i < params.length; i += 2) {
    const param = params[i] ?? '';
    const equals = param.indexOf('=');
    if (equals !== -1 && isCredentialName(decodedName(param.slice(0, equals)))) params[i] = `${param.slice(0, equals)}=[redacted]`;
  }
  return params.join('');
}

function decodedName(name: string): string {
  if (!name.includes('%')) return name;
  try {
    return decodeURIComponent(name.replaceAll('+', ' '));
  } catch {
    return name;
  }
}

export type Door = 'public' | 'internal';

/**
 * The request id, one log line per request, the request metrics and, with tracing on, the request's
 * SERVER span, from one listener.
 *
 * This replaces pino-http: it made two child loggers for every request (its design), a clear cost
 * in the proxy's CPU profile (bench/README.md); the line it wrote is the same.
 * Only what helps to trace a call is logged — never headers or bodies, which carry credentials.
 * Probes (`quietPaths`) get no span: at 100 % sampling they would fill the traces.
 */
export function requestObservation({
  logger,
  door,
  metrics,
  tracing,
}: {
  logger: Logger;
  door: Door;
  metrics: Metrics;
  tracing: Tracing;
}): RequestHandler {
  const log = logger.child({ door });
  const traced = tracing.enabled;
  return (req, res, next) => {
    const inbound = req.headers['x-request-id'];
    const id = typeof inbound === 'string' && saneRequestId.test(inbound) ? inbound : randomUUID();
    req.id = id;
    req.log = log;
    res.setHeader('x-request-id', id);
    const startedAt = performance.now();
    const span: RequestSpan | undefined =
      traced && !quietPaths.has(pathOf(req.url)) ? tracing.serverSpan(req.headers, req.method, door) : undefined;

    res.once('close', () => {
      const ms = performance.now() - startedAt;
      const { locals } = res;
      // Route patterns, not URLs, so the label set stays small and holds no ids.
      const route = (req.route as { path?: string } | undefined)?.path ?? locals.route ?? 'unmatched';
      metrics.observeRequest(door, route, req.method, res.statusCode, locals.caller ?? 'none', ms / 1000);
      span?.end(route === 'unmatched' ? undefined : route, res.statusCode, locals.caller);

      const url = locals.loggedUrl ?? req.originalUrl;
      const queryAt = url.indexOf('?');
      if (quietPaths.has(queryAt === -1 ? url : url.slice(0, queryAt))) return;
      const error = locals.error;
      const aborted = !res.writableFinished;
      const fields: Record<string, unknown> = {
        requestId: id,
        method: req.method,
        url: loggedUrl(url, queryAt),
        status: res.statusCode,
        responseTime: Math.round(ms),
        userAgent: req.headers['user-agent'],
      };
      if (span !== undefined) {
        fields.traceId = span.traceId;
        fields.spanId = span.spanId;
      }
      if (locals.caller !== undefined) fields.caller = locals.caller;
      if (locals.problem !== undefined) fields.problem = locals.problem;
      if (locals.reason !== undefined) fields.reason = locals.reason;
      if (error !== undefined) fields.err = error;
      if (aborted) fields.aborted = true;
      if (error !== undefined || res.statusCode >= 500) log.error(fields, 'request failed');
      else log.info(fields, aborted ? 'request aborted' : 'request completed');
    });
    if (span === undefined) next();
    else span.run(next);
  };
}

function pathOf(url: string): string {
  const queryAt = url.indexOf('?');
  return queryAt === -1 ? url : url.slice(0, queryAt);
}
