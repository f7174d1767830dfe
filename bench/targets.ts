import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import ts from 'typescript';
import { request } from 'undici';
import { freePort, root, startService, statusOf, waitFor, type Call } from './support.js';
import type { UpstreamsReady, UpstreamsStats } from './upstreams.js';

/**
 * What the bench scripts measure, started as processes of their own: the fake upstreams, a private
 * redis-server, brokers (`node dist/main.js`, what `npm start` execs and the image runs) and the
 * baselines (compiled to JavaScript and run by plain `node`, as the broker is). Every child is
 * tracked by support.ts and killed when the script ends, however it ends.
 */
export const PROXY_PATH = '/v1/starship/api/v1/products';
export const CONNECT_PATH = '/v1/benji/connect-token';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** Fresh secrets per run; nothing here is real. */
export const secrets = {
  starshipUsername: 'bench-api-user',
  starshipPassword: hex(16),
  benjiApiKey: hex(16),
  serviceKey: hex(16),
  jwtSecret: hex(24),
  encryptionKey: randomBytes(32).toString('base64'),
  starshipApiKey: `sk_test_${hex(16)}`,
  starshipApiSecret: hex(16),
  starshipSigningSecret: hex(16),
  starshipWebhookSecret: hex(16),
  webhookForwardSecret: `whsec_${randomBytes(32).toString('base64')}`,
};

/** A broker's environment changes for STARSHIP_AUTH=api-key with signing (the session's variables removed). */
export const apiKeyEnv = {
  STARSHIP_AUTH: 'api-key',
  STARSHIP_USERNAME: undefined,
  STARSHIP_PASSWORD: undefined,
  STARSHIP_API_KEY: secrets.starshipApiKey,
  STARSHIP_API_SECRET: secrets.starshipApiSecret,
  STARSHIP_SIGNING_SECRET: secrets.starshipSigningSecret,
};
/** Children get a clean environment: nothing from the shell (a REDIS_URL, say) leaks into a target. */
export const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production' };

export interface Upstreams {
  child: ChildProcess;
  starshipUrl: string;
  benjiUrl: string;
  /** The processes that serve the calls: their CPU is the fakes'. */
  pids: number[];
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

/**
 * The fake upstreams in a process of their own: `lean` (bench/lean-upstreams.ts) for the throughput
 * runs, the sandbox fakes (bench/upstreams.ts) for the refresh storm, which counts what they see.
 */
export async function startUpstreams(name: string, accessTtlS: number, kind: 'lean' | 'sandbox' = 'sandbox'): Promise<Upstreams> {
  const script = kind === 'lean' ? 'bench/lean-upstreams.ts' : 'bench/upstreams.ts';
  const child = startService(name, process.execPath, ['--import', 'tsx', script], {
    env: {
      ...baseEnv,
      BENCH_STARSHIP_USERNAME: secrets.starshipUsername,
      BENCH_STARSHIP_PASSWORD: secrets.starshipPassword,
      BENCH_BENJI_API_KEY: secrets.benjiApiKey,
      BENCH_STARSHIP_API_KEY: secrets.starshipApiKey,
      BENCH_STARSHIP_API_SECRET: secrets.starshipApiSecret,
      BENCH_ACCESS_TTL_S: String(accessTtlS),
      // How many processes serve the lean fakes (bench/lean-upstreams.ts), when set in the shell.
      ...(process.env.BENCH_UPSTREAM_WORKERS !== undefined && { BENCH_UPSTREAM_WORKERS: process.env.BENCH_UPSTREAM_WORKERS }),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await message<UpstreamsReady>(child, 'ready', 20_000);
  return {
    child,
    starshipUrl: ready.starshipUrl,
    benjiUrl: ready.benjiUrl,
    pids: ready.pids ?? [child.pid ?? 0],
    stats: () => {
      const answer = message<UpstreamsStats>(child, 'stats', 5_000);
      child.send({ type: 'stats' });
      return answer;
    },
  };
}

export interface PrivateRedis {
  child: ChildProcess;
  url: string;
  /** INFO stats total_commands_processed. */
  commands(): Promise<number>;
  client: Redis;
}

/** A redis-server of the bench's own, so that its command count is the broker's alone. */
export async function startRedis(): Promise<PrivateRedis> {
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

/**
 * What a target wrote to its stdout. Every target's stdout is a pipe that the bench reads and throws
 * away, as a container runtime keeps reading a container's: the broker's log lines cost it what
 * they cost in production (a pipe, not /dev/null, which the kernel answers without a reader).
 */
export interface Output {
  bytes: number;
  lines: number;
}

function drain(child: ChildProcess): Output {
  const output: Output = { bytes: 0, lines: 0 };
  child.stdout?.on('data', (chunk: Buffer) => {
    output.bytes += chunk.length;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) output.lines++;
  });
  return output;
}

export interface Broker {
  name: string;
  child: ChildProcess;
  output: Output;
  publicUrl: string;
  internalUrl: string;
  /** The prefix of its Redis keys, hash tag included: its webhook stream is `${keyPrefix}webhooks`. */
  keyPrefix: string;
}

export const serviceAuth = { authorization: `Bearer ${secrets.serviceKey}` };

/**
 * Connect tokens per user a minute, the broker's and the hand-written route's: the limiter runs (a
 * Redis round trip per call) but never refuses: the schema's maximum, 1,000,000 a minute, is far
 * above what one user can get through here.
 */
const CONNECT_TOKEN_RATE_LIMIT = '1000000';

export interface BrokerOptions {
  keyPrefix: string;
  refreshBeforeS: number;
  /**
   * Changes to the broker's environment, for pricing a product option (bench/options.ts): a value
   * replaces the variable, `undefined` removes it. NODE_OPTIONS here replaces the image's.
   */
  env?: Record<string, string | undefined>;
  /** The built entry point to run; dist/main.js of this checkout when absent (see buildAt). */
  entry?: string;
}

/**
 * The broker as built from another commit (`BENCH_BASE_REF`), for side-by-side comparison: its
 * src/ is exported with `git archive` and compiled with this checkout's TypeScript into
 * node_modules/.bench-base/<commit>/, where it finds this checkout's dependencies. Built once per commit.
 */
export async function buildAt(ref: string): Promise<{ commit: string; entry: string }> {
  const run = promisify(execFile);
  const commit = (await run('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: root })).stdout.trim();
  const dir = `${root}/node_modules/.bench-base/${commit}`;
  const entry = `${dir}/dist/main.js`;
  if (!existsSync(entry)) {
    mkdirSync(dir, { recursive: true });
    await run('bash', ['-c', `git archive ${commit} src tsconfig.json tsconfig.build.json | tar -x -C '${dir}'`], { cwd: root });
    await run(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', `${dir}/tsconfig.build.json`], { cwd: dir });
  }
  return { commit, entry };
}

export async function startBroker(name: string, upstreams: Upstreams, redisUrl: string, options: BrokerOptions): Promise<Broker> {
  const [port, internalPort] = [await freePort(), await freePort()];
  // Given as the hash tag the broker would make of it (`bench-1:` → `{bench-1:}`, see load-config.ts),
  // so that what the bench reads in Redis (the webhook stream) is named as the broker names it.
  const keyPrefix = /\{[^{}]+\}/.test(options.keyPrefix) ? options.keyPrefix : `{${options.keyPrefix}}`;
  const env = withChanges(
    {
      ...baseEnv,
      HOST: '127.0.0.1',
      PORT: String(port),
      INTERNAL_PORT: String(internalPort),
      LOG_LEVEL: 'info',
      BENJI_BASE_URL: upstreams.benjiUrl,
      BENJI_API_KEY: secrets.benjiApiKey,
      BENJI_PARTNERSHIP_ID: '49',
      FRONTEND_JWT_SECRET: secrets.jwtSecret,
      CONNECT_TOKEN_RATE_LIMIT,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: keyPrefix,
      TOKEN_ENCRYPTION_KEY: secrets.encryptionKey,
      STARSHIP_BASE_URL: upstreams.starshipUrl,
      STARSHIP_USERNAME: secrets.starshipUsername,
      STARSHIP_PASSWORD: secrets.starshipPassword,
      STARSHIP_REFRESH_BEFORE_S: String(options.refreshBeforeS),
      INTERNAL_API_KEYS: `bench:${secrets.serviceKey}`,
      // Run as the image runs it: with the NODE_OPTIONS (and the rest) the Dockerfile sets.
      ...imageEnv(),
    },
    options.env,
  );
  // The broker's log lines are read and thrown away (production logging is part of its cost), so a
  // bad configuration would die silently: validate it first, where its complaint can be shown.
  const entry = options.entry ?? 'dist/main.js';
  await promisify(execFile)(process.execPath, [entry, '--check-config'], { cwd: root, env, timeout: 15_000 }).catch(
    (error: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`${name}: configuration refused: ${error.stderr || error.stdout || error.message}`);
    },
  );
  // `npm start` execs exactly this; started directly, no npm process sits between the bench and its pid.
  const child = startService(name, process.execPath, [entry], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const broker: Broker = {
    name,
    child,
    output: drain(child),
    publicUrl: `http://127.0.0.1:${port}`,
    internalUrl: `http://127.0.0.1:${internalPort}`,
    keyPrefix,
  };
  await waitFor(`${name} /healthz`, async () => {
    const statuses = await Promise.all([
      statusOf({ url: `${broker.publicUrl}/healthz` }),
      statusOf({ url: `${broker.internalUrl}/healthz` }),
    ]);
    return statuses.every((status) => status === 200);
  });
  requirePreloaded(name, child.pid ?? 0, env.LD_PRELOAD);
  // One proxied call: the broker has its Starship session before anything is measured.
  await waitFor(`${name} proxy`, async () => (await statusOf({ url: broker.internalUrl + PROXY_PATH, headers: serviceAuth })) === 200);
  return broker;
}

/**
 * ld.so ignores a preload it cannot find, with one line on stderr, and the bench would then measure
 * glibc's malloc as the image's allocator: a broker that runs without the library the image
 * preloads (LD_PRELOAD in the Dockerfile) stops the bench instead.
 */
function requirePreloaded(name: string, pid: number, preload: string | undefined): void {
  if (preload === undefined) return;
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  for (const library of preload.split(/[\s:]+/).filter((entry) => entry !== '')) {
    if (!maps.includes(`/${library.slice(library.lastIndexOf('/') + 1)}`)) {
      throw new Error(
        `${name} runs without ${library}, which the image preloads (LD_PRELOAD in the Dockerfile): apt-get install libmimalloc2.0`,
      );
    }
  }
}

function withChanges(env: Record<string, string>, changes: Record<string, string | undefined> = {}): Record<string, string> {
  const changed = { ...env };
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete changed[name];
    else changed[name] = value;
  }
  return changed;
}

/**
 * The runtime settings of the Dockerfile's final stage (its `ENV NAME=value` lines, but NODE_ENV,
 * which every target gets), so the bench measures the shipped runtime: the heap flags in
 * NODE_OPTIONS and the allocator in LD_PRELOAD.
 */
export function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(`${root}/Dockerfile`, 'utf8');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const [, name, value] of finalStage.matchAll(/^ENV ([A-Z_]+)=(.+)$/gm)) {
    if (name !== undefined && value !== undefined && name !== 'NODE_ENV') env[name] = value.trim().replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/** The image's NODE_OPTIONS (see imageEnv). */
export const imageNodeOptions = (): string => imageEnv().NODE_OPTIONS ?? '';

/** A broker's environment changes for running as `npm start` runs it outside the image: none of the image's settings. */
export const withoutImageEnv = (): Record<string, undefined> =>
  Object.fromEntries(Object.keys(imageEnv()).map((name) => [name, undefined]));

/**
 * The baselines compiled to JavaScript (types erased, nothing bundled), so that they run under plain
 * `node` with no flags, like the broker: under tsx a loader thread and its caches would count in
 * their CPU and memory. Written next to the packages they import, so that those resolve.
 */
const baselinesDir = `${root}node_modules/.cache/token-broker-bench/baselines`;
let compiled = false;

function compileBaselines(): void {
  if (compiled) return;
  mkdirSync(baselinesDir, { recursive: true });
  // node_modules/package.json does not exist, so without this one Node would take the files for CommonJS.
  writeFileSync(`${baselinesDir}/../package.json`, '{ "type": "module", "private": true }\n');
  const source = `${root}bench/baselines`;
  for (const file of readdirSync(source).filter((name) => name.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(`${source}/${file}`, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: true },
      fileName: file,
    });
    writeFileSync(`${baselinesDir}/${file.replace(/\.ts$/, '.js')}`, outputText);
  }
  compiled = true;
}

export interface Baseline {
  child: ChildProcess;
  output: Output;
  url: string;
}

export async function startBaseline(
  name: string,
  file: string,
  env: Record<string, string>,
  ready: (url: string) => Call,
  nodeArgs: string[] = [],
): Promise<Baseline> {
  compileBaselines();
  const port = await freePort();
  const child = startService(name, process.execPath, [...nodeArgs, `${baselinesDir}/${file.replace(/\.ts$/, '.js')}`], {
    env: { ...baseEnv, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const baseline = { child, output: drain(child), url: `http://127.0.0.1:${port}` };
  await waitFor(name, async () => (await statusOf(ready(baseline.url))) === 200);
  return baseline;
}

/** A signed-in user's token for the public door (one user: the verified-token cache holds it). */
export function userJwt(): Promise<string> {
  return new SignJWT({ sub: 'bench-user' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secrets.jwtSecret));
}

export const connectCall = (url: string, jwt: string): Call => ({
  url: url + CONNECT_PATH,
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
  body: '{"mode":"connect"}',
});

export const proxyCall = (url: string): Call => ({ url: url + PROXY_PATH, headers: serviceAuth });

/** The direct-Benji baseline's settings. */
export const directBenjiEnv = (upstreams: Upstreams) => ({
  BENJI_URL: upstreams.benjiUrl,
  BENJI_API_KEY: secrets.benjiApiKey,
  BENJI_PARTNERSHIP_ID: '49',
});

/**
 * The hand-written route's settings: those of the broker's bench config (startBroker) for what
 * both do — the same fake Benji, key and partnership, the same user-JWT secret, the same per-user
 * limit on the same Redis (its keys under a prefix of its own).
 */
export const handwrittenConnectEnv = (upstreams: Upstreams, redisUrl: string) => ({
  ...directBenjiEnv(upstreams),
  JWT_SECRET: secrets.jwtSecret,
  RATE_LIMIT_PER_MINUTE: CONNECT_TOKEN_RATE_LIMIT,
  REDIS_URL: redisUrl,
});

/**
 * The calls the targets make to the fake upstreams, made directly: what wrk and the fakes reach
 * with no target between them, the ceiling of every measurement (bench/run.ts checks it).
 */
export async function upstreamCalls(upstreams: Upstreams): Promise<{ starship: Call; benji: Call }> {
  const login = await request(`${upstreams.starshipUrl}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: secrets.starshipUsername, password: secrets.starshipPassword }),
  });
  const body = (await login.body.json()) as { access_token?: unknown };
  if (login.statusCode !== 200 || typeof body.access_token !== 'string') throw new Error(`fake Starship login failed: ${login.statusCode}`);
  return {
    // What the proxy forwards PROXY_PATH to.
    starship: { url: `${upstreams.starshipUrl}/api/v1/products`, headers: { authorization: `Bearer ${body.access_token}` } },
    // What the broker and the direct-Benji baseline send for {"mode":"connect"}.
    benji: {
      url: `${upstreams.benjiUrl}/auth/connect`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': secrets.benjiApiKey },
      body: JSON.stringify({ partnership_id: '49', mode: 1 }),
    },
  };
}

/**
 * Where an idle delivery worker would forward to (WEBHOOK_FORWARD_URL): a server in the bench's own
 * process that answers 204. No webhook is sent to that broker, so it should receive nothing; it
 * counts what it gets, and the report says so.
 */
export async function startForwardTarget(): Promise<{ url: string; received(): number; close(): void }> {
  let received = 0;
  const server = createServer((req, res) => {
    received++;
    req.resume();
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/webhooks`, received: () => received, close: () => server.close() };
}
