import type { Express, Request } from 'express';
import type { BenjiLink, BenjiLinks } from '../../credentials/benji-links.js';
import { AppError } from '../../errors.js';
import { jsonObjectReader } from '../parse-body.js';
import { invalidRequest, methodNotAllowed } from '../problem.js';
import { exchangeBody, type LinkStatusBody } from './benji-link-schema.js';
import { enforceRateLimit, type ConnectRateLimit } from './connect-rate-limit.js';
import type { UserIdentifier } from './frontend-auth.js';

export interface BenjiLinkRouteDeps {
  links: BenjiLinks;
  identifyUser: UserIdentifier;
  /** The connect-token limit: one budget per user covers connect tokens and exchanges. */
  rateLimit: ConnectRateLimit;
}

export const exchangePath = '/v1/benji/exchange';
export const linkPath = '/v1/benji/link';

/**
 * The signed-in user's Benji link: `POST /v1/benji/exchange` turns the exchange token Benji's SDK
 * handed the frontend into a stored link (the user's Benji tokens stay here, never in the browser),
 * `GET /v1/benji/link` says whether there is one, `DELETE /v1/benji/link` removes it. Every route
 * needs a verified user: without user auth (FRONTEND_AUTH=none) they are not mounted at all.
 */
export function mountBenjiLinkRoutes(app: Express, { links, identifyUser, rateLimit }: BenjiLinkRouteDeps): void {
  const readBody = jsonObjectReader({ limit: '16kb' });
  const verifiedUser = async (req: Request) => {
    const { userId } = await identifyUser(req.headers.authorization);
    // identifyUser names a user whenever user auth is on, the only case these routes exist in.
    if (userId === undefined) throw new AppError('unauthenticated', 'The user token does not identify a user.');
    return userId;
  };

  app.post(exchangePath, async (req, res) => {
    const userId = await verifiedUser(req);
    const raw = await readBody(req, res);
    if (raw === undefined)
      throw new AppError('invalid_request', 'The body is empty; send {"exchangeToken": "<the token Benji’s SDK handed over>"}.');
    const parsed = exchangeBody.safeParse(raw);
    if (!parsed.success) throw invalidRequest(parsed.error);
    await enforceRateLimit(rateLimit, { userId }, req, res, 'connect tokens and exchanges');
    const link = await links.exchange(userId, parsed.data.exchangeToken);
    res.setHeader('cache-control', 'no-store');
    res.json(status(link));
  });
  app.route(exchangePath).all(methodNotAllowed(['POST']));

  app.get(linkPath, async (req, res) => {
    const link = await links.get(await verifiedUser(req));
    res.setHeader('cache-control', 'no-store');
    res.json(status(link));
  });
  app.delete(linkPath, async (req, res) => {
    await links.remove(await verifiedUser(req));
    res.setHeader('cache-control', 'no-store');
    res.status(204).end();
  });
  app.route(linkPath).all(methodNotAllowed(['GET', 'DELETE']));
}

function status(link: BenjiLink | undefined): LinkStatusBody {
  return link === undefined
    ? { linked: false }
    : { linked: true, benjiUserId: link.benjiUserId, linkedAt: new Date(link.linkedAt).toISOString() };
}
