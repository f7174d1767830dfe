import type { Readable } from 'node:stream';
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { Clock } from '../../clock.js';
import { AppError } from '../../errors.js';
import type { ServiceIdentifier } from './internal-auth.js';
import type { TokenManager } from '../../tokens/token-manager.js';
import type { StarshipClient } from '../../upstream/starship/starship-client.js';
import { Cancellation, transportError } from '../../upstream/upstream-call.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../proxy-headers.js';
import { parseBody } from '../parse-body.js';
import { proxyTarget } from '../proxy-target.js';

export interface StarshipProxyDeps {
  starship: StarshipClient;
  tokens: TokenManager;
  allow: readonly string[];
  identifyService: ServiceIdentifier;
  clock: Clock;
}

export const starshipMountPath = '/v1/starship';

/**
 * The methods of a REST API, and the only ones forwarded. TRACE would reflect the broker's own
 * Authorization header back to the caller; CONNECT and the WebDAV verbs mean nothing to Starship.
 * OPTIONS is refused too: it is for browsers' CORS preflights, and no browser calls this door.
 */
export const proxiedMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const forwarded: ReadonlySet<string> = new Set(proxiedMethods);
/** Bodies are buffered (up to 1 MiB) so that a call refused for a stale token can be replayed once. */
const rawBody = express.raw({ type: () => true, limit: '1mb' });

/**
 * `ANY /v1/starship/{*path}`: the call goes to Starship with the broker's access token.
 *
 * One handler mounted with `use`, not a `{*path}` route: Express would decode (and choke on) the
 * path before proxyTarget could judge the raw one, which is the one that must be checked. The steps
 * (service key, method, path, body, forward) are calls in one handler, not layers: every layer is
 * paid for on every proxied call.
 */
export function starshipProxy({ starship, tokens, allow, identifyService, clock }: StarshipProxyDeps): RequestHandler {
  return async (req, res) => {
    res.locals.route = `${starshipMountPath}/{path}`;
    res.locals.caller = identifyService(req.headers.authorization);
    if (!forwarded.has(req.method)) {
      throw new AppError('method_not_allowed', `${req.method} is not forwarded to Starship.`, { allow: proxiedMethods });
    }
    const target = proxyTarget(req.originalUrl, starshipMountPath, allow);
    const body = await bufferedBody(req, res);
    const headers = upstreamRequestHeaders(req.headers, req.id);
    // One per call: the client cancels it at its deadline, and so do we if the service hangs up
    // before its answer is complete (only then: a cancelled call costs an exception object).
    const cancel = new Cancellation();
    res.once('close', () => {
      if (!res.writableFinished) cancel.abort();
    });
    const send = (accessToken: string) => starship.forward({ method: req.method, target, headers, body, accessToken, cancel });

    let accessToken = await tokens.getAccessToken();
    let upstream = await send(accessToken);
    // Starship refused our token: replay once if the session was renewed, else pass the 401 on (the
    // token manager's rule 9 decides; a fresh token refused is the endpoint's doing).
    if (upstream.statusCode === 401 && (await tokens.reportRejected(accessToken))) {
      await upstream.body.dump();
      accessToken = await tokens.getAccessToken();
      upstream = await send(accessToken);
    }

    res.status(upstream.statusCode);
    for (const [name, value] of Object.entries(downstreamResponseHeaders(upstream.headers, clock))) res.setHeader(name, value);
    try {
      await relay(upstream.body, res);
    } catch (error) {
      throw transportError('starship', error);
    }
  };
}

/** The request body, or undefined; most proxied calls are GETs without one, which skip the parser. */
async function bufferedBody(req: Request, res: Response): Promise<Buffer | undefined> {
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return undefined;
  await parseBody(rawBody, req, res);
  return Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined;
}

/**
 * Streams Starship's answer to the caller, never buffering it. Plain `pipe` rather than
 * stream.pipeline: pipeline makes and aborts an AbortController (an exception object) per call,
 * a measurable cost on the hot path. Ends when the answer is delivered or the caller hangs up;
 * rejects when Starship's stream breaks (the caller's answer is then cut short).
 */
function relay(body: Readable, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    body.once('error', (error) => {
      res.destroy();
      reject(error);
    });
    res.once('close', () => {
      if (!res.writableFinished) body.destroy();
      resolve();
    });
    body.pipe(res);
  });
}
