import { createBroker, type Broker } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/observability/logger.js';
import { captureLogs, type LogCapture } from './log-capture.js';
import { jwtSecret } from './jwt.js';

export const benjiApiKey = 'benji-test-api-key-do-not-leak-7f3a9c';
export const partnershipId = '49';

export interface TestBroker {
  broker: Broker;
  logs: LogCapture;
  close(): Promise<void>;
}

/**
 * Builds the real broker from an environment, as main.ts would, with logs captured in memory.
 * The env is parsed by the real config loader, so tests also prove the variables work.
 */
export function buildBroker(env: Record<string, string | undefined>): TestBroker {
  const loaded = loadConfig({
    BENJI_API_KEY: benjiApiKey,
    BENJI_PARTNERSHIP_ID: partnershipId,
    FRONTEND_JWT_SECRET: jwtSecret,
    LOG_LEVEL: 'debug',
    ...env,
  });
  if (!loaded.ok) throw new Error(`test config is invalid: ${loaded.problems.join('; ')}`);
  const logs = captureLogs();
  const broker = createBroker(loaded.config, { logger: createLogger({ level: loaded.config.logLevel, destination: logs.stream }) });
  return { broker, logs, close: () => broker.close() };
}
