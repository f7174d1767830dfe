import express, { type RequestHandler } from 'express';
import type { BenjiModeName } from '../config/env-schema.js';
import { AppError } from '../errors.js';
import { benjiModeNumbers, type BenjiClient } from '../upstream/benji/benji-client.js';
import { connectTokenBody, type ConnectTokenResponse } from './connect-token-schema.js';
import type { ConnectRateLimit } from './connect-rate-limit.js';
import type { UserIdentifier } from './frontend-auth.js';
import { hostedConnectUrls } from './hosted-connect-url.js';
import { parseBody } from './parse-body.js';

export interface ConnectTokenPolicy {
  displayName: string | undefined;
  allowedModes: readonly BenjiModeName[];
  maxTransferAmount: number | undefined;
}

export interface ConnectTokenRouteDeps {
  benji: BenjiClient;
  policy: ConnectTokenPolicy;
  identifyUser: UserIdentifier;
  rateLimit: ConnectRateLimit;
}

export const connectTokenPath = '/v1/benji/connect-token';
const jsonBody = express.json({ limit: '16kb', strict: true });

/**
 * `POST /v1/benji/connect-token`. In order: who the user is, whether they are over the rate limit,
 * and only then the body, so that nobody gets a body parsed (or Benji called) without both. The
 * steps are calls in one handler, not five router layers: every layer is paid for on every call.
 */
export function connectTokenRoute({ benji, policy, identifyUser, rateLimit }: ConnectTokenRouteDeps): RequestHandler {
  const hostedConnectUrl = hostedConnectUrls();

  return async (req, res) => {
    const { userId } = await identifyUser(req.headers.authorization);
    const { limit, remaining } = await rateLimit({ userId }, () => req.ip);
    res.setHeader('ratelimit-limit', String(limit));
    res.setHeader('ratelimit-remaining', String(remaining));

    if (!req.is('application/json')) throw new AppError('unsupported_media_type', 'Send the body as application/json.');
    await parseBody(jsonBody, req, res);
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
  };
}
