import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { Clock } from '../../clock.js';
import { AppError } from '../../errors.js';
import type { WebhookQueue } from '../../webhooks/webhook-queue.js';
import { methodNotAllowed } from '../problem.js';

export const webhookStatsBody = z.object({
  stored: z.number().int().meta({ description: 'Entries in the stream' }),
  pending: z.number().int().meta({ description: 'Entries the delivery group has not acknowledged (handed out, or not read yet)' }),
  dead: z.number().int().meta({ description: 'Dead letters' }),
  oldestPendingAgeS: z.number().int().nullable().meta({ description: 'Age of the oldest pending entry, seconds' }),
});

const statsPath = '/v1/admin/webhooks';
const retryPath = '/v1/admin/webhooks/dead/:id/retry';

/** Operator routes for received webhooks: counts, and a dead letter put back for delivery. */
export function webhookAdminRouter({
  queue,
  clock,
  authorize,
}: {
  queue: WebhookQueue;
  clock: Clock;
  authorize: RequestHandler[];
}): Router {
  const router = Router();
  router.get(statsPath, ...authorize, async (_req, res) => {
    const stats: z.input<typeof webhookStatsBody> = await queue.stats(clock()).catch((error: unknown) => {
      throw storeUnavailable(error);
    });
    res.setHeader('cache-control', 'no-store');
    res.json(stats);
  });
  router.post(retryPath, ...authorize, async (req, res) => {
    const id = String(req.params.id);
    if (!/^\d{1,20}-\d{1,20}$/.test(id))
      throw new AppError('invalid_request', 'A dead letter’s id is a stream id such as 1764662400000-0.');
    const retried = await queue.retryDead(id).catch((error: unknown) => {
      throw storeUnavailable(error);
    });
    if (!retried) throw new AppError('not_found', 'There is no dead letter with this id.');
    res.json({ retried: true });
  });
  router.route(statsPath).all(methodNotAllowed(['GET']));
  router.route(retryPath).all(methodNotAllowed(['POST']));
  return router;
}

function storeUnavailable(cause: unknown): AppError {
  return new AppError('store_unavailable', 'The webhook store cannot be reached right now; try again shortly.', { retryAfterS: 1, cause });
}
