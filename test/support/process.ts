import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { watchLogs } from './secrets.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface BrokerProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  publicPort: number;
  internalPort: number;
  exited: Promise<number | null>;
}

export interface SpawnOptions {
  /** Arguments of the broker (`--check-config`, …). */
  args?: string[];
  /** Options of Node itself (`--env-file=…`). */
  nodeArgs?: string[];
}

/** The command that runs src/main.ts as production runs dist/main.js, from the repository root. */
export function brokerCommand({ args = [], nodeArgs = [] }: SpawnOptions = {}): { file: string; args: string[]; cwd: string } {
  return { file: process.execPath, args: [...nodeArgs, '--import', 'tsx', 'src/main.ts', ...args], cwd: root };
}

/** The environment a test broker process starts with: any free ports on loopback, then `env`. */
export function brokerEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', PORT: '0', INTERNAL_PORT: '0', HOST: '127.0.0.1', ...env };
}

/** Runs src/main.ts in a real child process, as production runs dist/main.js. */
export function spawnBroker(
  env: Record<string, string>,
  options: SpawnOptions = {},
): {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
} {
  const command = brokerCommand(options);
  const child = spawn(command.file, command.args, {
    cwd: command.cwd,
    env: brokerEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  watchLogs(() => out + err);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Spawns the broker and waits for its "broker listening" line, which names the ports it got. */
export async function startBrokerProcess(env: Record<string, string>, options: SpawnOptions = {}): Promise<BrokerProcess> {
  const spawned = spawnBroker(env, options);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const line = spawned
      .stdout()
      .split('\n')
      .find((l) => l.includes('"broker listening"'));
    if (line !== undefined) {
      const { publicPort, internalPort } = JSON.parse(line) as { publicPort: number; internalPort: number };
      return { ...spawned, publicPort, internalPort };
    }
    if (spawned.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  spawned.child.kill('SIGKILL');
  throw new Error(`broker did not start:\n${spawned.stdout()}\n${spawned.stderr()}`);
}
