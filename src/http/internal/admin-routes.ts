import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { starshipCredentialStates } from '../../credentials/starship-credential.js';
import type { StarshipSession } from '../../credentials/starship-session.js';
import { jsonObjectReader } from '../parse-body.js';
import { methodNotAllowed } from '../problem.js';

export interface AdminDeps {
  /** Undefined when Starship is called with an API key: there is no session to show or renew. */
  session: StarshipSession | undefined;
  /** Authenticates the service, then checks it is an admin caller. */
  authorize: RequestHandler[];
}

export const renewBody = z.strictObject({ revokePrevious: z.boolean().optional() });

export const sessionStatusBody = z.object({
  state: z.enum(starshipCredentialStates),
  accessExpiresAt: z.iso.datetime().nullable(),
  refreshExpiresAt: z.iso.datetime().nullable(),
  clientId: z.string().nullable(),
  cooldownUntil: z.iso.datetime().nullable(),
});

/** What the routes answer, checked against the schema the OpenAPI description is made from. */
type SessionAnswer = z.input<typeof sessionStatusBody>;

/** The answer with STARSHIP_AUTH=api-key: a key has no expiry, no client id, no cooldown. */
const staticStatus = { state: 'static', accessExpiresAt: null, refreshExpiresAt: null, clientId: null, cooldownUntil: null } as const;

/** Operator routes for the Starship session. They show times and ids, never a token. */
export function adminRouter({ session, authorize }: AdminDeps): Router {
  const router = Router();

  router.get('/v1/admin/starship/session', ...authorize, async (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    const answer: SessionAnswer = session === undefined ? staticStatus : await session.status();
    res.json(answer);
  });

  // The one call where what the body says matters most: a revokePrevious that went unread would
  // log in again without logging out. So a body in any other type or charset is refused (415), not
  // skipped; no body at all means {} (a plain renewal).
  const readBody = jsonObjectReader({ limit: '1kb' });
  router.post('/v1/admin/starship/session/renew', ...authorize, async (req, res) => {
    const parsed = renewBody.safeParse((await readBody(req, res)) ?? {});
    if (!parsed.success) throw new AppError('invalid_request', 'The body may hold only {"revokePrevious": true|false}.');
    if (session === undefined)
      throw new AppError('no_session', 'Starship is called with an API key (STARSHIP_AUTH=api-key): there is no session to renew.');
    await session.forceLogin({ revokePrevious: parsed.data.revokePrevious ?? false });
    const answer: SessionAnswer = await session.status();
    res.setHeader('cache-control', 'no-store');
    res.json(answer);
  });

  // Before the service key is checked: that a route exists is no secret (it is in /openapi.json).
  router.route('/v1/admin/starship/session').all(methodNotAllowed(['GET']));
  router.route('/v1/admin/starship/session/renew').all(methodNotAllowed(['POST']));

  return router;
}
