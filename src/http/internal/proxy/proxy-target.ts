import { AppError } from '../../../errors.js';

/**
 * Turns the raw URL a service called (`/v1/starship/<path>?<query>`) into the path and query to
 * send to Starship, or refuses it. Checks run on the raw and on the decoded path, so no encoding
 * trick can climb out of an allowed prefix: no `..` or `.` segment, no backslash, no encoded slash or backslash,
 * no double encoding, no `//` (a second origin), nothing but printable ASCII, and never `/auth`.
 * The result is appended to the configured origin; it is never resolved as a URL.
 */
export function proxyTarget(originalUrl: string, mountPath: string, allow: readonly string[]): string {
  const queryAt = originalUrl.indexOf('?');
  const rawPath = (queryAt === -1 ? originalUrl : originalUrl.slice(0, queryAt)).slice(mountPath.length);
  const query = queryAt === -1 ? '' : originalUrl.slice(queryAt);
  // Most paths are plain segments of letters, digits, `_`, `-` and `~`: nothing to decode and
  // nothing any rule below refuses, so only the last two rules apply.
  if (plainPath.test(rawPath) && !query.includes('#')) {
    if (authPath.test(rawPath) || !allow.some((prefix) => allows(prefix, rawPath))) throw refused();
    return rawPath + query;
  }

  // `#` never belongs on the wire; a fragment would make Starship read a shorter path than we checked.
  if (/%2f|%5c|\\/i.test(rawPath) || originalUrl.includes('#')) throw refused();
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw refused();
  }
  if (!path.startsWith('/') || path.includes('%') || path.includes('..') || path.includes('//') || path.includes('\\')) throw refused();
  // A `.` segment escapes nothing, but it makes Starship read another path than the one checked.
  if (path.split('/').includes('.')) throw refused();
  // Printable ASCII only: no control characters, and no look-alikes (fullwidth dots) for an upstream
  // that normalises Unicode to turn into `..`.
  if (!/^[\x20-\x7e]*$/.test(path)) throw refused();
  if (authPath.test(path)) throw refused();
  if (!allow.some((prefix) => allows(prefix, path))) throw refused();
  return rawPath + query;
}

const plainPath = /^(?:\/[A-Za-z0-9_~-]+)+\/?$/;
const authPath = /^\/auth(\/|$)/i;

/** `/api/v1/` allows what is under it; `/status` allows itself and what is under it, not `/statusx`. */
function allows(prefix: string, path: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

function refused(): AppError {
  return new AppError('forbidden', 'This path may not be reached through the broker.');
}
