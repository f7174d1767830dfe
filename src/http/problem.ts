import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { AppError, errorCatalog, type ErrorCode } from '../errors.js';

/** The body of every error answer (RFC 9457), as documented in the OpenAPI descriptions. */
export const problemBody = z.object({
  type: z.literal('about:blank'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.enum(Object.keys(errorCatalog) as [ErrorCode, ...ErrorCode[]]),
  requestId: z.string(),
});

/**
 * The one place where errors become HTTP answers: RFC 9457 problem+json with a stable `code` and
 * the request id. 5xx details stay in the log (the request line's `err`), never in the body.
 */
export function sendProblem(req: Request, res: Response, error: AppError): void {
  res.locals.problem = error.code;
  if (error.status >= 500) res.locals.error = error;
  // A 4xx is logged without its error, so why it was refused (e.g. a user token's audience) would
  // be lost; its fixed-word reason goes on the request line. 5xx lines carry the whole error.
  else if (typeof error.logFields?.reason === 'string') res.locals.reason = error.logFields.reason;
  if (error.retryAfterS !== undefined) res.setHeader('retry-after', String(error.retryAfterS));
  if (error.allow !== undefined) res.setHeader('allow', error.allow.join(', '));
  if (error.code === 'unauthenticated') res.setHeader('www-authenticate', 'Bearer');
  res
    .status(error.status)
    .type('application/problem+json')
    .setHeader('cache-control', 'no-store')
    .send(problemJson(error, String(req.id)));
}

/** The problem+json text of an error, also for answers written outside Express (CONNECT). */
export function problemJson(error: AppError, requestId: string): string {
  return JSON.stringify({
    type: 'about:blank',
    title: errorCatalog[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
    requestId,
  } satisfies z.input<typeof problemBody>);
}

/** Errors thrown by body parsing and friends carry `type`/`status`; everything else is a bug. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const { type, status } = (error ?? {}) as { type?: string; status?: number };
  switch (type) {
    case 'entity.parse.failed':
      return new AppError('invalid_request', 'The body is not valid JSON.');
    case 'entity.too.large':
      return new AppError('payload_too_large', 'The body is too large.');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('unsupported_media_type', 'The body must be UTF-8 JSON.');
  }
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('invalid_request');
  return new AppError('internal_error', 'Something went wrong on our side.', { cause: error });
}

/**
 * A body that failed its schema, as one 400 whose detail names each field once (`amount: 1e20`
 * broke two of zod's checks, and said so twice): the first message per field is the one kept.
 */
export function invalidRequest(error: z.ZodError): AppError {
  const byField = new Map<string, string>();
  for (const issue of error.issues) {
    const field = issue.path.join('.') || 'body';
    if (!byField.has(field)) byField.set(field, issue.message);
  }
  return new AppError('invalid_request', [...byField].map(([field, message]) => `${field}: ${message}`).join('; '));
}

export const problemHandler: ErrorRequestHandler = (error, req, res, _next) => {
  const appError = toAppError(error);
  if (res.headersSent) {
    // A response already under way (a stream) cannot become a problem; cut it so the client sees the failure.
    res.locals.error = appError;
    res.destroy();
    return;
  }
  sendProblem(req, res, appError);
};

export const notFound: RequestHandler = (_req, _res, next) => {
  next(new AppError('not_found', 'There is no such route on this port.'));
};

/**
 * For a path that exists but not with this method: 405 with Allow, where a 404 would say the path
 * is wrong. Registered with `route(path).all(…)` after the path's own routes, so it sees only the
 * other methods. Express answers HEAD from a GET route, so a GET path allows HEAD too.
 */
export function methodNotAllowed(methods: readonly string[]): RequestHandler {
  const allow = methods.includes('GET') && !methods.includes('HEAD') ? [...methods, 'HEAD'] : methods;
  const detail = `This route takes ${allow.join(', ')} only.`;
  return () => {
    throw new AppError('method_not_allowed', detail, { allow });
  };
}
