import type { Express } from 'express';
import { adminRouter, type AdminDeps } from './admin-routes.js';
import { createBaseApp, finishApp, type BaseAppOptions } from './base-app.js';
import { starshipProxyRouter, type StarshipProxyDeps } from './starship-proxy-route.js';

export interface InternalAppDeps extends Omit<BaseAppOptions, 'door'> {
  starshipProxy: StarshipProxyDeps;
  admin: AdminDeps;
}

/** The internal door: for the company's own services, on its own port, never exposed to browsers. */
export function createInternalApp(deps: InternalAppDeps): Express {
  const app = createBaseApp({ ...deps, door: 'internal' });
  app.use(adminRouter(deps.admin));
  app.use(starshipProxyRouter(deps.starshipProxy));
  return finishApp(app);
}
