import type { IncomingMessage, ServerResponse } from 'node:http';

/** The little HTTP plumbing both fake upstreams share. */

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export async function readBody(req: IncomingMessage): Promise<string> {
  return (await readBytes(req)).toString('utf8');
}

/** The body's exact bytes (a signature covers them, not their UTF-8 reading). */
export function readBytes(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * A huge reply, for the faults that test reply size limits: a JSON object with one long string,
 * `bytes` long in all, or never-ending when `bytes` is absent. With `contentLength` the size is
 * declared up front; otherwise it is chunked. Written as fast as the client reads, until either side closes.
 */
export function sendOversized(res: ServerResponse, status: number, bytes?: number, contentLength = false): void {
  const head = Buffer.from('{"padding":"');
  const tail = Buffer.from('"}');
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  res.writeHead(status, {
    'content-type': 'application/json',
    ...(contentLength && bytes !== undefined && { 'content-length': String(bytes) }),
  });
  res.write(head);
  let left = bytes === undefined ? Number.POSITIVE_INFINITY : bytes - head.length - tail.length;
  const pump = (): void => {
    while (left > 0 && !res.destroyed) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!res.write(piece)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end(tail);
  };
  pump();
}
