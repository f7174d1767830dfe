import express, { type Express } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { notFound, problemHandler } from './problem.js';
import { requestObservation, type Door } from './request-logging.js';

export const healthBody = z.object({ status: z.literal('ok') });

export const readinessBody = z.object({
  /** ok and degraded answer 200 (the door serves); unavailable and shutting_down answer 503. */
  status: z.enum(['ok', 'degraded', 'unavailable', 'shutting_down']),
  checks: z.object({
    redis: z.enum(['ok', 'down', 'disabled']),
    starshipToken: z.enum(['none', 'valid', 'refreshing', 'expired', 'cooldown']),
  }),
});
export type Readiness = z.output<typeof readinessBody>;

export interface BaseAppOptions {
  door: Door;
  logger: Logger;
  metrics: Metrics;
  trustProxy: boolean | number | string | undefined;
  readiness: () => Readiness;
  /** This door's OpenAPI description, served as /openapi.json. */
  openapi: object;
}

/** What both doors share in front of their routes: security headers, request ids and logs, probes, metrics. */
export function createBaseApp({ door, logger, metrics, trustProxy, readiness, openapi }: BaseAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (trustProxy !== undefined) app.set('trust proxy', trustProxy);
  app.use(helmet());
  app.use(requestObservation({ logger, door, metrics }));

  // Liveness: the process answers. It touches nothing, so a slow dependency never gets us killed.
  app.get('/healthz', (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    res.json({ status: 'ok' } satisfies z.input<typeof healthBody>);
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
  return app;
}

/** Unknown routes and every thrown error end here, as problem+json. */
export function finishApp(app: Express): Express {
  app.use(notFound);
  app.use(problemHandler);
  return app;
}
