import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, errorCatalog } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import { problemJson } from '../problem.js';
import { proxiedMethods } from './proxy/proxy-engine.js';

/**
 * A listener for the internal door's server 'connect' event. CONNECT never reaches an Express app:
 * Node hands it to the server as a tunnel request and, with no listener, drops the connection
 * without a word. This answers it as the proxy answers every other method it does not forward
 * (405 problem+json with Allow), then closes the connection; nothing is tunnelled anywhere.
 */
export function refuseConnect(logger: Logger): (req: IncomingMessage, socket: Duplex) => void {
  const log = logger.child({ door: 'internal' });
  return (req, socket) => {
    socket.on('error', () => socket.destroy());
    const requestId = randomUUID();
    const error = new AppError('method_not_allowed', 'CONNECT is not forwarded to an upstream.', { allow: proxiedMethods });
    const body = problemJson(error, requestId);
    socket.end(
      [
        `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? errorCatalog[error.code].title}`,
        `Allow: ${proxiedMethods.join(', ')}`,
        'Content-Type: application/problem+json; charset=utf-8',
        `Content-Length: ${Buffer.byteLength(body)}`,
        'Cache-Control: no-store',
        'X-Content-Type-Options: nosniff',
        `X-Request-Id: ${requestId}`,
        'Connection: close',
        '',
        body,
      ].join('\r\n'),
    );
    log.info({ requestId, method: req.method, status: error.status, problem: error.code }, 'request completed');
  };
}
