import type { Request, RequestHandler, Response } from 'express';

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
