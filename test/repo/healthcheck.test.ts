import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { baseEnv } from '../support/broker.js';
import { startBrokerProcess } from '../support/process.js';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../../docker/healthcheck.mjs', import.meta.url));

/** Runs the container's HEALTHCHECK command with the container's variables; resolves with its exit code. */
async function healthcheck(env: Record<string, string>): Promise<number> {
  return run(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env } }).then(
    () => 0,
    (error: { code?: number }) => error.code ?? -1,
  );
}

async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return String(port);
}

describe('docker/healthcheck.mjs', () => {
  it('is healthy only while both doors answer /healthz', async () => {
    const broker = await startBrokerProcess(baseEnv);
    try {
      const [publicPort, internalPort] = [String(broker.publicPort), String(broker.internalPort)];
      expect(await healthcheck({ PORT: publicPort, INTERNAL_PORT: internalPort })).toBe(0);
      expect(await healthcheck({ PORT: publicPort, INTERNAL_PORT: internalPort, HOST: '0.0.0.0' })).toBe(0);
      expect(await healthcheck({ PORT: publicPort, INTERNAL_PORT: internalPort, HOST: '127.0.0.1' })).toBe(0);
      // One door down (nothing listens where it should be), whichever it is: unhealthy.
      expect(await healthcheck({ PORT: publicPort, INTERNAL_PORT: await closedPort() })).toBe(1);
      expect(await healthcheck({ PORT: await closedPort(), INTERNAL_PORT: internalPort })).toBe(1);
    } finally {
      broker.child.kill('SIGTERM');
      expect(await broker.exited).toBe(0);
    }
    // Both down once the broker has stopped.
    expect(await healthcheck({ PORT: String(broker.publicPort), INTERNAL_PORT: String(broker.internalPort) })).toBe(1);
  });
});
