import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { BenjiLinks } from '../../credentials/benji-links.js';
import { userHash } from '../../user-hash.js';
import { methodNotAllowed } from '../problem.js';

export const linkDetailsBody = z.union([
  z.object({ linked: z.literal(false) }),
  z.object({
    linked: z.literal(true),
    benjiUserId: z.string(),
    merchantId: z.string().meta({ description: 'Benji’s merchant id; empty when Benji sent none' }),
    linkedAt: z.iso.datetime(),
    accessExpiresAt: z.iso.datetime().meta({ description: 'When the user’s Benji access token expires (it is refreshed before)' }),
  }),
]);
type LinkDetails = z.input<typeof linkDetailsBody>;

export const linksPath = '/v1/benji/links/:userId';

/**
 * `GET /v1/benji/links/{userId}`: what a service needs of a user's link (the Benji user id, for
 * triggers), never a token. `{userId}` is the frontend user id the link was stored under.
 */
export function benjiLinksRouter({ links, authorize }: { links: BenjiLinks; authorize: RequestHandler }): Router {
  const router = Router();
  router.get(linksPath, authorize, async (req, res) => {
    const userId = String(req.params.userId);
    res.locals.loggedUrl = `/v1/benji/links/${userHash(userId).slice(0, 16)}`;
    const link = await links.get(userId);
    const answer: LinkDetails =
      link === undefined
        ? { linked: false }
        : {
            linked: true,
            benjiUserId: link.benjiUserId,
            merchantId: link.merchantId,
            linkedAt: new Date(link.linkedAt).toISOString(),
            accessExpiresAt: new Date(link.accessExpiresAt).toISOString(),
          };
    res.setHeader('cache-control', 'no-store');
    res.json(answer);
  });
  router.route(linksPath).all(methodNotAllowed(['GET']));
  return router;
}
