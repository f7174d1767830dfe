import '../src/require-node.js';
import type { DestinationStream } from 'pino';
import { createStdoutDestination } from '../src/observability/stdout-destination.js';
import { SandboxConfigError, startSandbox } from './sandbox.js';

/**
 * `npm run demo`: the whole product on one machine with no accounts (sandbox/sandbox.ts), for a
 * person at a terminal. The broker runs on 8080 (public) and 8081 (internal, key
 * `demo-internal-key`), the example web app on 8082; sandbox Benji and Starship on loopback (with
 * short-lived Starship tokens so refreshes can be watched in the log). Tokens live in memory, or in
 * Redis when REDIS_URL is set. Ctrl-C stops everything. Every variable it reads is in the README's table.
 */
const apiKeyMode = process.env.STARSHIP_AUTH === 'api-key';
const sandbox = await startSandbox({
  publicPort: Number(process.env.PORT ?? '8080'),
  internalPort: Number(process.env.INTERNAL_PORT ?? '8081'),
  host: process.env.HOST ?? '127.0.0.1',
  sandboxHost: process.env.SANDBOX_HOST ?? '127.0.0.1',
  benjiPort: Number(process.env.SANDBOX_BENJI_PORT ?? '0'),
  benjiPublicUrl: process.env.SANDBOX_BENJI_PUBLIC_URL,
  webPort: Number(process.env.DEMO_WEB_PORT ?? '8082'),
  starshipAuth: apiKeyMode ? 'api-key' : 'session',
  corsOrigins: process.env.CORS_ORIGINS,
  logLevel: process.env.LOG_LEVEL ?? 'info',
  redisUrl: process.env.REDIS_URL,
  redisKeyPrefix: process.env.REDIS_KEY_PREFIX ?? 'bff-demo:',
  tokenEncryptionKey: process.env.TOKEN_ENCRYPTION_KEY,
  logDestination: await demoLogs(),
  onForwarded: (line) => console.log(line),
}).catch((error: unknown) => {
  if (error instanceof SandboxConfigError) console.error(error.message);
  else {
    console.error(
      `The demo could not start: ${(error as Error).message}. Free ports 8080, 8081 and 8082, or set PORT, INTERNAL_PORT and DEMO_WEB_PORT.`,
    );
  }
  process.exit(1);
});

const { publicUrl, internalUrl, webUrl, internalKey } = sandbox;
// A real user token for the curl lines: the one the web app's sign-in would give Alice.
const aliceToken = await sandbox.web.signIn('alice');
console.log(`
Token broker demo — sandbox Benji at ${sandbox.benji.url}, sandbox Starship at ${sandbox.starship.url}
Starship: ${apiKeyMode ? 'API key and secret, every call HMAC-signed' : 'a session (login, refresh)'}; tokens ${sandbox.config.redis === undefined ? 'in memory' : 'in Redis'}. Press Ctrl-C to stop.

Open ${webUrl} for the example web app: sign in as Alice or Bob, connect Benji, unlink.

  # Sign in with the example app's identity provider (alice or bob): a user JWT, good for an hour:
  curl -s -X POST ${webUrl}/sign-in -H 'Content-Type: application/json' -d '{"user":"bob"}'

  # A Benji connect token, as a signed-in frontend gets it (here with Alice's JWT):
  curl -s -X POST ${publicUrl}/v1/benji/connect-token -H 'Authorization: Bearer ${aliceToken}' -H 'Content-Type: application/json' -d '{"mode":"transfer","amount":1000}'

  # Whether Alice's Benji account is linked (Connect Benji in the web app links it; the broker keeps her Benji tokens):
  curl -s ${publicUrl}/v1/benji/link -H 'Authorization: Bearer ${aliceToken}'

  # A Starship call through the internal door, with the broker's ${apiKeyMode ? 'signed API key' : 'managed token'}:
  curl -s ${internalUrl}/v1/starship/api/v1/products -H 'Authorization: Bearer ${internalKey}'

  # ${apiKeyMode ? 'The Starship session (none with an API key: "static")' : 'The Starship session (tokens last 2 minutes; a call in their last minute refreshes them)'}, readiness, metrics:
  curl -s ${internalUrl}/v1/admin/starship/session -H 'Authorization: Bearer ${internalKey}'
  curl -s ${internalUrl}/readyz
  curl -s ${internalUrl}/metrics

  # A Starship webhook, signed as Starship signs it (openssl): the broker verifies and stores it, then
  # forwards it to the sandbox's internal service, whose "forward target" line shows up below:
  ts=$(date +%s); body='{"id":"evt_'$ts'","event_type":"order.delivered","data":{"order_id":7}}'; curl -s -X POST ${publicUrl}/v1/webhooks/starship -H "X-Timestamp: $ts" -H "X-Signature: $(printf '%s' "$ts.$body" | openssl dgst -sha256 -hmac '${sandbox.webhookSecrets.starship}' | sed 's/^.* //')" -d "$body"

  # Received webhooks: stored, pending delivery, dead letters:
  curl -s ${internalUrl}/v1/admin/webhooks -H 'Authorization: Bearer ${internalKey}'
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
  await sandbox.stop();
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
