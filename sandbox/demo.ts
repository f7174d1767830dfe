import '../src/require-node.js';
import { randomBytes } from 'node:crypto';
import type { DestinationStream } from 'pino';
import { createBroker } from '../src/compose.js';
import { loadConfig } from '../src/config/load-config.js';
import { createStdoutDestination } from '../src/observability/stdout-destination.js';
import { readPackageVersion } from '../src/package-version.js';
import { startFakeBenji } from './fake-benji.js';
import { startFakeStarship } from './fake-starship.js';
import { serve } from '../src/server.js';

/**
 * `npm run demo`: the whole product on one machine with no accounts. Sandbox Benji and Starship
 * run on loopback (the same fakes the tests use, with short-lived Starship tokens so refreshes can
 * be watched in the log), and the broker runs on 8080 (public) and 8081 (internal) with anonymous
 * frontends and the internal key `demo-internal-key`. Tokens live in memory, or in Redis when
 * REDIS_URL is set. Ctrl-C stops everything. Every variable it reads is in the README's table.
 */
const demoKey = 'demo-internal-key';
const sandboxHost = process.env.SANDBOX_HOST ?? '127.0.0.1';
const benjiKey = `sandbox-benji-${randomBytes(8).toString('hex')}`;
const starshipLogin = { username: 'sandbox-api-user', password: `sandbox-${randomBytes(8).toString('hex')}` };
// STARSHIP_AUTH=api-key runs Starship's API-key scheme instead, with signing on.
const apiKeyMode = process.env.STARSHIP_AUTH === 'api-key';
const starshipApiKey = {
  key: `sk_test_sandbox-${randomBytes(8).toString('hex')}`,
  secret: `sandbox-secret-${randomBytes(8).toString('hex')}`,
  signingSecret: `sandbox-signing-${randomBytes(8).toString('hex')}`,
};

const benji = await startFakeBenji({ apiKey: benjiKey, host: sandboxHost, port: Number(process.env.SANDBOX_BENJI_PORT ?? '0') });
// The hosted-connect page is opened by a browser, maybe outside the container the fake runs in: its
// URL is the one published for it, when one is set.
benji.setConnectUrl(`${(process.env.SANDBOX_BENJI_PUBLIC_URL ?? reachable(benji.url)).replace(/\/+$/, '')}/hosted/connect`);
const starship = await startFakeStarship({
  ...starshipLogin,
  host: sandboxHost,
  accessTtlS: 120,
  refreshTtlS: 3600,
  ...(apiKeyMode && { apiKey: starshipApiKey }),
});

const loaded = loadConfig(
  {
    PORT: process.env.PORT ?? '8080',
    INTERNAL_PORT: process.env.INTERNAL_PORT ?? '8081',
    HOST: process.env.HOST ?? '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    BENJI_BASE_URL: reachable(benji.url),
    BENJI_API_KEY: benjiKey,
    BENJI_PARTNERSHIP_ID: '49',
    BENJI_DISPLAY_NAME: 'Reward Cookies (sandbox)',
    FRONTEND_AUTH: 'none',
    CORS_ORIGINS: process.env.CORS_ORIGINS,
    STARSHIP_BASE_URL: reachable(starship.url),
    ...(apiKeyMode
      ? {
          STARSHIP_AUTH: 'api-key',
          STARSHIP_API_KEY: starshipApiKey.key,
          STARSHIP_API_SECRET: starshipApiKey.secret,
          STARSHIP_SIGNING_SECRET: starshipApiKey.signingSecret,
        }
      : {
          STARSHIP_USERNAME: starshipLogin.username,
          STARSHIP_PASSWORD: starshipLogin.password,
          // Two-minute tokens, renewed a minute early: a refresh shows in the log every minute.
          STARSHIP_REFRESH_BEFORE_S: '60',
        }),
    INTERNAL_API_KEYS: `demo:${demoKey}`,
    INTERNAL_ADMIN_CALLERS: 'demo',
    REDIS_URL: process.env.REDIS_URL,
    REDIS_KEY_PREFIX: process.env.REDIS_KEY_PREFIX ?? 'bff-demo:',
    // A sandbox session needs no lasting key: a fresh one per run keeps Redis free of readable tokens.
    TOKEN_ENCRYPTION_KEY: process.env.TOKEN_ENCRYPTION_KEY ?? randomBytes(32).toString('base64'),
  },
  // The demo's well-known key is shorter than production allows; only this entry point accepts it.
  { minServiceKeyLength: demoKey.length },
);
if (!loaded.ok) {
  console.error(`Invalid demo configuration:\n${loaded.problems.map((problem) => `  - ${problem}`).join('\n')}`);
  await Promise.all([benji.close(), starship.close()]);
  process.exit(1);
}

const broker = createBroker(loaded.config, { version: readPackageVersion(), logDestination: await demoLogs() });
const running = await serve(broker, loaded.config.http).catch(async (error: unknown) => {
  console.error(`The demo could not listen: ${(error as Error).message}. Free ports 8080/8081, or set PORT and INTERNAL_PORT.`);
  await Promise.all([broker.close(), benji.close(), starship.close()]);
  process.exit(1);
});
await broker.warmUp();

const publicUrl = `http://localhost:${running.publicPort}`;
const internalUrl = `http://localhost:${running.internalPort}`;
console.log(`
Token broker demo — sandbox Benji at ${benji.url}, sandbox Starship at ${starship.url}
Starship: ${apiKeyMode ? 'API key and secret, every call HMAC-signed' : 'a session (login, refresh)'}; tokens ${loaded.config.redis === undefined ? 'in memory' : 'in Redis'}. Press Ctrl-C to stop.

  # A Benji connect token, as a signed-in frontend gets it (auth is off in the demo):
  curl -s -X POST ${publicUrl}/v1/benji/connect-token -H 'Content-Type: application/json' -d '{"mode":"transfer","amount":1000}'

  # A Starship call through the internal door, with the broker's ${apiKeyMode ? 'signed API key' : 'managed token'}:
  curl -s ${internalUrl}/v1/starship/api/v1/products -H 'Authorization: Bearer ${demoKey}'

  # ${apiKeyMode ? 'The Starship session (none with an API key: "static")' : 'The Starship session (tokens last 2 minutes; a call in their last minute refreshes them)'}, readiness, metrics:
  curl -s ${internalUrl}/v1/admin/starship/session -H 'Authorization: Bearer ${demoKey}'
  curl -s ${internalUrl}/readyz
  curl -s ${internalUrl}/metrics
`);

/**
 * Every signal means "stop", once: Ctrl-C under `npm run demo` arrives twice (from the terminal and
 * again from npm, which forwards it), and the stop is bounded by the broker's shutdown deadline.
 */
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nStopping the demo…');
  await running.stop();
  await Promise.all([benji.close(), starship.close()]);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

/** Pretty lines for a person at a terminal; JSON lines otherwise, as the broker writes them. */
async function demoLogs(): Promise<DestinationStream> {
  const json = () => createStdoutDestination({ stream: process.stdout, onExit: (write) => process.once('exit', write) });
  if (process.stdout.isTTY !== true) return json();
  try {
    // A dev dependency: absent from the image, where the demo's logs stay JSON.
    const { build } = await import('pino-pretty');
    return build({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,service', destination: process.stdout });
  } catch {
    return json();
  }
}

/** A fake listening on every interface (SANDBOX_HOST=0.0.0.0) is reached on loopback. */
function reachable(url: string): string {
  return url.replace(/^http:\/\/0\.0\.0\.0:/, 'http://127.0.0.1:');
}
