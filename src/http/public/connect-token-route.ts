import type { RequestHandler } from 'express';
import { AppError } from '../../errors.js';
import type { BenjiClient } from '../../upstream/benji/benji-client.js';
import { benjiModeNumbers, type BenjiMode } from '../../upstream/benji/benji-modes.js';
import { connectTokenBodySchema, type ConnectTokenResponse } from './connect-token-schema.js';
import { enforceRateLimit, type ConnectRateLimit } from './connect-rate-limit.js';
import type { UserIdentifier } from './frontend-auth.js';
import { hostedConnectUrls } from './hosted-connect-url.js';
import { jsonObjectReader } from '../parse-body.js';
import { invalidRequest } from '../problem.js';

export interface ConnectTokenPolicy {
  displayName: string | undefined;
  allowedModes: readonly BenjiMode[];
  maxTransferAmount: number | undefined;
}

export interface ConnectTokenRouteDeps {
  benji: BenjiClient;
  policy: ConnectTokenPolicy;
  identifyUser: UserIdentifier;
  rateLimit: ConnectRateLimit;
}

export const connectTokenPath = '/v1/benji/connect-token';

/**
 * `POST /v1/benji/connect-token`. In order: who the user is, whether the body is one this partner
 * accepts, whether they are over the rate limit, and only then Benji. Nobody gets a body parsed
 * without a verified token; only calls that would reach Benji are counted, so a frontend bug that
 * sends bad bodies does not use up its users' budget. The steps are calls in one handler, not five
 * router layers: every layer is paid for on every call.
 */
export function connectTokenRoute({ benji, policy, identifyUser, rateLimit }: ConnectTokenRouteDeps): RequestHandler {
  const hostedConnectUrl = hostedConnectUrls();
  const readBody = jsonObjectReader({ limit: '16kb' });
  const bodySchema = connectTokenBodySchema({ maxTransferAmount: policy.maxTransferAmount });
  const allowedModes = policy.allowedModes.map((mode) => `${mode} (${benjiModeNumbers[mode]})`).join(', ');

  return async (req, res) => {
    const { userId } = await identifyUser(req.headers.authorization);

    const raw = await readBody(req, res);
    if (raw === undefined) throw new AppError('invalid_request', 'The body is empty; send a JSON object such as {"mode":"connect"}.');
    const parsed = bodySchema.safeParse(raw);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const body = parsed.data;
    if (!policy.allowedModes.includes(body.mode)) {
      throw new AppError('mode_not_allowed', `Mode ${body.mode} is not enabled for this partner; the enabled modes are ${allowedModes}.`);
    }

    await enforceRateLimit(rateLimit, { userId }, req, res, 'connect tokens');

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
