import { hash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError } from '../../errors.js';

/** Who called the internal door, for logs, metrics and the admin check. */
export interface InternalCaller {
  caller: string;
}

/** Names the service that sent an Authorization header, or throws `unauthenticated`. */
export type ServiceIdentifier = (authorization: string | undefined) => string;

const digest = (value: string) => hash('sha256', value, 'buffer');

/**
 * Service keys from INTERNAL_API_KEYS, as `Authorization: Bearer <key>`. Keys are compared as
 * SHA-256 digests with timingSafeEqual, against every configured key, so neither the position of a
 * match nor the length of a key shows in the response time.
 */
export function serviceIdentifier(keys: readonly { caller: string; key: string }[]): ServiceIdentifier {
  const known = keys.map(({ caller, key }) => ({ caller, digest: digest(key) }));
  return (authorization) => {
    const presented = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
    if (presented === undefined) throw new AppError('unauthenticated', 'Send the service key as Authorization: Bearer <key>.');
    const presentedDigest = digest(presented);
    let caller: string | undefined;
    for (const entry of known) {
      if (timingSafeEqual(entry.digest, presentedDigest)) caller = entry.caller;
    }
    if (caller === undefined) throw new AppError('unauthenticated', 'The service key is not valid.');
    return caller;
  };
}

/** The service check as middleware: the caller's name goes to `res.locals.caller`. */
export function internalAuth(identify: ServiceIdentifier): RequestHandler {
  return (req, res, next) => {
    res.locals.caller = identify(req.headers.authorization);
    next();
  };
}

/** Admin routes: only callers named in INTERNAL_ADMIN_CALLERS. Runs after internalAuth. */
export function requireAdmin(adminCallers: readonly string[]): RequestHandler {
  return (_req, res, next) => {
    if (res.locals.caller === undefined || !adminCallers.includes(res.locals.caller))
      throw new AppError('forbidden', 'This caller may not use the admin routes.');
    next();
  };
}
