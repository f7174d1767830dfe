import * as cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { freePort } from './support.js';
import type { UpstreamsReady, UpstreamsStats } from './upstreams.js';

/**
 * The upstreams of the throughput runs: just what those runs call (a Starship login and
 * `GET /api/v1/products`, Benji's `POST /auth/connect`), answered over plain sockets
 * (bench/raw-http.ts), so that the upstream is never what bounds a target. The sandbox fakes record every
 * request and model every fault, which costs them a few times more per call than a target spends;
 * they stay the upstreams of the refresh storm, which counts logins and refreshes, not req/s.
 *
 * Served by `BENCH_UPSTREAM_WORKERS` processes (node:cluster; 2 by default, one per core of the
 * bench's machines), bench/lean-upstream-worker.ts: with one process, wrk against a fake alone
 * was bounded by that one event loop, below 5× the fastest target's rate (bench/README.md). This
 * primary chooses the ports, hands connections out, adds the workers' counts up and speaks the
 * IPC protocol of bench/upstreams.ts, with the workers' pids added: they are what serve the calls,
 * so their CPU is the fakes'.
 */
export type LeanStats = UpstreamsStats['stats'];

const send = process.send?.bind(process);
if (send === undefined) throw new Error('bench/lean-upstreams.ts is started by the bench, with an IPC channel');

const reply = <T>(worker: cluster.Worker, ask: string | undefined): Promise<T> =>
  new Promise((resolve) => {
    worker.once('message', resolve);
    if (ask !== undefined) worker.send(ask);
  });

const count = Math.max(1, Number(process.env.BENCH_UPSTREAM_WORKERS ?? 2));
const ports = { LEAN_STARSHIP_PORT: String(await freePort()), LEAN_BENJI_PORT: String(await freePort()) };
// Every worker's tokens start with this, so each accepts the others'.
const LEAN_TOKEN_PREFIX = `at_${randomBytes(12).toString('hex')}_`;
cluster.setupPrimary({ exec: fileURLToPath(new URL('lean-upstream-worker.ts', import.meta.url)) });
const workers = Array.from({ length: count }, () => cluster.fork({ ...ports, LEAN_TOKEN_PREFIX }));
await Promise.all(workers.map((worker) => reply(worker, undefined)));
// A worker that dies voids the run: the bench sees this process exit.
for (const worker of workers) worker.once('exit', (code: number | null) => process.exit(code ?? 1));

process.on('message', async (message: { type?: string }) => {
  if (message.type !== 'stats') return;
  const parts = await Promise.all(workers.map((worker) => reply<LeanStats>(worker, 'stats')));
  const stats = { ...parts[0] } as LeanStats;
  for (const part of parts.slice(1)) for (const key of Object.keys(stats) as (keyof LeanStats)[]) stats[key] += part[key];
  send({ type: 'stats', stats, events: [] } satisfies UpstreamsStats);
});
process.on('disconnect', () => process.exit(0));
send({
  type: 'ready',
  starshipUrl: `http://127.0.0.1:${ports.LEAN_STARSHIP_PORT}`,
  benjiUrl: `http://127.0.0.1:${ports.LEAN_BENJI_PORT}`,
  pids: workers.map((worker) => worker.process.pid ?? 0),
} satisfies UpstreamsReady);
