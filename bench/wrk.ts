import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, root, track, type Call } from './support.js';

/**
 * Load from wrk (Debian's `wrk`, a C load generator): one process per run, its requests described by
 * a generated Lua script, its `--latency` report parsed here. autocannon, used before, could not
 * saturate the targets on these 2-core machines (it needed about a core of its own).
 */

/** What one wrk run printed, in the units used everywhere else in the bench. */
export interface WrkReport {
  /** Answers received (any status). */
  requests: number;
  durationS: number;
  /** wrk's own `Requests/sec`: requests over its measured duration. */
  rps: number;
  /** Latency percentiles of the answered requests, from `--latency`, in ms. */
  p50Ms: number;
  p75Ms: number;
  p90Ms: number;
  p99Ms: number;
  /**
   * Answers with a status of 400 or more. wrk prints them as "Non-2xx or 3xx responses" but counts
   * `status > 399`: a 3xx would pass unnoticed (none of the targets answers one).
   */
  statusErrors: number;
  /** Connections refused, read or write failures, requests unanswered within `--timeout`. */
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `4.53ms`, `791.33us`, `1.00m` → milliseconds. */
function durationMs(value: string, unit: string): number {
  const factor = UNIT_MS[unit];
  if (factor === undefined) throw new Error(`unknown time unit '${unit}' in wrk's output`);
  return Number(value) * factor;
}

/** Parses wrk 4's report (run with `--latency`); throws, quoting the output, when a line it needs is missing. */
export function parseWrkOutput(output: string): WrkReport {
  const fail = (what: string): never => {
    throw new Error(`wrk's output has no ${what}:\n${output.trim()}`);
  };
  const done = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),/m.exec(output) ?? fail('"N requests in T" line');
  const rps = /^Requests\/sec:\s+([\d.]+)\s*$/m.exec(output) ?? fail('"Requests/sec" line');
  const percentiles = new Map<number, number>();
  const distribution = output.split(/^\s*Latency Distribution\s*$/m)[1] ?? fail('"Latency Distribution" (was --latency given?)');
  for (const [, percent, value, unit] of distribution.matchAll(/^\s+(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$/gm)) {
    percentiles.set(Number(percent), durationMs(value ?? '', unit ?? ''));
  }
  const percentile = (p: number) => percentiles.get(p) ?? fail(`${p}% latency`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const status = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  return {
    requests: Number(done[1]),
    durationS: durationMs(done[2] ?? '', done[3] ?? '') / 1000,
    rps: Number(rps[1]),
    p50Ms: percentile(50),
    p75Ms: percentile(75),
    p90Ms: percentile(90),
    p99Ms: percentile(99),
    statusErrors: Number(status?.[1] ?? 0),
    // wrk prints the line only when one of them is not zero.
    socketErrors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
  };
}

/** A Lua string literal holding exactly these bytes (UTF-8), whatever they are. */
export function luaString(value: string): string {
  let literal = '"';
  for (const byte of Buffer.from(value, 'utf8')) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    // A decimal escape is always three digits, so a digit after it cannot be read as part of it.
    literal += printable ? String.fromCharCode(byte) : `\\${byte.toString().padStart(3, '0')}`;
  }
  return `${literal}"`;
}

/** The wrk script that sends `call` on every request: method, headers and body. */
export function wrkScript(call: Call): string {
  const lines = [`wrk.method = ${luaString(call.method ?? 'GET')}`];
  for (const [name, value] of Object.entries(call.headers ?? {})) lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  if (call.body !== undefined) lines.push(`wrk.body = ${luaString(call.body)}`);
  return `${lines.join('\n')}\n`;
}

const INSTALL_HINT = "install Debian's wrk: `apt-get install wrk`";

/** wrk's version line; throws, naming the package to install, when there is no wrk on PATH. */
export function requireWrk(): string {
  // `wrk --version` prints its version and usage, then exits 1.
  const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined) {
    throw new Error(`the bench drives its load with wrk, and there is no \`wrk\` on PATH (${probe.error.message}): ${INSTALL_HINT}`);
  }
  const version = /^wrk \S+.*$/m.exec(`${probe.stdout}${probe.stderr}`)?.[0];
  if (version === undefined) throw new Error(`\`wrk --version\` did not print a wrk version: ${INSTALL_HINT}`);
  return version.trim();
}

export interface WrkOptions {
  threads: number;
  connections: number;
  seconds: number;
  /** wrk's `--timeout`: a request unanswered for this long counts as a failure. */
  timeoutS: number;
}

/** One wrk run, and when it ran: the storm needs the traffic's start and end. */
export interface WrkRun extends WrkReport {
  start: number;
  finish: number;
  /** wrk's own CPU time over the run (from /proc, sampled until just before it exits), per second of run. */
  generatorBusy: number;
  /** Everything wrk printed: a script's `done()` adds its own lines after the report. */
  stdout: string;
}

let scriptDir: string | undefined;
const scripts = new Map<string, string>();

/** A path for a file of this name in the bench's temporary directory, which is removed when the bench exits. */
export function tempPath(name: string): string {
  if (scriptDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-'));
    scriptDir = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return join(scriptDir, name);
}

/** A script file per distinct call. */
function scriptFile(call: Call): string {
  const text = wrkScript(call);
  const known = scripts.get(text);
  if (known !== undefined) return known;
  const file = tempPath(`call-${scripts.size + 1}.lua`);
  writeFileSync(file, text);
  scripts.set(text, file);
  return file;
}

/**
 * Runs wrk once against `call`; a wrk that fails or hangs breaks the run. `script` replaces the one
 * generated from the call, for loads that no single request describes (bench/webhook-load.ts).
 */
export async function wrk(call: Call, options: WrkOptions, script = scriptFile(call)): Promise<WrkRun> {
  const args = [
    ...['--threads', String(options.threads), '--connections', String(options.connections)],
    ...['--duration', `${options.seconds}s`, '--timeout', `${options.timeoutS}s`, '--latency'],
    ...['--script', script, call.url],
  ];
  const start = Date.now();
  const child = track(spawn('wrk', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // Its CPU can only be read while it runs: sample it, and keep the last reading.
  let cpu = { at: start, seconds: 0 };
  const sampler = setInterval(() => {
    const seconds = cpuSeconds(child.pid ?? 0).total;
    if (!Number.isNaN(seconds)) cpu = { at: Date.now(), seconds };
  }, 100);
  const exited = once(child, 'exit');
  // wrk stops at its duration; anything much later is stuck.
  const timer = setTimeout(() => child.kill('SIGKILL'), (options.seconds + options.timeoutS + 10) * 1000);
  const [code] = (await exited.finally(() => {
    clearTimeout(timer);
    clearInterval(sampler);
  })) as [number | null];
  const finish = Date.now();
  if (code !== 0) throw new Error(`wrk on ${call.url} exited with ${code}: ${`${stderr}${stdout}`.trim().slice(-400)}`);
  return { ...parseWrkOutput(stdout), start, finish, generatorBusy: cpu.seconds / Math.max(0.001, (cpu.at - start) / 1000), stdout };
}
