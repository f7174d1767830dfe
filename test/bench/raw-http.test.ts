import { once } from 'node:events';
import { connect, type AddressInfo, type Server } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRawServer, response, type RawRequest } from '../../bench/raw-http.js';

/** The lean fakes' HTTP/1.1 responder: what the bench's clients send is answered, anything else is refused, never left hanging. */
describe('bench raw-http', () => {
  let server: Server;
  let port: number;
  const seen: RawRequest[] = [];
  beforeAll(async () => {
    server = createRawServer((req) => {
      seen.push({ ...req, body: Buffer.from(req.body) });
      return response({
        status: req.url === '/missing' ? 404 : 200,
        body: Buffer.from(JSON.stringify({ n: seen.length, got: req.body.toString() })),
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Writes the pieces with a pause between them, and reads until the server closes or `until` matches. */
  async function exchange(pieces: string[], until: RegExp): Promise<string> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
    const closed = once(socket, 'close');
    for (const piece of pieces) {
      socket.write(piece);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (let i = 0; i < 100 && !until.test(text) && !socket.destroyed; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    socket.destroy();
    await closed;
    return text;
  }

  it('answers undici with headers read case-insensitively and the body whole', async () => {
    seen.length = 0;
    const reply = await request(`http://127.0.0.1:${port}/auth/login`, {
      method: 'POST',
      headers: { 'X-Api-Key': 'k1', 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(reply.statusCode).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(await reply.body.json()).toEqual({ n: 1, got: '{"a":1}' });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/auth/login', headers: { 'x-api-key': 'k1' } });
  });

  it('answers pipelined requests in order, and a body split across packets once it is complete', async () => {
    seen.length = 0;
    const text = await exchange(
      [
        'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234',
        '56789',
      ],
      /"got":"0123456789"/,
    );
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '404', '200']);
    expect(seen.map((r) => r.url)).toEqual(['/a', '/missing', '/b']);
    expect(seen[2]?.body.toString()).toBe('0123456789');
  });

  it('refuses a chunked body, a malformed request line, an endless header block and a body over 1 MiB with 400, then closes', async () => {
    for (const pieces of [
      ['POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
      ['NONSENSE\r\n\r\n'],
      ['GET /d HTTP/1.1\r\n', `x-filler: ${'a'.repeat(70 * 1024)}`],
      ['POST /g HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n{'],
    ]) {
      const text = await exchange(pieces, /$^/);
      expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    }
  });

  it('closes after answering a request that asks for it', async () => {
    const text = await exchange(['GET /e HTTP/1.1\r\nConnection: close\r\n\r\nGET /f HTTP/1.1\r\n\r\n'], /$^/);
    expect([...text.matchAll(/HTTP\/1\.1 \d{3} /g)]).toHaveLength(1);
  });
});
