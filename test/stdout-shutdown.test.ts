import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { baseEnv } from './support/broker.js';
import { brokerCommand, brokerEnv } from './support/process.js';
import { until } from './support/until.js';
import { freePort } from './support/ports.js';

/**
 * Logging must never keep the broker from exiting: `node dist/main.js | head -2` (stdout closed
 * early) and a log shipper that stalls (stdout blocked) both hung the shutdown before.
 */
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Starts the broker with the given stdout, and waits until both doors answer. */
async function start(stdout: 'pipe' | number): Promise<{ child: ChildProcess; port: number; exited: Promise<unknown[]> }> {
  const [port, internalPort] = [await freePort(), await freePort()];
  const command = brokerCommand();
  const child = spawn(command.file, command.args, {
    cwd: command.cwd,
    env: brokerEnv({ ...baseEnv, PORT: String(port), INTERNAL_PORT: String(internalPort) }),
    stdio: ['ignore', stdout, 'ignore'],
  });
  children.push(child);
  const exited = once(child, 'exit');
  await until(
    () =>
      fetch(`http://127.0.0.1:${internalPort}/healthz`).then(
        (res) => res.ok,
        () => false,
      ),
    'the broker to listen',
    15_000,
  );
  return { child, port, exited };
}

/** Requests that each write a long log line (their URL), enough to fill any pipe's buffer. */
async function logLots(port: number): Promise<void> {
  const path = `/not-a-route/${'x'.repeat(2000)}`;
  for (let round = 0; round < 40; round++) {
    const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`http://127.0.0.1:${port}${path}`).then((res) => res.status)));
    expect(answers.every((status) => status === 404)).toBe(true);
  }
}

describe('shutdown with a stdout nobody reads', () => {
  it('exits 0 on SIGTERM after stdout was closed early (… | head -2)', async () => {
    const broker = await start('pipe');
    // As head does once it has its lines: the reading end of the pipe goes away.
    broker.child.stdout?.destroy();
    await logLots(broker.port);
    broker.child.kill('SIGTERM');
    await until(() => broker.child.exitCode !== null, 'the broker to exit', 15_000);
    expect(await broker.exited).toEqual([0, null]);
  });

  it('exits 0 on SIGTERM while stdout is a full pipe that nobody reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'broker-stdout-'));
    const fifo = join(dir, 'stdout');
    execFileSync('mkfifo', [fifo]);
    // Opened read-write, so the pipe has a reader (no EPIPE) that never reads: writes fill it and stop.
    const pipe = openSync(fifo, 'r+');
    try {
      const broker = await start(pipe);
      await logLots(broker.port);
      broker.child.kill('SIGTERM');
      await until(() => broker.child.exitCode !== null, 'the broker to exit', 15_000);
      expect(await broker.exited).toEqual([0, null]);
    } finally {
      closeSync(pipe);
    }
  });
});
