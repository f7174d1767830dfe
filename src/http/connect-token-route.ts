import express, { Router } from 'express';
import type { BenjiModeName } from '../config/env-schema.js';
import { AppError } from '../errors.js';
import { benjiModeNumbers, type BenjiClient } from '../upstream/benji/benji-client.js';
import { connectTokenBody, type ConnectTokenResponse } from './connect-token-schema.js';
import type { FrontendUser } from './frontend-auth.js';
import type { RequestHandler } from 'express';

export interface ConnectTokenPolicy {
  displayName: string | undefined;
  allowedModes: readonly BenjiModeName[];
  maxTransferAmount: number | undefined;
}

export interface ConnectTokenRouteDeps {
  benji: BenjiClient;
  policy: ConnectTokenPolicy;
  /** Runs after authentication, before the body is read: verifies the user, then counts the call. */
  authenticate: RequestHandler;
  rateLimit: RequestHandler;
}

const jsonBody = express.json({ limit: '16kb', strict: true });

export function connectTokenRouter({ benji, policy, authenticate, rateLimit }: ConnectTokenRouteDeps): Router {
  const router = Router();

  router.post(
    '/v1/benji/connect-token',
    authenticate,
    rateLimit,
    (req, _res, next) => {
      if (!req.is('application/json')) throw new AppError('unsupported_media_type', 'Send the body as application/json.');
      next();
    },
    jsonBody,
    async (req, res) => {
      const parsed = connectTokenBody.safeParse(req.body);
      if (!parsed.success) {
        const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
        throw new AppError('invalid_request', detail);
      }
      const body = parsed.data;
      if (!policy.allowedModes.includes(body.mode)) {
        throw new AppError('mode_not_allowed', `Mode ${body.mode} is not enabled for this partner.`);
      }
      if (body.amount !== undefined && policy.maxTransferAmount !== undefined && body.amount > policy.maxTransferAmount) {
        throw new AppError('invalid_request', `amount: must be at most ${policy.maxTransferAmount}`);
      }

      const { userId } = res.locals.user as FrontendUser;
      const { token, connectUrl } = await benji.createConnectToken(
        {
          mode: benjiModeNumbers[body.mode],
          displayName: body.displayName ?? policy.displayName,
          userExternalId: userId,
          transfer: body.amount === undefined ? undefined : { amount: body.amount, allowsEditing: body.allowsEditing ?? true },
        },
        { requestId: req.id },
      );

      const hostedUrl = hostedConnectUrl(connectUrl, token);
      if (hostedUrl === null && connectUrl !== '')
        req.log.warn({ requestId: req.id, upstream: 'benji' }, 'connect url ignored: not an http(s) URL');
      const response: ConnectTokenResponse = { token, mode: body.mode, connectUrl: hostedUrl === null ? null : connectUrl, hostedUrl };
      res.setHeader('cache-control', 'no-store');
      res.json(response);
    },
  );

  return router;
}

/**
 * Benji's hosted page takes the token as `connect_token`; the URL API keeps any query Benji put there.
 * Only http(s) URLs are passed on: a frontend navigates to this value, so a `javascript:` URL would be script.
 */
function hostedConnectUrl(connectUrl: string, token: string): string | null {
  const url = URL.canParse(connectUrl) ? new URL(connectUrl) : undefined;
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  url.searchParams.set('connect_token', token);
  return url.toString();
}
