import { createServer, type Server } from 'node:http';
import { createBroker } from './compose.js';
import { loadConfig, type Config } from './config/load-config.js';

/** The process: the only file that reads the environment, listens, handles signals and exits. */
const loaded = loadConfig(process.env);
if (!loaded.ok) {
  console.error(`Invalid configuration:\n${loaded.problems.map((problem) => `  - ${problem}`).join('\n')}`);
  process.exitCode = 1;
} else {
  await run(loaded.config);
}

async function run(config: Config): Promise<void> {
  const broker = createBroker(config);
  const { logger } = broker;
  const publicServer = createServer(broker.publicApp);
  const internalServer = createServer(broker.internalApp);

  try {
    await listen(publicServer, config.http.publicPort, config.http.host);
    await listen(internalServer, config.http.internalPort, config.http.host);
  } catch (error) {
    logger.fatal({ err: error }, 'listen failed');
    await broker.close();
    process.exit(1);
  }
  logger.info({ publicPort: port(publicServer), internalPort: port(internalServer), host: config.http.host }, 'broker listening');
  void broker.warmUp();

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, timeoutMs: config.http.shutdownTimeoutMs }, 'shutdown started');
    broker.beginShutdown();
    // Past the deadline, cut whatever is still open rather than hang the deployment.
    const deadline = setTimeout(() => {
      logger.warn('shutdown deadline reached; closing open connections');
      publicServer.closeAllConnections();
      internalServer.closeAllConnections();
    }, config.http.shutdownTimeoutMs);
    await Promise.all([close(publicServer), close(internalServer)]);
    clearTimeout(deadline);
    await broker.close();
    logger.info('shutdown complete');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void shutdown(signal));
  process.on('SIGINT', (signal) => void shutdown(signal));
}

function listen(server: Server, portNumber: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(portNumber, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Stops accepting; resolves once in-flight requests have finished. A keep-alive socket becomes idle
 * only when its response ends, so idle sockets are swept until the server is closed instead of
 * waiting out their keep-alive timeout.
 */
function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}

function port(server: Server): number | undefined {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : undefined;
}
