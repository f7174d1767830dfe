import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import {
  elapsedS,
  fmt,
  log,
  machine,
  measureGroup,
  medianOf,
  mib,
  pairedRatio,
  ratioText,
  runsTable,
  LOAD,
  target,
  type Apparatus,
  type Run,
  type Target,
} from './measure.js';
import { fatal, installCleanup, statusOf, stopService, waitFor } from './support.js';
import { requireWrk } from './wrk.js';
import {
  connectCall,
  directBenjiEnv,
  imageNodeOptions,
  startBaseline,
  startBroker,
  startRedis,
  startUpstreams,
  userJwt,
} from './targets.js';

/**
 * `npm run bench:options`: what each way of closing the connect-token gap would buy. The same
 * broker is started with one product option changed at a time (by configuration only: no code is
 * switched off) and measured against direct Benji, interleaved round by round as in bench/run.ts.
 * Writes bench/OPTIONS.md. These are prices for a decision, not targets: nothing here passes or fails.
 */
/**
 * Six targets take turns, so one round is 20 s and the machine's mood changes within it: shorter
 * runs and more rounds than bench/run.ts (five rounds left single options inside the noise), about
 * four minutes in all.
 */
const schedule = { rounds: Math.max(2, Number(process.env.BENCH_ROUNDS ?? 10)), runS: 3, warmupS: 5 };

interface Option {
  name: string;
  givesUp: string;
  env: Record<string, string | undefined>;
}

// Without REDIS_URL the rate limit counts per replica and the Starship session lives in memory too.
const noRedis = { REDIS_URL: undefined };
const capFlag = /\s*--max-old-space-size=\d+/;
if (!capFlag.test(imageNodeOptions())) throw new Error('the Dockerfile sets no --max-old-space-size: nothing to uncap');
const uncapped = imageNodeOptions().replace(capFlag, '').trim();
const options: Option[] = [
  { name: 'as shipped', givesUp: '—', env: {} },
  {
    name: 'no access log (`LOG_LEVEL=warn`)',
    givesUp: 'the log line of every call: who was issued a token, when, how fast',
    env: { LOG_LEVEL: 'warn' },
  },
  {
    name: 'no Redis (no `REDIS_URL`)',
    givesUp:
      'replicas: without Redis the rate limit counts per replica (N replicas let N× through) and each replica logs in to Starship alone',
    env: noRedis,
  },
  {
    name: 'old space uncapped (no `--max-old-space-size`)',
    givesUp: 'the 150 MiB memory target (see max RSS)',
    env: {
      NODE_OPTIONS: uncapped,
    },
  },
  {
    name: 'all three',
    givesUp: 'all of the above',
    env: {
      LOG_LEVEL: 'warn',
      ...noRedis,
      NODE_OPTIONS: uncapped,
    },
  },
];

/** Every run of every target, plus a minute for starting and stopping (wrk adds ~0.1 s a run). */
const BUDGET_MS = ((schedule.warmupS + schedule.rounds * schedule.runS) * 1.15 * (options.length + 1) + 60) * 1000;

installCleanup();
const startedAt = Date.now();
const loadAtStart = os.loadavg()[0] ?? Number.NaN;
const budget = setTimeout(() => fatal(`the time budget of ${BUDGET_MS / 1000} s was exceeded`), BUDGET_MS);

async function main(): Promise<void> {
  const wrkVersion = requireWrk();
  log(
    `${options.length} broker options against direct Benji: rounds ${schedule.rounds}, ${schedule.runS} s each, ${schedule.warmupS} s warm-up`,
  );
  const redis = await startRedis();
  const first = await redis.commands();
  const ownCommands = (await redis.commands()) - first;
  const upstreams = await startUpstreams('upstreams', 900);
  const apparatus: Apparatus = { redis, ownCommands, upstreamPids: upstreams.pids };
  const jwt = await userJwt();
  const connect = (url: string) => connectCall(url, jwt);

  const brokers = await Promise.all(
    options.map((option, i) =>
      startBroker(`option ${i + 1}`, upstreams, redis.url, { keyPrefix: `bench-option-${i + 1}:`, refreshBeforeS: 300, env: option.env }),
    ),
  );
  const direct = await startBaseline('direct Benji', 'direct-benji.ts', directBenjiEnv(upstreams), connect);
  for (const broker of brokers)
    await waitFor(`${broker.name} connect-token`, async () => (await statusOf(connect(broker.publicUrl))) === 200);

  const targets = brokers.map((broker, i) =>
    target(options[i]?.name ?? broker.name, broker, connect(broker.publicUrl), { baseline: false }),
  );
  const baseline = target('direct Benji', direct, connect(direct.url), { baseline: true });
  await measureGroup(apparatus, [...targets, baseline], schedule);
  await Promise.all([...brokers, direct, upstreams].map((p) => stopService(p.child)));

  const shipped = targets[0];
  if (shipped === undefined) throw new Error('no broker was measured');
  /** The median of the per-round ratios, and their range: how far one round can be trusted. */
  const ratio = (t: Target, to: Target, value: (r: Run) => number) => ratioText(pairedRatio(t, to, value));
  const failures = (t: Target) => (t.failed > 0 ? `, ${t.failed} failed requests` : '');
  const row = (t: Target, givesUp: string) =>
    `| ${t.name} | ${givesUp} | ${fmt(medianOf(t, (r) => r.rps))}${failures(t)} | ${ratio(t, baseline, (r) => r.rps)} | ` +
    `${t === shipped ? '—' : ratio(t, shipped, (r) => r.rps)} | ${fmt(medianOf(t, (r) => r.mainUs))} µs, ${ratio(t, baseline, (r) => r.mainUs)} | ` +
    `${mib(t.maxRssKiB)} |`;
  const table = [
    '| broker | gives up | req/s | req/s vs direct Benji (range over rounds) | req/s vs as shipped | main-thread CPU per request, vs direct Benji | max RSS |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...targets.map((t, i) => row(t, options[i]?.givesUp ?? '')),
    `| direct Benji (Express, no auth) | — | ${fmt(medianOf(baseline, (r) => r.rps))} | 1.00× | — | ${fmt(medianOf(baseline, (r) => r.mainUs))} µs | ` +
      `${mib(baseline.maxRssKiB)} |`,
  ].join('\n');
  const report = [
    '# What each option would buy on the public door',
    '',
    'Written by `npm run bench:options` (bench/options.ts). Do not edit by hand.',
    '',
    ...machine(startedAt, loadAtStart),
    `- Method: \`POST /v1/benji/connect-token\` as in bench/RESULTS.md (${wrkVersion.replace(/ Copyright.*$/, '')}, ` +
      `${LOAD.threads} thread, ${LOAD.connections} connections; one signed-in user, ` +
      `a rate limit that never refuses), ${schedule.warmupS} s warm-up per target, then ${schedule.rounds} rounds of ${schedule.runS} s, ` +
      'each round starting one target further along, so that no target always runs next to the same neighbour. ' +
      'Each broker differs from the shipped one by configuration only. Ratios are medians of per-round ratios (a round’s runs are at most 20 s apart). ' +
      'The target in issue 5 is ≥ 0.80× direct Benji.',
    '',
    table,
    '',
    'Every run, in the order it ran:',
    '',
    runsTable([...targets, baseline]),
    '',
    `Total time (build excluded): ${elapsedS().toFixed(0)} s.`,
    '',
    'Reproduce: `npm run bench:options` (about 4 minutes; `BENCH_ROUNDS=n` changes the number of rounds, 10 by default here). ' +
      'On a shared machine single rounds swing widely (see the ranges): read differences of about 10% between options as noise.',
    '',
  ].join('\n');
  console.log(`\n${table}\n`);
  writeFileSync(new URL('OPTIONS.md', import.meta.url), report);
  log('written bench/OPTIONS.md');
  clearTimeout(budget);
  await stopService(redis.child);
  redis.client.disconnect();
}

main().then(() => process.exit(0), fatal);
