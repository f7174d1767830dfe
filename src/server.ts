import { createServer, type Server, type ServerOptions } from 'node:http';
import type { Broker } from './compose.js';
import type { Config } from './config/load-config.js';

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

/**
 * Puts both doors of a broker on their ports. Used by main.ts and by the demo. A door that cannot
 * listen rejects with a message that starts with the variable to change (`PORT: …`).
 */
export async function serve(broker: Broker, http: Config['http']): Promise<RunningBroker> {
  const publicServer = createDoorServer(broker.publicApp, http, http.publicMaxConnections);
  const internalServer = createDoorServer(broker.internalApp, http, http.internalMaxConnections);
  internalServer.on('connect', broker.refuseConnect);
  await listen(publicServer, http.publicPort, http.host, 'PORT');
  try {
    await listen(internalServer, http.internalPort, http.host, 'INTERNAL_PORT');
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

/**
 * Slow clients cannot hold a door: the headers must arrive within `headersTimeoutMs` and the whole
 * request within `requestTimeoutMs` (a 408, then the connection closes; a slow answer or a streamed
 * download is not limited), an idle keep-alive connection closes after `keepAliveTimeoutMs`, and
 * past `maxConnections` new connections are closed at once while open ones are still served.
 */
function createDoorServer(app: Broker['publicApp'], http: Config['http'], maxConnections: number): Server {
  const options: ServerOptions = {
    headersTimeout: http.headersTimeoutMs,
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // Node enforces the two timeouts above only when it sweeps its connections (every 30 s by
    // default, which would let a 10 s limit stretch to 40 s): sweep once a second, or ten times per
    // timeout when they are shorter.
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(Math.min(http.headersTimeoutMs, http.requestTimeoutMs) / 10))),
  };
  const server = createServer(options, app);
  server.maxConnections = maxConnections;
  return server;
}

function listen(server: Server, port: number, host: string, portVariable: 'PORT' | 'INTERNAL_PORT'): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => {
      const code = error.code ?? 'error';
      // An address this machine does not have, or cannot resolve, is the host's fault; the rest is the port's.
      const variable = code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'HOST' : portVariable;
      // The message names the variable to change, as a config problem would (a port or address is no secret).
      reject(new Error(`${variable}: cannot listen on ${host}:${port} (${code})`, { cause: error }));
    };
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
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
