import type { Express } from 'express';
import { createBaseApp, finishApp, type BaseAppOptions } from './base-app.js';

export type InternalAppDeps = Omit<BaseAppOptions, 'door'>;

/** The internal door: for the company's own services, on its own port, never exposed to browsers. */
export function createInternalApp(deps: InternalAppDeps): Express {
  const app = createBaseApp({ ...deps, door: 'internal' });
  return finishApp(app);
}
