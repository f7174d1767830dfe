import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import {
  autocannon,
  fatal,
  freePort,
  installCleanup,
  median,
  root,
  rssKiB,
  sampleRss,
  startService,
  statusOf,
  stopService,
  waitFor,
  type Call,
  type LoadResult,
} from './support.js';
import type { UpstreamsReady, UpstreamsStats } from './upstreams.js';

/**
 * `npm run bench`: the broker against baselines on loopback, load from separate autocannon
 * processes, comparisons interleaved round by round (A, B, C, A, B, C, …) so that a noisy
 * neighbour on this shared machine hits every target alike; medians are reported. Prints one table
 * and writes it to bench/RESULTS.md. Exits 0 when targets are missed (the table says so), 1 when the
 * apparatus itself breaks.
 */
const CONNECTIONS = 32;
const RUN_S = 5;
// The broker has more code on its hot path than the baselines; give the JIT time to settle.
const WARMUP_S = 6;
const ROUNDS = Math.max(2, Number(process.env.BENCH_ROUNDS ?? 3));
/** The whole run, build excluded, must fit in 3 minutes with the build. */
const BUDGET_MS = 160_000;
const STORM = { brokers: 4, connectionsEach: 50, accessTtlS: 8, refreshBeforeS: 3, lifetimes: 3 };
const PROXY_PATH = '/v1/starship/api/v1/products';
const CONNECT_PATH = '/v1/benji/connect-token';

installCleanup();
const startedAt = Date.now();
/** A shared machine: how busy it was says how far to trust absolute figures (ratios are paired). */
const loadAtStart = os.loadavg()[0] ?? Number.NaN;
const budget = setTimeout(() => fatal(`the time budget of ${BUDGET_MS / 1000} s was exceeded`), BUDGET_MS);

function log(message: string): void {
  console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${message}`);
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** Fresh secrets per run; nothing here is real. */
const secrets = {
  starshipUsername: 'bench-api-user',
  starshipPassword: hex(16),
  benjiApiKey: hex(16),
  serviceKey: hex(16),
  jwtSecret: hex(24),
  encryptionKey: randomBytes(32).toString('base64'),
};
/** Children get a clean environment: nothing from the shell (a REDIS_URL, say) leaks into a target. */
const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production' };

// --- processes --------------------------------------------------------------------------------

interface Upstreams {
  child: ChildProcess;
  starshipUrl: string;
  benjiUrl: string;
  stats(): Promise<UpstreamsStats>;
}

/** The next IPC message of a type, or an error after a while. */
function message<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no '${type}' message within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    function onMessage(value: unknown) {
      if ((value as { type?: unknown }).type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(value as T);
    }
    child.on('message', onMessage);
  });
}

async function startUpstreams(name: string, accessTtlS: number): Promise<Upstreams> {
  const child = startService(name, process.execPath, ['--import', 'tsx', 'bench/upstreams.ts'], {
    env: {
      ...baseEnv,
      BENCH_STARSHIP_USERNAME: secrets.starshipUsername,
      BENCH_STARSHIP_PASSWORD: secrets.starshipPassword,
      BENCH_BENJI_API_KEY: secrets.benjiApiKey,
      BENCH_ACCESS_TTL_S: String(accessTtlS),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await message<UpstreamsReady>(child, 'ready', 20_000);
  return {
    child,
    starshipUrl: ready.starshipUrl,
    benjiUrl: ready.benjiUrl,
    stats: () => {
      const answer = message<UpstreamsStats>(child, 'stats', 5_000);
      child.send({ type: 'stats' });
      return answer;
    },
  };
}

interface PrivateRedis {
  child: ChildProcess;
  url: string;
  /** INFO stats total_commands_processed. */
  commands(): Promise<number>;
  client: Redis;
}

/** A redis-server of the bench's own, so that its command count is the broker's alone. */
async function startRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const child = startService(
    'redis-server',
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { enableReadyCheck: false, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => undefined); // refused while redis-server boots; waitFor retries
  await waitFor('redis-server', async () => (await client.ping()) === 'PONG');
  const commands = async () => Number(/^total_commands_processed:(\d+)/m.exec(await client.info('stats'))?.[1] ?? Number.NaN);
  return { child, url, commands, client };
}

interface Broker {
  name: string;
  child: ChildProcess;
  publicUrl: string;
  internalUrl: string;
}

const serviceAuth = { authorization: `Bearer ${secrets.serviceKey}` };

async function startBroker(name: string, upstreams: Upstreams, redisUrl: string, options: { keyPrefix: string; refreshBeforeS: number }) {
  const [port, internalPort] = [await freePort(), await freePort()];
  const env = {
    ...baseEnv,
    HOST: '127.0.0.1',
    PORT: String(port),
    INTERNAL_PORT: String(internalPort),
    LOG_LEVEL: 'info',
    BENJI_BASE_URL: upstreams.benjiUrl,
    BENJI_API_KEY: secrets.benjiApiKey,
    BENJI_PARTNERSHIP_ID: '49',
    FRONTEND_JWT_SECRET: secrets.jwtSecret,
    // The limiter runs (a Redis round trip per call) but never refuses: the schema's maximum,
    // 1,000,000 a minute, is far above what one user can get through here.
    CONNECT_TOKEN_RATE_LIMIT: '1000000',
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: options.keyPrefix,
    TOKEN_ENCRYPTION_KEY: secrets.encryptionKey,
    STARSHIP_BASE_URL: upstreams.starshipUrl,
    STARSHIP_USERNAME: secrets.starshipUsername,
    STARSHIP_PASSWORD: secrets.starshipPassword,
    STARSHIP_REFRESH_BEFORE_S: String(options.refreshBeforeS),
    INTERNAL_API_KEYS: `bench:${secrets.serviceKey}`,
  };
  // The broker's own output goes to /dev/null (production logging is part of its cost), so a bad
  // configuration would die silently: validate it first, where its complaint can be shown.
  await promisify(execFile)(process.execPath, ['dist/main.js', '--check-config'], { cwd: root, env, timeout: 15_000 }).catch(
    (error: { stderr?: string; message: string }) => {
      throw new Error(`${name}: configuration refused: ${error.stderr ?? error.message}`);
    },
  );
  // Run as the image runs it: with the NODE_OPTIONS the Dockerfile sets.
  const child = startService(name, process.execPath, ['dist/main.js'], {
    env: { ...env, NODE_OPTIONS: imageNodeOptions() },
    stdio: 'ignore',
  });
  const broker: Broker = { name, child, publicUrl: `http://127.0.0.1:${port}`, internalUrl: `http://127.0.0.1:${internalPort}` };
  await waitFor(`${name} /healthz`, async () => {
    const statuses = await Promise.all([
      statusOf({ url: `${broker.publicUrl}/healthz` }),
      statusOf({ url: `${broker.internalUrl}/healthz` }),
    ]);
    return statuses.every((status) => status === 200);
  });
  // One proxied call: the broker has its Starship session before anything is measured.
  await waitFor(`${name} proxy`, async () => (await statusOf({ url: broker.internalUrl + PROXY_PATH, headers: serviceAuth })) === 200);
  return broker;
}

/** The `ENV NODE_OPTIONS=…` of the Dockerfile's final stage, so the bench measures the shipped runtime. */
function imageNodeOptions(): string {
  const match = /^ENV NODE_OPTIONS=(.+)$/m.exec(readFileSync(`${root}/Dockerfile`, 'utf8'));
  return match?.[1]?.trim() ?? '';
}

async function startBaseline(name: string, file: string, env: Record<string, string>, ready: (url: string) => Call) {
  const port = await freePort();
  const child = startService(name, process.execPath, ['--import', 'tsx', `bench/baselines/${file}`], {
    env: { ...baseEnv, ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(name, async () => (await statusOf(ready(url))) === 200);
  return { child, url };
}

// --- measuring --------------------------------------------------------------------------------

interface Target {
  name: string;
  child: ChildProcess;
  call: Call;
  runs: LoadResult[];
  maxRssKiB: number;
  /** Only for the broker's proxy runs: Redis commands and requests during measured runs. */
  redis?: { commands: number; requests: number };
  /** A baseline that fails requests measures nothing: that breaks the run. */
  baseline: boolean;
  failed: number;
}

function target(name: string, child: ChildProcess, call: Call, options: { baseline: boolean; countRedis?: boolean }): Target {
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
  const rss = sampleRss(t.child.pid ?? 0);
  const before = measured && t.redis !== undefined ? await redis.commands() : 0;
  let result: LoadResult;
  try {
    result = await autocannon(t.call, CONNECTIONS, seconds);
  } finally {
    t.maxRssKiB = Math.max(t.maxRssKiB, rss.stop());
  }
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
  if (measured) t.runs.push(result);
  const failed = result.failed > 0 ? `, ${result.failed} FAILED` : '';
  log(`${label.padEnd(8)} ${t.name.padEnd(22)} ${Math.round(result.rps).toString().padStart(6)} req/s  p99 ${result.p99Ms} ms${failed}`);
}

/** A warm-up per target, then ROUNDS interleaved rounds. */
async function measureGroup(redis: PrivateRedis, own: number, targets: Target[]): Promise<void> {
  for (const t of targets) await runOnce(redis, own, t, WARMUP_S, 'warm-up');
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) await runOnce(redis, own, t, RUN_S, `round ${round}`);
  }
}

const medianRps = (t: Target) => median(t.runs.map((run) => run.rps));
const medianP99 = (t: Target) => median(t.runs.map((run) => run.p99Ms));

// --- the refresh storm --------------------------------------------------------------------------

interface StormResult {
  stats: UpstreamsStats['stats'];
  expectedRefreshes: number;
  requests: number;
  failed: number;
  seconds: number;
}

/**
 * 4 brokers on one Redis, 200 connections, short Starship tokens: the session must be logged in
 * once and refreshed once per lifetime, whichever replica gets there first.
 */
async function refreshStorm(redis: PrivateRedis): Promise<StormResult> {
  const upstreams = await startUpstreams('storm upstreams', STORM.accessTtlS);
  const brokers = await Promise.all(
    Array.from({ length: STORM.brokers }, (_, i) =>
      startBroker(`storm broker ${i + 1}`, upstreams, redis.url, { keyPrefix: 'bench-storm:', refreshBeforeS: STORM.refreshBeforeS }),
    ),
  );
  const login = (await upstreams.stats()).events.find((event) => event.kind === 'login');
  if (login === undefined) throw new Error('the storm brokers answered without a Starship login');

  // The broker refreshes on the first call inside the window: every `period` ms while traffic flows.
  const period = (STORM.accessTtlS - Math.min(STORM.refreshBeforeS, STORM.accessTtlS / 2)) * 1000;
  /** Refreshes due between the login and `end`, with traffic flowing from `start`. */
  const refreshesDue = (start: number, end: number) => {
    let count = 0;
    for (let issued = login.at; issued + period < end; issued = Math.max(issued + period, start)) count++;
    return count;
  };
  // Plan the load to end half a period after the last wanted refresh, far from any boundary.
  const plannedStart = Date.now() + 500;
  let lastRefresh = login.at;
  for (let i = 0; i < STORM.lifetimes; i++) lastRefresh = Math.max(lastRefresh + period, plannedStart);
  const seconds = Math.max(1, Math.round((lastRefresh + period / 2 - plannedStart) / 1000));
  log(`storm    ${STORM.brokers} brokers × ${STORM.connectionsEach} connections for ${seconds} s (a refresh due every ${period / 1000} s)`);

  const results = await Promise.all(
    brokers.map((broker) => autocannon({ url: broker.internalUrl + PROXY_PATH, headers: serviceAuth }, STORM.connectionsEach, seconds)),
  );
  const { stats } = await upstreams.stats();
  const start = Math.min(...results.map((r) => r.start));
  const end = Math.max(...results.map((r) => r.finish));
  await Promise.all([...brokers.map((broker) => stopService(broker.child)), stopService(upstreams.child)]);
  const storm = {
    stats,
    expectedRefreshes: refreshesDue(start, end),
    requests: results.reduce((sum, r) => sum + r.total, 0),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    seconds,
  };
  log(
    `storm    ${JSON.stringify({ ...stats, expectedRefreshes: storm.expectedRefreshes, requests: storm.requests, failed: storm.failed })}`,
  );
  return storm;
}

// --- the report ---------------------------------------------------------------------------------

interface Row {
  what: string;
  measured: string;
  baseline: string;
  ratio: string;
  target: string;
  pass: boolean;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const times = (n: number) => `${n.toFixed(2)}×`;
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
const failures = (t: Target) => (t.failed > 0 ? ` (${t.failed} failed requests)` : '');

function table(rows: Row[]): string {
  const lines = [
    '| what | broker | baseline | ratio | target | result |',
    '| --- | ---: | ---: | ---: | --- | --- |',
    ...rows.map((r) => `| ${r.what} | ${r.measured} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.pass ? 'PASS' : '**FAIL**'} |`),
  ];
  return lines.join('\n');
}

function machine(): string[] {
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

// --- the run ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  log(`rounds ${ROUNDS}, ${RUN_S} s per measured run, ${WARMUP_S} s warm-up, ${CONNECTIONS} connections`);
  const redis = await startRedis();
  // What two back-to-back snapshots count by themselves (the first INFO), measured before any broker runs.
  const first = await redis.commands();
  const own = (await redis.commands()) - first;
  const upstreams = await startUpstreams('upstreams', 900);

  const userJwt = await new SignJWT({ sub: 'bench-user' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secrets.jwtSecret));
  const connectCall = (url: string): Call => ({
    url: url + CONNECT_PATH,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${userJwt}` },
    body: '{"mode":"connect"}',
  });
  const proxyCall = (url: string): Call => ({ url: url + PROXY_PATH, headers: serviceAuth });
  const starshipEnv = {
    STARSHIP_URL: upstreams.starshipUrl,
    STARSHIP_USERNAME: secrets.starshipUsername,
    STARSHIP_PASSWORD: secrets.starshipPassword,
  };

  const [broker, bare, hpm, direct] = await Promise.all([
    startBroker('broker', upstreams, redis.url, { keyPrefix: 'bench:', refreshBeforeS: 300 }),
    startBaseline('bare pass-through', 'bare-proxy.ts', starshipEnv, proxyCall),
    startBaseline('http-proxy-middleware', 'hpm-proxy.ts', starshipEnv, proxyCall),
    startBaseline(
      'direct Benji',
      'direct-benji.ts',
      { BENJI_URL: upstreams.benjiUrl, BENJI_API_KEY: secrets.benjiApiKey, BENJI_PARTNERSHIP_ID: '49' },
      connectCall,
    ),
  ]);
  await waitFor('broker connect-token', async () => (await statusOf(connectCall(broker.publicUrl))) === 200);
  const brokerIdleRss = rssKiB(broker.child.pid ?? 0) ?? 0;
  log('all targets answer');

  const brokerProxy = target('broker proxy', broker.child, proxyCall(broker.internalUrl), { baseline: false, countRedis: true });
  const bareProxy = target('bare pass-through', bare.child, proxyCall(bare.url), { baseline: true });
  const hpmProxy = target('http-proxy-middleware', hpm.child, proxyCall(hpm.url), { baseline: true });
  await measureGroup(redis, own, [brokerProxy, bareProxy, hpmProxy]);

  const brokerConnect = target('broker connect-token', broker.child, connectCall(broker.publicUrl), { baseline: false });
  const directConnect = target('direct Benji', direct.child, connectCall(direct.url), { baseline: true });
  await measureGroup(redis, own, [brokerConnect, directConnect]);

  // The storm gets the machine to itself.
  await Promise.all([broker, bare, hpm, direct, upstreams].map((p) => stopService(p.child)));
  const storm = await refreshStorm(redis);

  // Each ratio is the median of the per-round ratios: a round's two runs are neighbours in time and
  // share the machine's mood, while medians taken apart can pair a good minute with a bad one.
  const pairedRatio = (a: Target, b: Target, value: (r: LoadResult) => number) =>
    median(a.runs.map((run, i) => value(run) / value(b.runs[i] ?? run)));
  const rpsVsBare = pairedRatio(brokerProxy, bareProxy, (r) => r.rps);
  const rpsVsHpm = pairedRatio(brokerProxy, hpmProxy, (r) => r.rps);
  const p99VsBare = pairedRatio(brokerProxy, bareProxy, (r) => r.p99Ms);
  const connectVsDirect = pairedRatio(brokerConnect, directConnect, (r) => r.rps);
  const redisPerRequest = brokerProxy.redis === undefined ? Number.NaN : brokerProxy.redis.commands / brokerProxy.redis.requests;
  const brokerRss = Math.max(brokerProxy.maxRssKiB, brokerConnect.maxRssKiB);
  const s = storm.stats;
  const stormPass =
    s.logins === 1 &&
    s.loginFailures === 0 &&
    s.refreshes === storm.expectedRefreshes &&
    s.refreshFailures === 0 &&
    s.refreshReuses === 0 &&
    storm.failed === 0;
  const proxyOk = brokerProxy.failed === 0;

  const rows: Row[] = [
    {
      what: `internal proxy GET \`${PROXY_PATH}\`, req/s`,
      measured: fmt(medianRps(brokerProxy)) + failures(brokerProxy),
      baseline: `bare pass-through ${fmt(medianRps(bareProxy))}`,
      ratio: times(rpsVsBare),
      target: '≥ 0.85×',
      pass: proxyOk && rpsVsBare >= 0.85,
    },
    {
      what: 'internal proxy GET, req/s',
      measured: fmt(medianRps(brokerProxy)) + failures(brokerProxy),
      baseline: `http-proxy-middleware ${fmt(medianRps(hpmProxy))}`,
      ratio: times(rpsVsHpm),
      target: '≥ 1.3×',
      pass: proxyOk && rpsVsHpm >= 1.3,
    },
    {
      what: 'internal proxy GET, p99 latency',
      measured: `${medianP99(brokerProxy)} ms`,
      baseline: `bare pass-through ${medianP99(bareProxy)} ms`,
      ratio: times(p99VsBare),
      target: '≤ 1.3×',
      pass: proxyOk && p99VsBare <= 1.3,
    },
    {
      what: `public \`POST ${CONNECT_PATH}\`, req/s`,
      measured: fmt(medianRps(brokerConnect)) + failures(brokerConnect),
      baseline: `direct Benji ${fmt(medianRps(directConnect))}`,
      ratio: times(connectVsDirect),
      target: '≥ 0.8×',
      pass: brokerConnect.failed === 0 && connectVsDirect >= 0.8,
    },
    {
      what: 'Redis commands per proxied request (steady state)',
      measured: `${redisPerRequest.toFixed(4)} (${brokerProxy.redis?.commands} / ${fmt(brokerProxy.redis?.requests ?? 0)})`,
      baseline: '—',
      ratio: '—',
      target: '≤ 0.01',
      pass: redisPerRequest <= 0.01,
    },
    {
      what: `broker resident memory (max VmRSS) under ${CONNECTIONS} connections`,
      measured: mib(brokerRss),
      // The baselines run under tsx (its loader thread and caches count), so their RSS is listed
      // with their runs below, not offered as a comparison.
      baseline: '—',
      ratio: '—',
      target: '≤ 150 MiB',
      pass: brokerRss <= 150 * 1024,
    },
    {
      what: `refresh storm: ${STORM.brokers} brokers, one Redis, ${STORM.brokers * STORM.connectionsEach} connections, ${storm.seconds} s, ${STORM.accessTtlS} s tokens`,
      measured:
        `logins ${s.logins}, refreshes ${s.refreshes} (due ${storm.expectedRefreshes}), reuses ${s.refreshReuses}, ` +
        `auth failures ${s.loginFailures + s.refreshFailures}, failed requests ${storm.failed} of ${fmt(storm.requests)}`,
      baseline: '—',
      ratio: '—',
      target: '1 login, 1 refresh per lifetime, 0 reuses, 0 failures',
      pass: stormPass,
    },
  ];

  /** The same comparison round by round: a burst from a neighbour shows as one odd ratio. */
  const perRound = (what: string, a: Target, b: Target, value: (r: LoadResult) => number) =>
    `- ${what}, per round: ${a.runs.map((run, i) => times(value(run) / value(b.runs[i] ?? run))).join(', ')}`;
  const runsOf = (t: Target) =>
    `- ${t.name}: ${t.runs.map((r) => `${fmt(r.rps)} req/s p99 ${r.p99Ms} ms`).join('; ')}; max RSS ${mib(t.maxRssKiB)}` + failures(t);
  const report = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (bench/run.ts). Do not edit by hand.',
    '',
    ...machine(),
    `- Method: loopback only; load from separate autocannon processes, ${CONNECTIONS} connections, ${WARMUP_S} s warm-up per target, ` +
      `then ${ROUNDS} interleaved rounds of ${RUN_S} s (A, B, C, A, B, C, …); each figure is the median over rounds, ` +
      'each ratio the median of the per-round ratios. ' +
      'Fake Starship and Benji (src/sandbox) in their own process; a private redis-server; the broker is `node dist/main.js` ' +
      'with LOG_LEVEL=info to /dev/null; baselines in bench/baselines ' +
      '(http-proxy-middleware keeps its default of a new upstream connection per request).',
    '',
    table(rows),
    '',
    'Measured runs, in order of rounds:',
    '',
    ...[brokerProxy, bareProxy, hpmProxy, brokerConnect, directConnect].map(runsOf),
    `- broker RSS once started, before any load: ${mib(brokerIdleRss)}`,
    perRound('broker / bare pass-through req/s', brokerProxy, bareProxy, (r) => r.rps),
    perRound('broker / http-proxy-middleware req/s', brokerProxy, hpmProxy, (r) => r.rps),
    perRound('broker / bare pass-through p99', brokerProxy, bareProxy, (r) => r.p99Ms),
    perRound('broker / direct Benji connect-token req/s', brokerConnect, directConnect, (r) => r.rps),
    '',
    `Total time (build excluded): ${((Date.now() - startedAt) / 1000).toFixed(0)} s.`,
    '',
    'Reproduce: `npm run bench` (needs `redis-server` on PATH and free loopback ports; about 2 minutes). ' +
      'It exits 0 when a target is missed (the table says FAIL) and non-zero when the apparatus itself breaks. ' +
      '`BENCH_ROUNDS=n` changes the number of rounds (at least 2).',
    '',
  ].join('\n');

  console.log(`\n${table(rows)}\n`);
  writeFileSync(new URL('RESULTS.md', import.meta.url), report);
  log(`written bench/RESULTS.md; ${rows.filter((r) => !r.pass).length} of ${rows.length} targets missed`);

  clearTimeout(budget);
  await stopService(redis.child);
  redis.client.disconnect();
}

main().then(() => process.exit(0), fatal);
