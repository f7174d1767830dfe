import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { z } from 'zod';
import { errorCatalog } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { problemBody } from './problem.js';
import { proxiedMethods } from './starship-proxy-route.js';

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
    const { status, title } = errorCatalog.method_not_allowed;
    const body = JSON.stringify({
      type: 'about:blank',
      title,
      status,
      detail: 'CONNECT is not forwarded to Starship.',
      code: 'method_not_allowed',
      requestId,
    } satisfies z.input<typeof problemBody>);
    socket.end(
      [
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? title}`,
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
    log.info({ requestId, method: req.method, status, problem: 'method_not_allowed' }, 'request completed');
  };
}
