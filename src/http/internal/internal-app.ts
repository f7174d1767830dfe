import type { Express } from 'express';
import { adminRouter, type AdminDeps } from './admin-routes.js';
import { benjiLinksRouter } from './benji-links-route.js';
import { webhookAdminRouter } from './webhook-admin-routes.js';
import { createDoorApp, type BaseAppOptions } from '../door-app.js';
import { methodNotAllowed } from '../problem.js';
import { proxyRoute, type ProxyRoute } from './proxy/proxy-engine.js';

export interface InternalAppDeps extends Omit<BaseAppOptions, 'door'> {
  /** The proxied upstreams, each mounted at its own path (the Starship proxy at /v1/starship). */
  proxies: readonly ProxyRoute[];
  admin: AdminDeps;
  /** Services read users' links here (never a token). */
  benjiLinks: Parameters<typeof benjiLinksRouter>[0];
  webhookAdmin: Parameters<typeof webhookAdminRouter>[0];
}

/** The internal door: for the company's own services, on its own port, never exposed to browsers. */
export function createInternalApp(deps: InternalAppDeps): Express {
  return createDoorApp({ ...deps, door: 'internal' }, (app) => {
    // The proxies carry nearly all the traffic: they go first, one layer each. The links route goes
    // before the Benji proxy mounted at /v1/benji: /v1/benji/links is the broker's, never Benji's.
    const links = benjiLinksRouter(deps.benjiLinks);
    let linksMounted = false;
    for (const proxy of deps.proxies) {
      if (!linksMounted && proxy.mountPath.startsWith('/v1/benji')) {
        app.use(links);
        linksMounted = true;
      }
      app.use(proxy.mountPath, proxyRoute(proxy));
    }
    if (!linksMounted) app.use(links);
    app.use(adminRouter(deps.admin));
    app.use(webhookAdminRouter(deps.webhookAdmin));
    // Prometheus scrapes the internal port only: metrics describe traffic, which is not for the public.
    app.get('/metrics', async (_req, res) => {
      res.setHeader('content-type', deps.metrics.registry.contentType);
      res.send(await deps.metrics.registry.metrics());
    });
    app.route('/metrics').all(methodNotAllowed(['GET']));
  });
}
