import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { maxServiceKeyBytes } from '../../config/load-config.js';
import { AppError } from '../../errors.js';

/** Who called the internal door, for logs, metrics and the admin check. */
export interface InternalCaller {
  caller: string;
}

/** Names the service that sent an Authorization header, or throws `unauthenticated`. */
export type ServiceIdentifier = (authorization: string | undefined) => string;

/**
 * A key as a block of fixed size: its length, then its bytes, zero-padded. Two blocks are equal
 * exactly when the keys are, and comparing two takes the same time whatever keys they hold. (A
 * digest of each presented key would do the same at several times the cost, on every call.) A key
 * too long for the block gets a length no key has, so it matches none and is compared all the same.
 */
function writeBlock(block: Buffer, key: string, encoding: 'utf8' | 'latin1'): void {
  block.fill(0);
  const length = Buffer.byteLength(key, encoding);
  if (length > block.length - 2) {
    block.writeUInt16BE(0xffff, 0);
    return;
  }
  block.writeUInt16BE(length, 0);
  block.write(key, 2, encoding);
}

/**
 * Service keys from INTERNAL_API_KEYS, as `Authorization: Bearer <key>`. The presented key is
 * compared with timingSafeEqual, as a block (above) as long as the longest configured key allows,
 * against every configured key, so neither the position of a match nor the length or content of a
 * key shows in the response time. Header values reach us as Latin-1 (one character a byte):
 * written back as Latin-1 they are the bytes the caller sent, which match a configured key's UTF-8.
 */
export function serviceIdentifier(keys: readonly { caller: string; key: string }[]): ServiceIdentifier {
  const longest = Math.max(...keys.map(({ key }) => Buffer.byteLength(key)));
  if (longest > maxServiceKeyBytes) throw new Error(`service keys are at most ${maxServiceKeyBytes} bytes`);
  const blockBytes = 32 * Math.ceil((2 + longest) / 32);
  const known = keys.map(({ caller, key }) => {
    const block = Buffer.alloc(blockBytes);
    writeBlock(block, key, 'utf8');
    return { caller, block };
  });
  // The presented key's block: one is enough, since the check is synchronous.
  const presentedBlock = Buffer.alloc(blockBytes);
  return (authorization) => {
    const presented = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
    if (presented === undefined) throw new AppError('unauthenticated', 'Send the service key as Authorization: Bearer <key>.');
    writeBlock(presentedBlock, presented, 'latin1');
    let caller: string | undefined;
    for (const entry of known) {
      if (timingSafeEqual(entry.block, presentedBlock)) caller = entry.caller;
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
