import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { AppError } from '../errors.js';
import type { SessionStatus, TokenManager } from '../tokens/token-manager.js';

export interface AdminDeps {
  tokens: TokenManager;
  /** Authenticates the service, then checks it is an admin caller. */
  authorize: RequestHandler[];
}

export const renewBody = z.strictObject({ revokePrevious: z.boolean().optional() });

export const sessionStatusBody = z.object({
  state: z.enum(['none', 'valid', 'refreshing', 'expired', 'rejected', 'cooldown']),
  accessExpiresAt: z.iso.datetime().nullable(),
  refreshExpiresAt: z.iso.datetime().nullable(),
  clientId: z.string().nullable(),
  cooldownUntil: z.iso.datetime().nullable(),
}) satisfies z.ZodType<SessionStatus>;

/** Operator routes for the Starship session. They show times and ids, never a token. */
export function adminRouter({ tokens, authorize }: AdminDeps): Router {
  const router = Router();

  router.get('/v1/admin/starship/session', ...authorize, async (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    res.json(await tokens.status());
  });

  router.post('/v1/admin/starship/session/renew', ...authorize, express.json({ limit: '1kb' }), async (req, res) => {
    const parsed = renewBody.safeParse(req.body ?? {});
    if (!parsed.success) throw new AppError('invalid_request', 'The body may hold only {"revokePrevious": true|false}.');
    await tokens.forceLogin({ revokePrevious: parsed.data.revokePrevious ?? false });
    res.setHeader('cache-control', 'no-store');
    res.json(await tokens.status());
  });

  return router;
}
