import type { Readable } from 'node:stream';
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { Pool } from 'undici';
import type { Clock } from '../../../clock.js';
import type { CallHeaders, Credential, OutgoingCall } from '../../../credentials/credential.js';
import { AppError } from '../../../errors.js';
import { userHash } from '../../../user-hash.js';
import { Cancellation, transportError, type Upstream } from '../../../upstream/upstream-http.js';
import { parseBody } from '../../parse-body.js';
import type { ServiceIdentifier } from '../internal-auth.js';
import { setDownstreamHeaders, upstreamRequestHeaders } from './proxy-headers.js';
import { proxyTarget } from './proxy-target.js';

/**
 * The methods of a REST API, and the only ones forwarded. TRACE would reflect the broker's own
 * credentials back to the caller; CONNECT and the WebDAV verbs mean nothing to the upstreams.
 * OPTIONS is refused too: it is for browsers' CORS preflights, and no browser calls this door.
 */
export const proxiedMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
type ProxiedMethod = (typeof proxiedMethods)[number];
const forwarded: ReadonlySet<string> = new Set(proxiedMethods);
const isForwarded = (method: string): method is ProxiedMethod => forwarded.has(method);
/** Bodies are buffered (up to 1 MiB) so that a call refused for a stale credential can be replayed once. */
const rawBody = express.raw({ type: () => true, limit: '1mb' });

export interface ProxyRoute {
  /** Where the route is mounted on the internal door (`/v1/starship`): the rest of the path is the upstream's. */
  mountPath: string;
  /** The upstream's calls (deadline, timing, transport errors) and the pool of proxied calls. */
  upstream: Upstream;
  pool: Pool;
  /** The path prefixes services may reach (`/auth` never). */
  allow: readonly string[];
  /**
   * What authenticates each call: the engine asks it for headers, and tells it of a 401. One
   * credential for every call, or `perUser`: the path's first segment names a user
   * (`{mountPath}/{userId}/{path}`), whose own credential authenticates the rest.
   */
  credential: Credential | { perUser: (userId: string) => Credential };
  identifyService: ServiceIdentifier;
  clock: Clock;
}

/**
 * The one proxy engine of the internal door: `ANY {mountPath}/{*path}` goes to the upstream with
 * the credential's headers. In order: the service key, the method, the path policy, the body
 * (buffered), the call (headers allow-listed, a deadline, cancelled when the caller hangs up), and
 * the rule "refused → renewed → replayed once": on a 401 the credential says whether it renewed.
 * The answer is streamed back.
 *
 * One handler mounted with `use`, not a `{*path}` route: Express would decode (and choke on) the
 * path before proxyTarget could judge the raw one, which is the one that must be checked. The steps
 * are calls in one handler, not layers: every layer is paid for on every proxied call.
 */
export function proxyRoute({ mountPath, upstream, pool, allow, credential: source, identifyService, clock }: ProxyRoute): RequestHandler {
  const perUser = 'perUser' in source ? source.perUser : undefined;
  const route = perUser === undefined ? `${mountPath}/{path}` : `${mountPath}/{userId}/{path}`;
  const upstreamName = upstream.name === 'starship' ? 'Starship' : 'Benji';

  return async (req, res) => {
    res.locals.route = route;
    res.locals.caller = identifyService(req.headers.authorization);
    const { method } = req;
    if (!isForwarded(method))
      throw new AppError('method_not_allowed', `${method} is not forwarded to ${upstreamName}.`, { allow: proxiedMethods });
    let credential: Credential;
    let pathFrom = mountPath;
    if (perUser === undefined) credential = source as Credential;
    else {
      const user = userSegment(req.originalUrl, mountPath);
      res.locals.loggedUrl = `${mountPath}/${userHash(user.userId).slice(0, 16)}${req.originalUrl.slice(mountPath.length + user.raw.length + 1)}`;
      credential = perUser(user.userId);
      pathFrom = `${mountPath}/${user.raw}`;
    }
    const target = proxyTarget(req.originalUrl, pathFrom, allow);
    const body = hasBody(req) ? await bufferedBody(req, res) : undefined;
    const headers = upstreamRequestHeaders(req.headers, req.id);
    // One per call: the upstream's deadline cancels it, and so do we if the service hangs up before
    // its answer is complete (only then: a cancelled call costs an exception object).
    const cancel = new Cancellation();
    res.once('close', () => {
      if (!res.writableFinished) cancel.abort();
    });
    const queryAt = target.indexOf('?');
    const call: OutgoingCall = {
      method,
      path: queryAt === -1 ? target : target.slice(0, queryAt),
      query: queryAt === -1 ? '' : target.slice(queryAt + 1),
      body,
    };
    // `headers` is this call's own object: the credential's headers are written into it, and a
    // replay overwrites them with the renewed ones.
    const send = (auth: CallHeaders) =>
      upstream.open(pool, 'proxy', { method, path: target, headers: Object.assign(headers, auth), body }, cancel);

    let auth = await credential.headersFor(call);
    let answer = await send(auth);
    if (answer.statusCode === 401 && (await credential.rejected(auth))) {
      await answer.body.dump();
      auth = await credential.headersFor(call);
      answer = await send(auth);
    }

    res.status(answer.statusCode);
    setDownstreamHeaders(res, answer.headers, clock);
    try {
      await relay(answer.body, res);
    } catch (error) {
      throw transportError(upstream.name, error);
    }
  };
}

/** `{mountPath}/{userId}/…`: the user id as the link was stored under (percent-decoded), and as sent. */
function userSegment(originalUrl: string, mountPath: string): { userId: string; raw: string } {
  const rest = originalUrl.slice(mountPath.length + 1);
  const end = rest.search(/[/?]/);
  const raw = end === -1 ? rest : rest.slice(0, end);
  let userId: string;
  try {
    userId = decodeURIComponent(raw);
  } catch {
    throw new AppError('invalid_request', 'The user id in the path is not valid percent-encoding.');
  }
  if (!originalUrl.startsWith(`${mountPath}/`) || userId === '' || userId.length > 255 || /\p{Cc}/u.test(userId)) {
    throw new AppError('invalid_request', `Call ${mountPath}/{userId}/{path}, with the user id the link was stored under.`);
  }
  return { userId, raw };
}

/** Most proxied calls are GETs without a body: they skip the parser, and the wait for it. */
const hasBody = (req: Request) => req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;

/** The request body, or undefined when it is empty. */
async function bufferedBody(req: Request, res: Response): Promise<Buffer | undefined> {
  await parseBody(rawBody, req, res);
  return Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined;
}

/**
 * Streams the upstream's answer to the caller, never buffering it: a chunk the caller's socket will
 * not take yet pauses the upstream until it drains. By hand rather than `pipe` (eight listeners
 * and its state per call) or stream.pipeline (an AbortController, thrown away, per call): both are
 * paid on every proxied call. Ends when the answer is delivered or the caller hangs up; rejects when
 * the upstream's stream breaks (the caller's answer is then cut short).
 */
function relay(body: Readable, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    const resume = () => body.resume();
    body.on('data', (chunk: Buffer) => {
      if (!res.write(chunk)) body.pause();
    });
    body.once('end', () => res.end());
    body.once('error', (error) => {
      res.destroy();
      reject(error);
    });
    res.on('drain', resume);
    res.once('close', () => {
      res.off('drain', resume);
      // The caller left early: stop reading (a destroyed stream emits no more data).
      if (!res.writableFinished) body.destroy();
      resolve();
    });
  });
}
