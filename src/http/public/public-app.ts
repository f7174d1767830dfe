import cors from 'cors';
import type { Express } from 'express';
import { createDoorApp, type BaseAppOptions } from '../door-app.js';
import { connectTokenPath, connectTokenRoute, type ConnectTokenRouteDeps } from './connect-token-route.js';
import { methodNotAllowed } from '../problem.js';

export interface PublicAppDeps extends Omit<BaseAppOptions, 'door'> {
  corsOrigins: readonly string[];
  connectToken: ConnectTokenRouteDeps;
}

/** The public door: what a signed-in user's browser or app may call. */
export function createPublicApp(deps: PublicAppDeps): Express {
  return createDoorApp({ ...deps, door: 'public' }, (app) => {
    if (deps.corsOrigins.length > 0) {
      // On the one route browsers call: the probes and OpenAPI stay unreadable to other origins.
      app.use(
        connectTokenPath,
        cors({
          origin: [...deps.corsOrigins],
          methods: ['POST'],
          allowedHeaders: ['authorization', 'content-type'],
          // A browser app can read only the headers listed here: the rate-limit ones let it pace itself.
          exposedHeaders: ['x-request-id', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'],
          maxAge: 600,
        }),
      );
    }
    app.post(connectTokenPath, connectTokenRoute(deps.connectToken));
    app.route(connectTokenPath).all(methodNotAllowed(['POST']));
  });
}
