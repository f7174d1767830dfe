import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError } from '../errors.js';

/** Who called the internal door, for logs, metrics and the admin check. */
export interface InternalCaller {
  caller: string;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Service keys from INTERNAL_API_KEYS, as `Authorization: Bearer <key>`. Keys are compared as
 * SHA-256 digests with timingSafeEqual, against every configured key, so neither the position of a
 * match nor the length of a key shows in the response time.
 */
export function internalAuth(keys: readonly { caller: string; key: string }[]): RequestHandler {
  const known = keys.map(({ caller, key }) => ({ caller, digest: digest(key) }));
  return (req, res, next) => {
    const presented = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    if (presented === undefined) throw new AppError('unauthenticated', 'Send the service key as Authorization: Bearer <key>.');
    const presentedDigest = digest(presented);
    let caller: string | undefined;
    for (const entry of known) {
      if (timingSafeEqual(entry.digest, presentedDigest)) caller = entry.caller;
    }
    if (caller === undefined) throw new AppError('unauthenticated', 'The service key is not valid.');
    res.locals.caller = caller;
    next();
  };
}

/** Admin routes: only callers named in INTERNAL_ADMIN_CALLERS. Runs after internalAuth. */
export function requireAdmin(adminCallers: readonly string[]): RequestHandler {
  return (_req, res, next) => {
    if (!adminCallers.includes(String(res.locals.caller))) throw new AppError('forbidden', 'This caller may not use the admin routes.');
    next();
  };
}
