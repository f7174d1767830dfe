import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../observability/logger.js';

/** An inbound X-Request-Id is kept only when it is short and plain, so it cannot forge log lines. */
const saneRequestId = /^[A-Za-z0-9._:-]{1,128}$/;
const quietPaths = new Set(['/healthz', '/readyz', '/metrics']);

export type Door = 'public' | 'internal';

/** Per-request logging and the request id that ties a response, its log lines and upstream calls together. */
export function requestLogging(logger: Logger, door: Door) {
  return pinoHttp({
    logger: logger.child({ door }),
    genReqId(req: IncomingMessage, res: ServerResponse) {
      const inbound = req.headers['x-request-id'];
      const id = typeof inbound === 'string' && saneRequestId.test(inbound) ? inbound : randomUUID();
      res.setHeader('x-request-id', id);
      return id;
    },
    autoLogging: { ignore: (req) => quietPaths.has((req.url ?? '').split('?')[0] ?? '') },
    // Set by later middleware, read when the request completes: the caller's name and the problem code.
    customProps: (_req, res) => {
      const { caller, problem } = (res as ServerResponse & { locals?: { caller?: string; problem?: string } }).locals ?? {};
      return { ...(caller !== undefined && { caller }), ...(problem !== undefined && { problem }) };
    },
    customLogLevel: (_req, res, error) => (error !== undefined || res.statusCode >= 500 ? 'error' : 'info'),
    customSuccessMessage: () => 'request completed',
    customErrorMessage: () => 'request failed',
    // Only what helps to trace a call: never headers or bodies, which carry credentials.
    serializers: {
      req: (req: { id: unknown; method: string; url: string; headers: Record<string, unknown> }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
        userAgent: req.headers['user-agent'],
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}
