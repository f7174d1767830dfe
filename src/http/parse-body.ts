import { isUtf8 } from 'node:buffer';
import { MIMEType } from 'node:util';
import express, { type Request, type RequestHandler, type Response } from 'express';
import { AppError } from '../errors.js';

/**
 * Runs one of Express's body parsers (express.json, express.raw) as a call inside a handler instead
 * of as a router layer: the hot routes are single handlers, and every layer is paid on every call.
 * The parser's errors (413, malformed JSON) reject, for the problem handler to answer.
 */
export function parseBody(parser: RequestHandler, req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    void parser(req, res, (error?: unknown) => (error === undefined ? resolve() : reject(error as Error)));
  });
}

/** Reads a JSON object body; `undefined` when the request has no body at all. */
export type JsonObjectReader = (req: Request, res: Response) => Promise<Record<string, unknown> | undefined>;

/**
 * JSON bodies as RFC 8259 has them: UTF-8, nothing else. The bytes are read raw and decoded here,
 * not by express.json, which decodes any `charset=utf-*` it is told (UTF-16, UTF-32, UTF-7), reads
 * an empty body as `{}` and a non-JSON content type as no body at all: a form-encoded
 * `revokePrevious=true` on the renew route became `{}`, a renewal without the logout asked for.
 *
 * In order: no body is `undefined`, for the route to decide; a content type other than
 * `application/json` (or a charset other than UTF-8) is 415 before a byte is read, and so is a
 * body without a content type; then invalid UTF-8, invalid JSON and JSON that is not an object are each a 400
 * that says which.
 */
export function jsonObjectReader({ limit }: { limit: string }): JsonObjectReader {
  const raw = express.raw({ type: () => true, limit });
  return async (req, res) => {
    // No body at all is the route's to judge, whatever type it claims (curl -d '' sends a form type).
    if (!declaresBody(req)) return undefined;
    const type = req.headers['content-type'];
    if (type === undefined) throw new AppError('unsupported_media_type', 'Send the body as application/json (UTF-8).');
    if (!isUtf8Json(type))
      throw new AppError('unsupported_media_type', 'Send the body as application/json in UTF-8; no other type or charset is accepted.');

    await parseBody(raw, req, res);
    const bytes: unknown = req.body;
    if (!Buffer.isBuffer(bytes) || bytes.length === 0) return undefined;
    if (!isUtf8(bytes)) throw new AppError('invalid_request', 'The body is not valid UTF-8.');
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new AppError('invalid_request', 'The body is not valid JSON.');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new AppError('invalid_request', 'The body must be a JSON object.');
    }
    return value as Record<string, unknown>;
  };
}

/** A Content-Length above 0, or a chunked body (which may still turn out empty). */
function declaresBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) > 0);
}

function isUtf8Json(header: string): boolean {
  // The headers clients send, without a parse per call.
  if (header === 'application/json' || header === 'application/json; charset=utf-8') return true;
  let mime: MIMEType;
  try {
    mime = new MIMEType(header);
  } catch {
    return false;
  }
  const charset = mime.params.get('charset')?.toLowerCase();
  return mime.essence === 'application/json' && (charset === undefined || charset === 'utf-8' || charset === 'utf8');
}
