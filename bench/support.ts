import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

/** Process plumbing for bench/run.ts: every child tracked and killed, every wait bounded. */

export const root = fileURLToPath(new URL('..', import.meta.url));

const children = new Set<ChildProcess>();
/** Children we stopped on purpose; any other exit of a service breaks the run. */
const stopping = new WeakSet<ChildProcess>();

/** Kills every child still running. Synchronous, so it also works from process.on('exit'). */
export function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** The apparatus broke: say why, leave nothing running, exit non-zero. */
export function fatal(error: unknown): never {
  console.error(`\nbench: the apparatus failed: ${error instanceof Error ? error.message : String(error)}`);
  killAll();
  process.exit(1);
}

let installed = false;
/** Cleanup on every way out: normal exit, Ctrl-C, kill, crash. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping every child process`);
      killAll();
      process.exit(130);
    });
  }
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}

/** Every child is tracked, so that none outlives the bench. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A long-lived child (upstreams, target, redis): if it dies on its own, the run is void. */
export function startService(name: string, command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = track(spawn(command, args, { cwd: root, ...options }));
  child.once('error', (error) => fatal(`${name} could not be started: ${error.message}`));
  child.once('exit', (code, signal) => {
    // Code 0 from a server means it shut down gracefully: something outside this run signalled it.
    const hint = code === 0 ? ', i.e. it was stopped by a signal from outside this run' : '';
    if (!stopping.has(child)) fatal(`${name} exited unexpectedly (${signal ?? `code ${code}`}${hint})`);
  });
  return child;
}

export async function stopService(child: ChildProcess): Promise<void> {
  stopping.add(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls until `ready` says yes; a process that never answers breaks the run instead of hanging it. */
export async function waitFor(what: string, ready: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ready().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} did not answer within ${timeoutMs / 1000} s`);
}

export interface Call {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

/** One request with short timeouts; the status, or a thrown error. */
export async function statusOf(call: Call): Promise<number> {
  const reply = await request(call.url, {
    method: call.method ?? 'GET',
    headers: call.headers,
    body: call.body,
    headersTimeout: 3_000,
    bodyTimeout: 3_000,
  });
  await reply.body.dump();
  return reply.statusCode;
}

/** Resident memory of a process, from the kernel (KiB); undefined once it is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** Samples a process's VmRSS every 200 ms until stopped; returns the maximum seen. */
export function sampleRss(pid: number): { stop(): number } {
  let max = rssKiB(pid) ?? 0;
  const timer = setInterval(() => (max = Math.max(max, rssKiB(pid) ?? 0)), 200);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, rssKiB(pid) ?? 0);
    },
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The kernel's clock ticks per second, which /proc counts CPU time in (100 on Linux nearly always). */
const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of one /proc stat file, in seconds (the fields after the parenthesised name). */
function statSeconds(path: string): number {
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/** CPU time a process has used so far, from the kernel: all its threads, and its main thread alone. */
export function cpuSeconds(pid: number): { total: number; main: number } {
  try {
    return { total: statSeconds(`/proc/${pid}/stat`), main: statSeconds(`/proc/${pid}/task/${pid}/stat`) };
  } catch {
    return { total: Number.NaN, main: Number.NaN };
  }
}
