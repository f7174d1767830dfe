import type { Express } from 'express';
import { adminRouter, type AdminDeps } from './admin-routes.js';
import { createDoorApp, type BaseAppOptions } from '../door-app.js';
import { methodNotAllowed } from '../problem.js';
import { starshipMountPath, starshipProxy, type StarshipProxyDeps } from './starship-proxy-route.js';

export interface InternalAppDeps extends Omit<BaseAppOptions, 'door'> {
  starshipProxy: StarshipProxyDeps;
  admin: AdminDeps;
}

/** The internal door: for the company's own services, on its own port, never exposed to browsers. */
export function createInternalApp(deps: InternalAppDeps): Express {
  return createDoorApp({ ...deps, door: 'internal' }, (app) => {
    // The proxy carries nearly all the traffic: it goes first, as one layer.
    app.use(starshipMountPath, starshipProxy(deps.starshipProxy));
    app.use(adminRouter(deps.admin));
    // Prometheus scrapes the internal port only: metrics describe traffic, which is not for the public.
    app.get('/metrics', async (_req, res) => {
      res.setHeader('content-type', deps.metrics.registry.contentType);
      res.send(await deps.metrics.registry.metrics());
    });
    app.route('/metrics').all(methodNotAllowed(['GET']));
  });
}
