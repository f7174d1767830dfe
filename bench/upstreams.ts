import { startFakeBenji } from '../sandbox/fake-benji.js';
import { startFakeStarship, type FakeStarshipStats } from '../sandbox/fake-starship.js';

/**
 * The fake upstreams (the ones the tests use) in a process of their own, so that the load they take
 * shares no event loop with the orchestrator or a target. Started by bench/run.ts with an IPC
 * channel; settings come from the environment.
 *
 *   → { type: 'ready', starshipUrl, benjiUrl }
 *   ← { type: 'stats' }   → { type: 'stats', stats, events }
 *
 * It exits when the orchestrator goes away (the channel closes), so it cannot be orphaned.
 */
export interface UpstreamsReady {
  type: 'ready';
  starshipUrl: string;
  benjiUrl: string;
  /** The processes serving the calls, when not this one alone (bench/lean-upstreams.ts runs workers). */
  pids?: number[];
}

/** When the fake Starship issued each login and refresh, so the storm can tell lifetimes apart. */
export interface AuthEvent {
  kind: 'login' | 'refresh';
  at: number;
}

export interface UpstreamsStats {
  type: 'stats';
  stats: FakeStarshipStats;
  events: AuthEvent[];
}

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`bench/upstreams.ts needs ${name}`);
  return value;
}

const send = process.send?.bind(process);
if (send === undefined) throw new Error('bench/upstreams.ts is started by bench/run.ts, with an IPC channel');

const starship = await startFakeStarship({
  username: env('BENCH_STARSHIP_USERNAME'),
  password: env('BENCH_STARSHIP_PASSWORD'),
  accessTtlS: Number(env('BENCH_ACCESS_TTL_S')),
  refreshTtlS: 3600,
  host: '127.0.0.1',
});
const benji = await startFakeBenji({ apiKey: env('BENCH_BENJI_API_KEY'), host: '127.0.0.1' });

// The fakes keep every request they receive, every token they issue and every call cut short, for
// tests to inspect; under load that grows by thousands of objects a second (and the fakes slow down
// as their heap grows), so forget them (tests clear these arrays the same way).
setInterval(() => {
  starship.requests.length = 0;
  starship.abandoned.length = 0;
  benji.requests.length = 0;
  benji.issuedTokens.length = 0;
}, 500);

// The fake counts logins and refreshes but does not time them; a 10 ms poll is precise enough
// against a 5 s refresh period.
const events: AuthEvent[] = [];
const seen = { logins: 0, refreshes: 0 };
setInterval(() => {
  const now = Date.now();
  for (; seen.logins < starship.stats.logins; seen.logins++) events.push({ kind: 'login', at: now });
  for (; seen.refreshes < starship.stats.refreshes; seen.refreshes++) events.push({ kind: 'refresh', at: now });
}, 10);

process.on('message', (message: { type?: string }) => {
  if (message.type === 'stats') send({ type: 'stats', stats: { ...starship.stats }, events } satisfies UpstreamsStats);
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', starshipUrl: starship.url, benjiUrl: benji.url } satisfies UpstreamsReady);
