import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { Tracing } from '../observability/tracing.js';
import { methodNotAllowed, notFound, problemHandler } from './problem.js';
import type { Readiness } from './readiness.js';
import { requestObservation, type Door } from './request-logging.js';

export const healthBody = z.object({
  status: z.literal('ok'),
  version: z.string().meta({ description: 'The broker build (package.json version)' }),
});

export interface BaseAppOptions {
  door: Door;
  logger: Logger;
  metrics: Metrics;
  tracing: Tracing;
  trustProxy: boolean | number | string | undefined;
  readiness: () => Readiness;
  /** This door's OpenAPI description, served as /openapi.json. */
  openapi: object;
  /** The build's version (package.json), shown by /healthz. */
  version: string;
}

/**
 * Security headers for a JSON API, after OWASP's REST Security Cheat Sheet rather than helmet's
 * defaults, which are written for HTML pages (a CSP for scripts and styles, COOP, DNS prefetching,
 * IE8 downloads, Flash policies): every header is paid for on every answer, proxied ones included.
 * The public door answers browsers: nothing may frame or run its answers, and HTTPS is sticky.
 */
const publicHeaders = helmet({
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  xFrameOptions: { action: 'deny' },
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
});

/**
 * The security headers, then `observe` (request id, log line, metrics), as one layer: Express's
 * router pays for every layer on every request (its matching, the closures of `next`). The internal
 * door answers services, never browsers: only `nosniff` means anything there, set directly (helmet
 * with everything else off is that one header behind four calls).
 */
function securedAndObserved(door: Door, observe: RequestHandler): RequestHandler {
  if (door === 'internal') {
    return (req, res, next) => {
      res.setHeader('x-content-type-options', 'nosniff');
      void observe(req, res, next);
    };
  }
  return (req, res, next) => {
    void publicHeaders(req, res, (error?: unknown) => {
      if (error === undefined || error === null) void observe(req, res, next);
      else next(error);
    });
  };
}

/**
 * One door: security headers, request ids and logs, then the door's own routes (first, because
 * they carry the traffic and every layer in front of them is paid on every call), then the probes,
 * and last the 404 and the one place where errors become problem+json. Each known path refuses the
 * methods it does not take with 405 (`methodNotAllowed`), after its own routes.
 */
export function createDoorApp(
  { door, logger, metrics, tracing, trustProxy, readiness, openapi, version }: BaseAppOptions,
  mountRoutes: (app: Express) => void,
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (trustProxy !== undefined) app.set('trust proxy', trustProxy);
  app.use(securedAndObserved(door, requestObservation({ logger, door, metrics, tracing })));

  mountRoutes(app);

  // Liveness: the process answers. It touches nothing, so a slow dependency never gets us killed.
  app.get('/healthz', (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    res.json({ status: 'ok', version } satisfies z.input<typeof healthBody>);
  });
  app.get('/readyz', (_req, res) => {
    const state = readiness();
    const serving = state.status === 'ok' || state.status === 'degraded';
    res.setHeader('cache-control', 'no-store');
    res.status(serving ? 200 : 503).json(state);
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  for (const path of ['/healthz', '/readyz', '/openapi.json']) app.route(path).all(methodNotAllowed(['GET']));

  // Unknown routes and every thrown error end here, as problem+json.
  app.use(notFound);
  app.use(problemHandler);
  return app;
}
