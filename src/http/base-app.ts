import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Logger } from '../observability/logger.js';
import { notFound, problemHandler } from './problem.js';
import { requestLogging, type Door } from './request-logging.js';

export interface Readiness {
  status: 'ok' | 'degraded' | 'unavailable' | 'shutting_down';
  checks: Record<string, string>;
}

export interface BaseAppOptions {
  door: Door;
  logger: Logger;
  trustProxy: boolean | number | string | undefined;
  readiness: () => Readiness;
}

/** What both doors share in front of their routes: security headers, request ids and logs, probes. */
export function createBaseApp({ door, logger, trustProxy, readiness }: BaseAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (trustProxy !== undefined) app.set('trust proxy', trustProxy);
  app.use(helmet());
  app.use(requestLogging(logger, door));

  // Liveness: the process answers. It touches nothing, so a slow dependency never gets us killed.
  app.get('/healthz', (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const state = readiness();
    const serving = state.status === 'ok' || state.status === 'degraded';
    res.setHeader('cache-control', 'no-store');
    res.status(serving ? 200 : 503).json(state);
  });
  return app;
}

/** Unknown routes and every thrown error end here, as problem+json. */
export function finishApp(app: Express): Express {
  app.use(notFound);
  app.use(problemHandler);
  return app;
}
