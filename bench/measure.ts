import { execFileSync, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import { cpuSeconds, median, root, sampleRss, type Call } from './support.js';
import type { Output, PrivateRedis } from './targets.js';
import type { Receipts, RunLoad } from './webhook-load.js';
import { wrk, type WrkRun } from './wrk.js';

/**
 * Load and measurement shared by the bench scripts: a warm-up per target, then rounds interleaved
 * (A, B, C, then B, C, A, …) so that a noisy neighbour on this shared machine hits every target alike.
 */

/**
 * How every target is loaded. One wrk thread: the machine has 2 cores, shared by wrk, the fake
 * upstreams and the target, and one thread drives several times what any target serves (the
 * capacity check in bench/run.ts shows it in every report), while a second would only compete with
 * the target for the cores. 32 connections, as in every earlier run: enough that a single-threaded
 * target always has work queued. A request unanswered for 10 s counts as failed (wrk's default of
 * 2 s would fail http-proxy-middleware's slowest answers rather than time them).
 */
export const LOAD = { threads: 1, connections: 32, timeoutS: 10 };
export const RUN_S = 4;
// The broker has more code on its hot path than the baselines; give the JIT time to settle.
export const WARMUP_S = 5;
export const ROUNDS = Math.max(2, Number(process.env.BENCH_ROUNDS ?? 5));

const startedAt = Date.now();
export const elapsedS = () => (Date.now() - startedAt) / 1000;

export function log(message: string): void {
  console.log(`[${elapsedS().toFixed(1).padStart(5)} s] ${message}`);
}

/** One run: what wrk saw, and what the target (and the apparatus around it) spent meanwhile. */
export interface Run extends WrkRun {
  /** 1, 2, …; 0 for the warm-up. */
  round: number;
  /** CPU time per request, all the target's threads (V8's GC helpers included), in µs. */
  cpuUs: number;
  /** The main thread's share: it runs every handler, so it is what saturates first. */
  mainUs: number;
  /** The target's largest VmRSS during the run, KiB. */
  rssKiB: number;
  /** Lines and bytes the target wrote to its stdout per request (its log lines). */
  linesPerRequest: number;
  bytesPerRequest: number;
  /** The fake upstreams' main thread: CPU seconds per second of the run. */
  upstreamBusy: number;
  /** Failed requests: statuses of 400 or more and socket errors, timeouts included (and, for a receiving run, events answered but not stored). */
  failed: number;
  /** A receiving run's answers and what landed in the stream. */
  receipts?: Receipts;
}

export interface Target {
  name: string;
  child: ChildProcess;
  call: Call;
  output: Output;
  /** Measured runs, in round order. */
  runs: Run[];
  warmup?: Run;
  maxRssKiB: number;
  /** Only for the broker's proxy runs: Redis commands and requests during measured runs. */
  redis?: { commands: number; requests: number };
  /** A baseline that fails requests measures nothing: that breaks the run. */
  baseline: boolean;
  failed: number;
  /** The processes whose CPU is the target's, when not `child` alone (the fake upstreams' workers). */
  pids?: number[];
  /** Requests that differ from run to run (new webhooks), in place of `call`'s one request; `call` still names the URL. */
  perRun?: RunLoad;
}

export function target(
  name: string,
  service: { child: ChildProcess; output: Output },
  call: Call,
  options: { baseline: boolean; countRedis?: boolean; perRun?: RunLoad; pids?: number[] },
): Target {
  return {
    name,
    child: service.child,
    output: service.output,
    call,
    runs: [],
    maxRssKiB: 0,
    baseline: options.baseline,
    failed: 0,
    ...(options.countRedis === true && { redis: { commands: 0, requests: 0 } }),
    ...(options.perRun !== undefined && { perRun: options.perRun }),
    ...(options.pids !== undefined && { pids: options.pids }),
  };
}

/** What every run reads besides its target: the Redis the brokers share, and the upstreams' processes. */
export interface Apparatus {
  redis: PrivateRedis;
  /** Commands that one `redis.commands()` snapshot adds by itself. */
  ownCommands: number;
  /** The processes serving the fake upstreams' calls. */
  upstreamPids: number[];
}

/** CPU seconds so far of a set of processes, all threads and main threads, added up. */
function cpuOf(pids: number[]): { total: number; main: number } {
  return pids.map(cpuSeconds).reduce((sum, one) => ({ total: sum.total + one.total, main: sum.main + one.main }), { total: 0, main: 0 });
}

export const failedOf = (r: WrkRun) =>
  r.statusErrors + r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout;

async function runOnce(apparatus: Apparatus, t: Target, seconds: number, round: number): Promise<void> {
  // Written before anything is measured: signing a run's requests takes the bench a while.
  const prepared = await t.perRun?.prepare(seconds);
  const pids = t.pids ?? [t.child.pid ?? 0];
  const rss = sampleRss(pids[0] ?? 0);
  const before = round > 0 && t.redis !== undefined ? await apparatus.redis.commands() : 0;
  const output = { ...t.output };
  const cpuBefore = cpuOf(pids);
  const upstreamBefore = cpuOf(apparatus.upstreamPids);
  // A failed run must not leave its sampler running; stop() can be called again for the figure.
  const result = await wrk(t.call, { ...LOAD, seconds }, prepared?.script).finally(() => rss.stop());
  const rssKiB = rss.stop();
  t.maxRssKiB = Math.max(t.maxRssKiB, rssKiB);
  const cpuAfter = cpuOf(pids);
  const upstreamAfter = cpuOf(apparatus.upstreamPids);
  const receipts = await prepared?.settle(result);
  const failed = failedOf(result) + (result.requests === 0 ? 1 : 0) + (receipts?.missing ?? 0);
  if (round > 0 && t.redis !== undefined) {
    // Our own INFO call between the two snapshots is counted too; take it off.
    t.redis.commands += (await apparatus.redis.commands()) - before - apparatus.ownCommands;
    t.redis.requests += result.requests;
  }
  if (failed > 0 && t.baseline) {
    throw new Error(
      `baseline ${t.name} failed ${failed} of ${result.requests} requests (${JSON.stringify(result.socketErrors)}, ${result.statusErrors} statuses ≥ 400)`,
    );
  }
  t.failed += failed;
  const perRequestUs = (after: number, start: number) => ((after - start) * 1e6) / Math.max(1, result.requests);
  const run: Run = {
    ...result,
    round,
    cpuUs: perRequestUs(cpuAfter.total, cpuBefore.total),
    mainUs: perRequestUs(cpuAfter.main, cpuBefore.main),
    rssKiB,
    linesPerRequest: (t.output.lines - output.lines) / Math.max(1, result.requests),
    bytesPerRequest: (t.output.bytes - output.bytes) / Math.max(1, result.requests),
    upstreamBusy: (upstreamAfter.main - upstreamBefore.main) / Math.max(0.001, (result.finish - result.start) / 1000),
    failed,
    ...(receipts !== undefined && { receipts }),
  };
  if (round > 0) t.runs.push(run);
  else t.warmup = run;
  const label = round > 0 ? `round ${round}` : 'warm-up';
  log(
    `${label.padEnd(8)} ${t.name.padEnd(26)} ${fmt(run.rps).padStart(6)} req/s  p50 ${ms(run.p50Ms)} p99 ${ms(run.p99Ms)}  ` +
      `CPU ${fmt(run.cpuUs)} µs/request (main ${fmt(run.mainUs)})  RSS ${mib(rssKiB)}  ` +
      `wrk ${percent(run.generatorBusy)}, upstreams ${percent(run.upstreamBusy)} of a core${failed > 0 ? `, ${failed} FAILED` : ''}` +
      (receipts === undefined
        ? ''
        : `  stored ${fmt(receipts.stored)} for ${fmt(receipts.fresh)} fresh answers (${receipts.duplicate} duplicate, ${receipts.other} other), ` +
          `Redis ${fmt(receipts.redisUs)} µs/request`),
  );
}

export interface Schedule {
  rounds: number;
  runS: number;
  warmupS: number;
}

export const defaultSchedule: Schedule = { rounds: ROUNDS, runS: RUN_S, warmupS: WARMUP_S };

/**
 * A warm-up per target, then interleaved rounds, each round starting one target further along, so
 * that no target always runs first, last or next to the same neighbour.
 */
export async function measureGroup(apparatus: Apparatus, targets: Target[], schedule: Schedule = defaultSchedule): Promise<void> {
  for (const t of targets) await runOnce(apparatus, t, schedule.warmupS, 0);
  for (let round = 1; round <= schedule.rounds; round++) {
    // Each target's runs stay in round order, so run i of any two targets is from the same round.
    const start = (round - 1) % targets.length;
    for (const t of [...targets.slice(start), ...targets.slice(0, start)]) await runOnce(apparatus, t, schedule.runS, round);
  }
}

export const medianOf = (t: Target, value: (run: Run) => number) => median(t.runs.map(value));

/** A comparison of two targets: the ratio in each round, their median, and their range. */
export interface Ratio {
  perRound: number[];
  median: number;
  min: number;
  max: number;
}

/**
 * The median of the per-round ratios: a round's two runs are neighbours in time and share the
 * machine's mood, while medians taken apart can pair a good minute with a bad one.
 */
export function pairedRatio(a: Target, b: Target, value: (run: Run) => number): Ratio {
  return ratioOf(a.runs.map((run, i) => value(run) / value(b.runs[i] ?? run)));
}

export const ratioOf = (perRound: number[]): Ratio => ({
  perRound,
  median: median(perRound),
  min: Math.min(...perRound),
  max: Math.max(...perRound),
});

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
export const times = (n: number) => `${n.toFixed(2)}×`;
/** The headline and, beside it, how far single rounds strayed. */
export const ratioText = (r: Ratio) => `${times(r.median)} (${r.min.toFixed(2)}–${times(r.max)})`;
export const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
export const ms = (n: number) => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;
export const percent = (share: number) => `${Math.round(share * 100)}%`;

/** Every run of these targets, round by round, in the order they ran. */
export function runsTable(targets: Target[]): string {
  const rows = targets
    .flatMap((t) => [...(t.warmup === undefined ? [] : [t.warmup]), ...t.runs].map((run) => ({ t, run })))
    .sort((a, b) => a.run.start - b.run.start)
    .map(
      ({ t, run }) =>
        `| ${run.round === 0 ? 'warm-up' : run.round} | ${t.name} | ${fmt(run.rps)} | ${ms(run.p50Ms)} | ${ms(run.p99Ms)} | ` +
        `${fmt(run.cpuUs)} µs | ${fmt(run.mainUs)} µs | ${mib(run.rssKiB)} | ${run.linesPerRequest.toFixed(2)} | ` +
        `${percent(run.generatorBusy)} | ${percent(run.upstreamBusy)} | ${run.failed} |`,
    );
  return [
    '| round | target | req/s | p50 | p99 | CPU per request | main thread | max RSS | stdout lines per request | wrk CPU | upstreams CPU | failed |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

/** Ratios round by round, with the median and range the headline quotes. */
export function ratiosTable(ratios: { what: string; ratio: Ratio }[]): string {
  const rounds = Math.max(0, ...ratios.map((r) => r.ratio.perRound.length));
  const numbers = Array.from({ length: rounds }, (_, i) => String(i + 1));
  return [
    `| ratio | ${numbers.map((n) => `round ${n}`).join(' | ')} | median (range) |`,
    `| --- | ${numbers.map(() => '---:').join(' | ')} | ---: |`,
    ...ratios.map(({ what, ratio }) => `| ${what} | ${ratio.perRound.map(times).join(' | ')} | ${ratioText(ratio)} |`),
  ].join('\n');
}

/** Where and when a report was measured, and of which code: its first lines. */
/** The code being measured, read when the run starts (dist/ is built then): a checkout may move on meanwhile. */
const checkout = (() => {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const dirty =
    git('status', '--porcelain', '--', 'src') === '' ? '' : ' (src/ has uncommitted changes; dist/ was built from the working tree)';
  return `${git('rev-parse', '--short', 'HEAD') || 'unknown'}${dirty}`;
})();

export function machine(startedAt: number, loadAtStart: number): string[] {
  const cpus = os.cpus();
  return [
    `- Date: ${new Date(startedAt).toISOString()}`,
    `- Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}; load average ${loadAtStart.toFixed(2)} at start, ${os.loadavg()[0]?.toFixed(2)} at end`,
    `- Node ${process.version}; broker at commit ${checkout}`,
  ];
}
