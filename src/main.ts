import { createBroker } from './compose.js';
import { loadConfig } from './config/load-config.js';
import { serve } from './server.js';

/**
 * The process: the only file (with the demo, the other entry point) that reads the environment,
 * handles signals and exits. `--check-config` validates the configuration and exits without listening.
 */
const loaded = loadConfig(process.env);
if (!loaded.ok) {
  console.error(`Invalid configuration:\n${loaded.problems.map((problem) => `  - ${problem}`).join('\n')}`);
  process.exit(1);
}
if (process.argv.includes('--check-config')) {
  console.log('Configuration is valid.');
  process.exit(0);
}

const config = loaded.config;
const broker = createBroker(config);
const { logger } = broker;
const running = await serve(broker, config.http).catch(async (error: unknown) => {
  logger.fatal({ err: error }, 'listen failed');
  logger.flush();
  await broker.close();
  process.exit(1);
});
logger.info({ publicPort: running.publicPort, internalPort: running.internalPort, host: config.http.host }, 'broker listening');
// Lines are written in batches; this one should not wait for the next (supervisors watch for it).
logger.flush();
void broker.warmUp();

const shutdown = async (signal: NodeJS.Signals) => {
  logger.info({ signal, timeoutMs: config.http.shutdownTimeoutMs }, 'shutdown started');
  // At once: if the drain outlasts the orchestrator's grace period, its SIGKILL loses the buffer.
  logger.flush();
  await running.stop();
  logger.info('shutdown complete');
  process.exit(0);
};
process.once('SIGTERM', (signal) => void shutdown(signal));
process.once('SIGINT', (signal) => void shutdown(signal));
