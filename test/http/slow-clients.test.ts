import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type RunningBroker } from '../../src/server.js';
import { buildBroker, serviceKeys, type TestBroker } from '../support/broker.js';
import { until } from '../support/until.js';

/** Both doors on real listeners, as main.ts puts them, with the limits under test. */
const opened: Array<{ subject: TestBroker; running: RunningBroker }> = [];
async function listening(env: Record<string, string>): Promise<RunningBroker> {
  const subject = buildBroker({ HOST: '127.0.0.1', PORT: '0', INTERNAL_PORT: '0', ...env });
  const running = await serve(subject.broker, subject.config.http);
  opened.push({ subject, running });
  return running;
}
afterEach(async () => {
  for (const { running } of opened.splice(0)) await running.stop();
});

/** A raw client: what it was sent, and whether the broker has closed it. */
interface RawClient {
  socket: Socket;
  received: () => string;
  closed: () => boolean;
}
async function open(port: number): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => {}); // a refused connection may be reset; 'close' follows either way
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => received, closed: () => closed };
}

/** One full request on a kept-alive connection; resolves with the status line once the answer is in. */
async function ask(client: RawClient, path = '/healthz'): Promise<string> {
  const before = client.received().length;
  client.socket.write(`GET ${path} HTTP/1.1\r\nHost: broker\r\n\r\n`);
  await until(() => /\r\n\r\n[\s\S]*\}$/.test(client.received().slice(before)) || client.closed(), 'an answer');
  return client.received().slice(before).split('\r\n')[0] ?? '';
}

describe('slow clients cannot hold a door', () => {
  it('closes a connection whose headers never finish, on both doors (408)', async () => {
    const running = await listening({ HTTP_HEADERS_TIMEOUT_MS: '300', HTTP_REQUEST_TIMEOUT_MS: '600' });
    for (const port of [running.publicPort, running.internalPort]) {
      const client = await open(port);
      client.socket.write('GET /healthz HTTP/1.1\r\nHost: broker\r\n'); // half the headers, then nothing
      await until(client.closed, 'the broker to close the connection', 15_000);
      expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
    }
  });

  it('closes a connection whose body never finishes, once the request timeout has passed', async () => {
    const running = await listening({ HTTP_HEADERS_TIMEOUT_MS: '300', HTTP_REQUEST_TIMEOUT_MS: '600' });
    const client = await open(running.internalPort);
    client.socket.write(
      `POST /v1/starship/api/v1/orders HTTP/1.1\r\nHost: broker\r\nAuthorization: Bearer ${serviceKeys.orders}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"product_id"',
    );
    await until(client.closed, 'the broker to close the connection', 15_000);
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('tells keep-alive clients the configured idle timeout (65 s by default, above common load balancers)', async () => {
    const running = await listening({});
    const client = await open(running.publicPort);
    expect(await ask(client)).toBe('HTTP/1.1 200 OK');
    expect(client.received()).toMatch(/\r\nKeep-Alive: timeout=65\r\n/i);
    client.socket.destroy();

    const shorter = await listening({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000' });
    const idle = await open(shorter.internalPort);
    expect(await ask(idle)).toBe('HTTP/1.1 200 OK');
    expect(idle.received()).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i);
    await until(idle.closed, 'the idle connection to be closed', 15_000);
  });

  it('refuses connections over each door’s cap while the open ones are still served', async () => {
    const running = await listening({ PUBLIC_MAX_CONNECTIONS: '2', INTERNAL_MAX_CONNECTIONS: '1' });
    const caps = [
      [running.publicPort, 2],
      [running.internalPort, 1],
    ] as const;
    for (const [port, cap] of caps) {
      const held: RawClient[] = [];
      for (let i = 0; i < cap; i++) {
        const client = await open(port);
        expect(await ask(client)).toBe('HTTP/1.1 200 OK');
        held.push(client);
      }
      const over = await open(port);
      over.socket.write('GET /healthz HTTP/1.1\r\nHost: broker\r\n\r\n');
      await until(over.closed, 'the connection over the cap to be closed');
      expect(over.received()).toBe('');
      // The connections already open are not affected.
      for (const client of held) expect(await ask(client)).toBe('HTTP/1.1 200 OK');
      // Once one is gone, there is room again.
      held[0]?.socket.destroy();
      await until(() => held[0]?.closed() === true, 'the client to close');
      let again: RawClient | undefined;
      await until(async () => {
        again?.socket.destroy();
        again = await open(port);
        return (await ask(again)) === 'HTTP/1.1 200 OK';
      }, 'a new connection to be served');
      for (const client of [...held, again]) client?.socket.destroy();
    }
  });
});
