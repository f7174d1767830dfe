import { pipeline } from 'node:stream/promises';
import express, { Router, type RequestHandler } from 'express';
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
const bufferedBody = express.raw({ type: () => true, limit: '1mb' });

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
    // If the service hangs up, stop the upstream call too.
    const callerGone = new AbortController();
    res.once('close', () => callerGone.abort());
    const send = (accessToken: string) =>
      starship.forward({ method: req.method, target, headers, body, accessToken, signal: callerGone.signal });

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
      // Streamed, never buffered: a large list or voucher file passes through in chunks.
      await pipeline(upstream.body, res);
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE' && res.destroyed) return; // the caller went away
      throw transportError('starship', error);
    }
  });

  return router;
}
