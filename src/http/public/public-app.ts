import cors from 'cors';
import type { Express } from 'express';
import { createDoorApp, type BaseAppOptions } from '../door-app.js';
import { connectTokenPath, connectTokenRoute, type ConnectTokenRouteDeps } from './connect-token-route.js';
import { methodNotAllowed } from '../problem.js';
import { mountWebhookRoutes, type WebhookRouteDeps } from './webhook-routes.js';
import { exchangePath, linkPath, mountBenjiLinkRoutes, type BenjiLinkRouteDeps } from './benji-link-routes.js';

export interface PublicAppDeps extends Omit<BaseAppOptions, 'door'> {
  corsOrigins: readonly string[];
  connectToken: ConnectTokenRouteDeps;
  /** The user's Benji link; absent without user auth (FRONTEND_AUTH=none), when its routes answer 404. */
  benjiLinks: BenjiLinkRouteDeps | undefined;
  webhooks: WebhookRouteDeps;
}

/** The public door: what a signed-in user's browser or app may call. */
export function createPublicApp(deps: PublicAppDeps): Express {
  return createDoorApp({ ...deps, door: 'public' }, (app) => {
    if (deps.corsOrigins.length > 0) {
      const corsFor = (methods: string[]) =>
        cors({
          origin: [...deps.corsOrigins],
          methods,
          allowedHeaders: ['authorization', 'content-type'],
          // A browser app can read only the headers listed here: the rate-limit ones let it pace itself.
          exposedHeaders: ['x-request-id', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'],
          maxAge: 600,
        });
      // On the routes browsers call: the probes and OpenAPI stay unreadable to other origins.
      app.use(connectTokenPath, corsFor(['POST']));
      if (deps.benjiLinks !== undefined) app.use([exchangePath, linkPath], corsFor(['GET', 'POST', 'DELETE']));
    }
    app.post(connectTokenPath, connectTokenRoute(deps.connectToken));
    app.route(connectTokenPath).all(methodNotAllowed(['POST']));
    if (deps.benjiLinks !== undefined) mountBenjiLinkRoutes(app, deps.benjiLinks);
    mountWebhookRoutes(app, deps.webhooks);
  });
}
