import { createServer, type Server, type Socket } from 'node:net';

/**
 * The HTTP/1.1 server of the lean fakes, on a plain TCP socket: just what the bench's clients send
 * (wrk, and undici in the broker and the baselines: requests with a Content-Length body or none,
 * kept alive, possibly pipelined), answered with whole responses the handler builds. Node's own
 * HTTP server costs a request object, a response object and their streams per call; here a call is
 * a slice of the socket's bytes and one write, which keeps the fakes' CPU far below any target's
 * (the apparatus check, bench/README.md).
 *
 * Anything outside that subset (chunked bodies, a header block over 64 KiB, a body over 1 MiB, a
 * malformed request line) is answered 400 and the connection closed, so a change in a client shows
 * up as failed requests in the report, never as a fake that hangs.
 */
export interface RawRequest {
  method: string;
  /** The request target as sent: path and query. */
  url: string;
  /** Header names lowercased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: Buffer;
}

/** What the handler answers: a status and a JSON body, written with Content-Length. */
export interface RawReply {
  status: number;
  body: Buffer;
}

const MAX_HEAD = 64 * 1024;
const MAX_BODY = 1024 * 1024;
const reasons: Record<number, string> = { 200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found' };

/** A whole response; one worked out ahead of time can be handed back as it is, for every call. */
export function response({ status, body }: RawReply): Buffer {
  const head = `HTTP/1.1 ${status} ${reasons[status] ?? 'Unknown'}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

const badRequest = response({ status: 400, body: Buffer.from('{"error":"unsupported request"}') });

export function createRawServer(handle: (request: RawRequest) => Buffer): Server {
  return createServer((socket) => serve(socket, handle));
}

function serve(socket: Socket, handle: (request: RawRequest) => Buffer): void {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  let pending: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    const bytes = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    const replies: Buffer[] = [];
    let at = 0;
    let close = false;
    while (!close) {
      const headEnd = bytes.indexOf('\r\n\r\n', at, 'latin1');
      if (headEnd === -1) {
        if (bytes.length - at > MAX_HEAD) close = fail(replies);
        break;
      }
      const parsed = parseHead(bytes.toString('latin1', at, headEnd));
      if (parsed === undefined) {
        close = fail(replies);
        break;
      }
      const length = Number(parsed.headers['content-length'] ?? 0);
      if (parsed.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(length) || length < 0 || length > MAX_BODY) {
        close = fail(replies);
        break;
      }
      const bodyEnd = headEnd + 4 + length;
      if (bodyEnd > bytes.length) break; // the rest of the body is still on its way
      replies.push(handle({ ...parsed, body: bytes.subarray(headEnd + 4, bodyEnd) }));
      close = parsed.headers.connection?.toLowerCase() === 'close';
      at = bodyEnd;
    }
    pending = at === bytes.length ? undefined : bytes.subarray(at);
    if (replies.length > 0) socket.write(replies.length === 1 ? (replies[0] as Buffer) : Buffer.concat(replies));
    if (close) socket.end();
  });
}

function fail(replies: Buffer[]): true {
  replies.push(badRequest);
  return true;
}

function parseHead(head: string): Omit<RawRequest, 'body'> | undefined {
  const lines = head.split('\r\n');
  const [method, url, version] = (lines[0] ?? '').split(' ');
  if (method === undefined || url === undefined || version?.startsWith('HTTP/1.') !== true) return undefined;
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { method, url, headers };
}
