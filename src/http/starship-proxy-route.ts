import type { Readable } from 'node:stream';
import express, { Router, type RequestHandler, type Response } from 'express';
import type { TokenManager } from '../tokens/token-manager.js';
import type { StarshipClient } from '../upstream/starship/starship-client.js';
import { transportError } from '../upstream/upstream-call.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './proxy-headers.js';
import { proxyTarget } from './proxy-target.js';

export interface StarshipProxyDeps {
  starship: StarshipClient;
  tokens: TokenManager;
  allow: readonly string[];
  authenticate: RequestHandler;
}

const mountPath = '/v1/starship';
/** Bodies are buffered (up to 1 MiB) so that a call refused for a stale token can be replayed once. */
const rawBody = express.raw({ type: () => true, limit: '1mb' });
/** Most proxied calls are GETs without a body: skip the parser for them. */
const bufferedBody: RequestHandler = (req, res, next) => {
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return next();
  return rawBody(req, res, next);
};

/** `ANY /v1/starship/{*path}`: the call goes to Starship with the broker's access token. */
export function starshipProxyRouter({ starship, tokens, allow, authenticate }: StarshipProxyDeps): Router {
  const router = Router();

  // Mounted with `use`, not a `{*path}` route: Express would decode (and choke on) the path before
  // proxyTarget could judge the raw one, which is the one that must be checked.
  router.use(mountPath, authenticate, bufferedBody, async (req, res) => {
    res.locals.route = `${mountPath}/{path}`;
    const target = proxyTarget(req.originalUrl, mountPath, allow);
    const headers = upstreamRequestHeaders(req.headers, String(req.id));
    const body = Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined;
    // One controller per call: the client aborts it at its deadline, and so do we if the service
    // hangs up before its answer is complete (only then: an abort costs an exception object).
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const send = (accessToken: string) => starship.forward({ method: req.method, target, headers, body, accessToken, abort });

    let accessToken = await tokens.getAccessToken();
    let upstream = await send(accessToken);
    if (upstream.statusCode === 401) {
      // Starship refused our token (revoked, or rotated elsewhere): renew, then replay once.
      await upstream.body.dump();
      tokens.reportRejected(accessToken);
      accessToken = await tokens.getAccessToken();
      upstream = await send(accessToken);
    }

    res.status(upstream.statusCode);
    for (const [name, value] of Object.entries(downstreamResponseHeaders(upstream.headers))) res.setHeader(name, value);
    try {
      await relay(upstream.body, res);
    } catch (error) {
      throw transportError('starship', error);
    }
  });

  return router;
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
