import { randomBytes } from 'node:crypto';
import type { DestinationStream } from 'pino';
import { createBroker } from '../src/compose.js';
import { loadConfig, type Config } from '../src/config/load-config.js';
import { readPackageVersion } from '../src/package-version.js';
import { serve } from '../src/server.js';
import { startFakeBenji, type FakeBenji } from './fake-benji.js';
import { startFakeStarship, type FakeStarship } from './fake-starship.js';
import { startForwardTarget, type ForwardTarget } from './forward-target.js';
import { startDemoWebApp, type DemoWebApp } from './web-app.js';

/**
 * The whole product on one machine with no accounts: sandbox Benji and Starship, the example web
 * app with its identity provider, an internal service that receives the forwarded webhooks, and
 * the broker configured for all of them (user JWTs checked
 * against the web app's JWKS, CORS for its origin). `npm run demo` runs it for a person; the e2e
 * tests run it in-process on free ports. It reads no environment: the caller says everything.
 */
export interface SandboxOptions {
  /** The broker's doors; 0 means any free port. Default 0. */
  publicPort?: number;
  internalPort?: number;
  /** Address both doors listen on. Default loopback. */
  host?: string;
  /** Address the fakes and the web app listen on. Default loopback. */
  sandboxHost?: string;
  benjiPort?: number;
  /** Origin of the hosted-connect URL, when a browser reaches the fake Benji at another address. */
  benjiPublicUrl?: string;
  webPort?: number;
  /** `api-key` runs Starship's API-key scheme, every call signed; otherwise a session. */
  starshipAuth?: 'session' | 'api-key';
  /** More browser origins for the public door, as `CORS_ORIGINS` takes them (the web app's are always allowed). */
  corsOrigins?: string;
  logLevel?: string;
  redisUrl?: string;
  redisKeyPrefix?: string;
  tokenEncryptionKey?: string;
  logDestination: DestinationStream;
  /** Each webhook the sandbox's internal service receives from the broker, as a line (the demo prints them). */
  onForwarded?: (line: string) => void;
}

export interface Sandbox {
  /** The broker's doors, as a browser or curl on this machine reaches them. */
  readonly publicUrl: string;
  readonly internalUrl: string;
  /** The example web app. */
  readonly webUrl: string;
  readonly benji: FakeBenji;
  readonly starship: FakeStarship;
  readonly web: DemoWebApp;
  /** The internal service the broker forwards webhooks to. */
  readonly forwardTarget: ForwardTarget;
  /** What signs webhooks sent to the broker, as the upstreams would sign them. */
  readonly webhookSecrets: { readonly benji: string; readonly starship: string };
  readonly config: Config;
  /** The internal door's service key (caller `demo`, also an admin). */
  readonly internalKey: string;
  stop(): Promise<void>;
}

/** Why the sandbox did not start: a configuration the broker refused, one problem per line. */
export class SandboxConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid demo configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

export const demoInternalKey = 'demo-internal-key';
const demoAudience = 'token-broker-demo';

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const sandboxHost = options.sandboxHost ?? '127.0.0.1';
  const apiKeyMode = options.starshipAuth === 'api-key';
  const benjiKey = `sandbox-benji-${randomBytes(8).toString('hex')}`;
  const starshipLogin = { username: 'sandbox-api-user', password: `sandbox-${randomBytes(8).toString('hex')}` };
  const starshipApiKey = {
    key: `sk_test_sandbox-${randomBytes(8).toString('hex')}`,
    secret: `sandbox-secret-${randomBytes(8).toString('hex')}`,
    signingSecret: `sandbox-signing-${randomBytes(8).toString('hex')}`,
  };

  // Whatever started is stopped again, in reverse, when a later step fails.
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    const web = await startDemoWebApp({ audience: demoAudience, host: sandboxHost, port: options.webPort ?? 0 }).catch((error: unknown) => {
      throw new Error(`the web app (DEMO_WEB_PORT): ${(error as Error).message}`, { cause: error });
    });
    closers.push(web.close);
    const benji = await startFakeBenji({ apiKey: benjiKey, host: sandboxHost, port: options.benjiPort ?? 0, frontendOrigins: web.origins });
    closers.push(benji.close);
    // The hosted-connect page is opened by a browser, maybe outside the container the fake runs in:
    // its URL is the one published for it, when one is set.
    benji.setConnectUrl(`${(options.benjiPublicUrl ?? reachable(benji.url)).replace(/\/+$/, '')}/hosted/connect`);
    const starship = await startFakeStarship({
      ...starshipLogin,
      host: sandboxHost,
      accessTtlS: 120,
      refreshTtlS: 3600,
      ...(apiKeyMode && { apiKey: starshipApiKey }),
    });
    closers.push(starship.close);
    const webhookSecrets = {
      benji: `sandbox-benji-salt-${randomBytes(8).toString('hex')}`,
      starship: `sandbox-starship-webhooks-${randomBytes(8).toString('hex')}`,
    };
    const forwardSecret = `whsec_${randomBytes(32).toString('base64')}`;
    const forwardTarget = await startForwardTarget({
      secret: forwardSecret,
      host: sandboxHost,
      ...(options.onForwarded !== undefined && { log: options.onForwarded }),
    });
    closers.push(forwardTarget.close);

    const loaded = loadConfig(
      {
        PORT: String(options.publicPort ?? 0),
        INTERNAL_PORT: String(options.internalPort ?? 0),
        HOST: options.host ?? '127.0.0.1',
        LOG_LEVEL: options.logLevel ?? 'info',
        BENJI_BASE_URL: reachable(benji.url),
        // The fake plays Benji's auth service on the same server.
        BENJI_AUTH_BASE_URL: reachable(benji.url),
        BENJI_API_KEY: benjiKey,
        BENJI_PARTNERSHIP_ID: '49',
        BENJI_DISPLAY_NAME: 'Reward Cookies (sandbox)',
        FRONTEND_AUTH: 'jwt',
        FRONTEND_JWKS_URL: web.jwksUrl,
        FRONTEND_JWT_ISSUER: web.issuer,
        FRONTEND_JWT_AUDIENCE: web.audience,
        CORS_ORIGINS: [...web.origins, ...(options.corsOrigins === undefined ? [] : [options.corsOrigins])].join(','),
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
        BENJI_WEBHOOK_SALT: webhookSecrets.benji,
        STARSHIP_WEBHOOK_SECRET: webhookSecrets.starship,
        WEBHOOK_FORWARD_URL: reachable(forwardTarget.url),
        WEBHOOK_FORWARD_SECRET: forwardSecret,
        INTERNAL_API_KEYS: `demo:${demoInternalKey}`,
        INTERNAL_ADMIN_CALLERS: 'demo',
        REDIS_URL: options.redisUrl,
        REDIS_KEY_PREFIX: options.redisKeyPrefix ?? 'bff-demo:',
        // A sandbox session needs no lasting key: a fresh one per run keeps Redis free of readable tokens.
        TOKEN_ENCRYPTION_KEY: options.tokenEncryptionKey ?? randomBytes(32).toString('base64'),
      },
      // The demo's well-known key is shorter than production allows; only the sandbox accepts it.
      { minServiceKeyLength: demoInternalKey.length },
    );
    if (!loaded.ok) throw new SandboxConfigError(loaded.problems);

    const broker = createBroker(loaded.config, { version: readPackageVersion(), logDestination: options.logDestination });
    const running = await serve(broker, loaded.config.http).catch(async (error: unknown) => {
      await broker.close();
      throw error;
    });
    closers.push(running.stop);
    await broker.warmUp();

    const publicUrl = `http://localhost:${running.publicPort}`;
    web.setBrokerUrl(publicUrl);
    let stopped: Promise<void> | undefined;
    return {
      publicUrl,
      internalUrl: `http://localhost:${running.internalPort}`,
      webUrl: web.url,
      benji,
      starship,
      web,
      forwardTarget,
      webhookSecrets,
      config: loaded.config,
      internalKey: demoInternalKey,
      stop: () => (stopped ??= closeAll()),
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** A server listening on every interface (0.0.0.0) is reached on loopback. */
function reachable(url: string): string {
  return url.replace(/^http:\/\/0\.0\.0\.0:/, 'http://127.0.0.1:');
}
