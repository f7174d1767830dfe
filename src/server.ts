import { createServer, type Server } from 'node:http';
import type { Broker } from './compose.js';
import type { Config } from './config/load-config.js';
import { refuseConnect } from './http/connect-refusal.js';

export interface RunningBroker {
  readonly publicPort: number;
  readonly internalPort: number;
  /**
   * Graceful stop: readiness turns 503, the listeners stop accepting, in-flight requests (proxied
   * streams included) finish — past `shutdownTimeoutMs` the rest are cut — then Redis and the
   * upstream pools close.
   */
  stop(): Promise<void>;
}

/** Puts both doors of a broker on their ports. Used by main.ts and by the demo. */
export async function serve(broker: Broker, http: Config['http']): Promise<RunningBroker> {
  const publicServer = createServer(broker.publicApp);
  const internalServer = createServer(broker.internalApp);
  internalServer.on('connect', refuseConnect(broker.logger));
  await listen(publicServer, http.publicPort, http.host);
  try {
    await listen(internalServer, http.internalPort, http.host);
  } catch (error) {
    publicServer.close();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  async function stop(): Promise<void> {
    broker.beginShutdown();
    // Past the deadline, cut whatever is still open rather than hang the deployment.
    const deadline = setTimeout(() => {
      broker.logger.warn('shutdown deadline reached; closing open connections');
      publicServer.closeAllConnections();
      internalServer.closeAllConnections();
    }, http.shutdownTimeoutMs);
    await Promise.all([close(publicServer), close(internalServer)]);
    clearTimeout(deadline);
    await broker.close();
  }

  return {
    publicPort: portOf(publicServer),
    internalPort: portOf(internalServer),
    stop: () => (stopping ??= stop()),
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
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

function portOf(server: Server): number {
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('server is not listening on a port');
  return address.port;
}
