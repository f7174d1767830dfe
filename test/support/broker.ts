import { createBroker, type Broker, type BrokerOptions, type BrokerOverrides } from '../../src/compose.js';
import { loadConfig, type Config } from '../../src/config/load-config.js';
import { readPackageVersion } from '../../src/package-version.js';
import { captureLogs, type LogCapture } from './log-capture.js';
import { jwtSecret } from './jwt.js';
import { secret } from './secrets.js';

export const benjiApiKey = secret('benji-test-api-key-do-not-leak-7f3a9c');
export const partnershipId = '49';
export const starshipUsername = secret('broker-api-user');
export const starshipPassword = secret('starship-password-do-not-leak-91c2');
export const serviceKeys = { orders: secret('orders-service-key-0123456789abcdef'), ops: secret('ops-admin-key-0123456789abcdef-xyz') };

/** What every test broker needs to start; tests override or add what they exercise. */
export const baseEnv: Record<string, string> = {
  BENJI_API_KEY: benjiApiKey,
  BENJI_PARTNERSHIP_ID: partnershipId,
  FRONTEND_JWT_SECRET: jwtSecret,
  STARSHIP_USERNAME: starshipUsername,
  STARSHIP_PASSWORD: starshipPassword,
  // Nothing listens on port 9: tests that reach an upstream point its URL at a fake. Never the
  // real hosts: tests talk to loopback only.
  BENJI_BASE_URL: 'http://127.0.0.1:9',
  STARSHIP_BASE_URL: 'http://127.0.0.1:9',
  INTERNAL_API_KEYS: `orders:${serviceKeys.orders},ops:${serviceKeys.ops}`,
  INTERNAL_ADMIN_CALLERS: 'ops',
  // Only used when a test sets REDIS_URL; 32 bytes, base64.
  TOKEN_ENCRYPTION_KEY: secret('dGVzdC1vbmx5LWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU='),
};

export interface TestBroker {
  broker: Broker;
  /** The parsed config, e.g. for `serve(broker, config.http)` when a test needs real listeners. */
  config: Config;
  logs: LogCapture;
  close(): Promise<void>;
}

/**
 * Builds the real broker from an environment, as main.ts would, with logs captured in memory.
 * The env is parsed by the real config loader, so tests also prove the variables work; the logger
 * is the one the broker builds for itself (secret scrubbing included), writing to the capture.
 */
export function buildBroker(
  env: Record<string, string | undefined>,
  overrides: BrokerOverrides & Pick<BrokerOptions, 'tracingSdk'> = {},
): TestBroker {
  const loaded = loadConfig({ ...baseEnv, LOG_LEVEL: 'debug', ...env });
  if (!loaded.ok) throw new Error(`test config is invalid: ${loaded.problems.join('; ')}`);
  const logs = captureLogs();
  const broker = createBroker(loaded.config, { ...overrides, version: readPackageVersion(), logDestination: logs.stream });
  return { broker, config: loaded.config, logs, close: () => broker.close() };
}
