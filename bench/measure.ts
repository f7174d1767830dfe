import { execFileSync, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import { autocannon, cpuSeconds, median, root, sampleRss, type Call, type LoadResult } from './support.js';
import type { PrivateRedis } from './targets.js';

/**
 * Load and measurement shared by the bench scripts: a warm-up per target, then rounds interleaved
 * (A, B, C, A, B, C, …) so that a noisy neighbour on this shared machine hits every target alike.
 */
export const CONNECTIONS = 32;
export const RUN_S = 5;
// The broker has more code on its hot path than the baselines; give the JIT time to settle.
export const WARMUP_S = 6;
export const ROUNDS = Math.max(2, Number(process.env.BENCH_ROUNDS ?? 3));

const startedAt = Date.now();
export const elapsedS = () => (Date.now() - startedAt) / 1000;

export function log(message: string): void {
  console.log(`[${elapsedS().toFixed(1).padStart(5)} s] ${message}`);
}

/** One measured run: what autocannon saw, and the CPU the target spent per request meanwhile. */
export interface Run extends LoadResult {
  /** CPU time per request, all the target's threads (V8's GC helpers included), in µs. */
  cpuUs: number;
  /** The main thread's share: it runs every handler, so it is what saturates first. */
  mainUs: number;
}

export interface Target {
  name: string;
  child: ChildProcess;
  call: Call;
  runs: Run[];
  maxRssKiB: number;
  /** Only for the broker's proxy runs: Redis commands and requests during measured runs. */
  redis?: { commands: number; requests: number };
  /** A baseline that fails requests measures nothing: that breaks the run. */
  baseline: boolean;
  failed: number;
}

export function target(name: string, child: ChildProcess, call: Call, options: { baseline: boolean; countRedis?: boolean }): Target {
  return {
    name,
    child,
    call,
    runs: [],
    maxRssKiB: 0,
    baseline: options.baseline,
    failed: 0,
    ...(options.countRedis === true && { redis: { commands: 0, requests: 0 } }),
  };
}

async function runOnce(redis: PrivateRedis, ownCommandsPerSnapshot: number, t: Target, seconds: number, label: string) {
  const measured = label !== 'warm-up';
  const pid = t.child.pid ?? 0;
  const rss = sampleRss(pid);
  const before = measured && t.redis !== undefined ? await redis.commands() : 0;
  const cpuBefore = cpuSeconds(pid);
  let result: LoadResult;
  try {
    result = await autocannon(t.call, CONNECTIONS, seconds);
  } finally {
    t.maxRssKiB = Math.max(t.maxRssKiB, rss.stop());
  }
  const cpuAfter = cpuSeconds(pid);
  if (measured && t.redis !== undefined) {
    // Our own INFO call between the two snapshots is counted too; take it off.
    t.redis.commands += (await redis.commands()) - before - ownCommandsPerSnapshot;
    t.redis.requests += result.total;
  }
  if (result.failed > 0 && t.baseline) {
    throw new Error(
      `baseline ${t.name} failed ${result.failed} requests (non2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts})`,
    );
  }
  t.failed += result.failed;
  const perRequestUs = (after: number, start: number) => ((after - start) * 1e6) / Math.max(1, result.total);
  const run: Run = {
    ...result,
    cpuUs: perRequestUs(cpuAfter.total, cpuBefore.total),
    mainUs: perRequestUs(cpuAfter.main, cpuBefore.main),
  };
  if (measured) t.runs.push(run);
  const failed = result.failed > 0 ? `, ${result.failed} FAILED` : '';
  log(
    `${label.padEnd(8)} ${t.name.padEnd(22)} ${Math.round(result.rps).toString().padStart(6)} req/s  p99 ${result.p99Ms} ms  ` +
      `${Math.round(run.cpuUs)} µs CPU/request${failed}`,
  );
}

export interface Schedule {
  rounds: number;
  runS: number;
  warmupS: number;
  /** Start each round one target further along, so no target always runs next to the same one. */
  rotate?: boolean;
}

/** A warm-up per target, then interleaved rounds. */
export async function measureGroup(
  redis: PrivateRedis,
  own: number,
  targets: Target[],
  { rounds, runS, warmupS, rotate = false }: Schedule = { rounds: ROUNDS, runS: RUN_S, warmupS: WARMUP_S },
): Promise<void> {
  for (const t of targets) await runOnce(redis, own, t, warmupS, 'warm-up');
  for (let round = 1; round <= rounds; round++) {
    // Each target's runs stay in round order, so run i of any two targets is from the same round.
    const start = rotate ? (round - 1) % targets.length : 0;
    for (const t of [...targets.slice(start), ...targets.slice(0, start)]) await runOnce(redis, own, t, runS, `round ${round}`);
  }
}

export const medianOf = (t: Target, value: (run: Run) => number) => median(t.runs.map(value));

/**
 * The median of the per-round ratios: a round's two runs are neighbours in time and share the
 * machine's mood, while medians taken apart can pair a good minute with a bad one.
 */
export const pairedRatio = (a: Target, b: Target, value: (run: Run) => number) =>
  median(a.runs.map((run, i) => value(run) / value(b.runs[i] ?? run)));

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
export const times = (n: number) => `${n.toFixed(2)}×`;
export const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

/** Where and when a report was measured, and of which code: its first lines. */
export function machine(startedAt: number, loadAtStart: number): string[] {
  const cpus = os.cpus();
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const dirty =
    git('status', '--porcelain', '--', 'src') === '' ? '' : ' (src/ has uncommitted changes; dist/ was built from the working tree)';
  return [
    `- Date: ${new Date(startedAt).toISOString()}`,
    `- Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}; load average ${loadAtStart.toFixed(2)} at start, ${os.loadavg()[0]?.toFixed(2)} at end`,
    `- Node ${process.version}; broker at commit ${git('rev-parse', '--short', 'HEAD') || 'unknown'}${dirty}`,
  ];
}
