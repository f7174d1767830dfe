import './require-node.js';
import './gc-settings.js';
import { readFileSync } from 'node:fs';
import { parseCommandLine, usage } from './command-line.js';
import { createBroker } from './compose.js';
import { cutSecretWarnings, envFilesOf, type ConfigWarning } from './config/env-file-check.js';
import { loadConfig } from './config/load-config.js';
import { createStdoutDestination } from './observability/stdout-destination.js';
import { loadTracingSdk } from './observability/tracing.js';
import { readPackageVersion } from './package-version.js';
import { serve } from './server.js';

/**
 * The process: the only file (with the demo, the other entry point) that reads the environment,
 * handles signals and exits. `--check-config` validates the configuration and exits without
 * listening; `--help` and `--version` print and exit; any other argument is refused with exit 2.
 * Early exits set `process.exitCode` and return, so what was printed reaches a pipe in full.
 */
async function main(): Promise<void> {
  const command = parseCommandLine(process.argv.slice(2));
  if (command.kind === 'usage-error') {
    console.error(`${command.message}\n\n${usage}`);
    process.exitCode = 2;
    return;
  }
  if (command.kind === 'help') return void console.log(usage);
  const version = readPackageVersion();
  if (command.kind === 'version') return void console.log(version);

  const warnings = envFileWarnings();
  const loaded = loadConfig(process.env);
  if (!loaded.ok) {
    console.error(`Invalid configuration:\n${loaded.problems.map((problem) => `  - ${problem}`).join('\n')}`);
    printWarnings(warnings);
    process.exitCode = 1;
    return;
  }
  if (command.kind === 'check-config') {
    printWarnings(warnings);
    console.log('Configuration is valid.');
    return;
  }

  const config = loaded.config;
  // Batched, and unable to block the process or its exit when nobody reads stdout.
  const logDestination = createStdoutDestination({ stream: process.stdout, onExit: (write) => process.once('exit', write) });
  // Only when tracing is on: otherwise no OpenTelemetry module is ever loaded.
  const tracingSdk = config.tracing === undefined ? undefined : await loadTracingSdk();
  const broker = createBroker(config, { version, logDestination, tracingSdk });
  const { logger } = broker;
  for (const { variable, message } of warnings) logger.warn({ variable }, message);
  const running = await serve(broker, config.http).catch(async (error: unknown) => {
    logger.fatal({ err: error }, 'listen failed');
    // The one line an operator needs, naming the variable, without a stack trace.
    console.error((error as Error).message);
    await broker.close();
    await flushLogs(logger);
    process.exit(1);
  });
  logger.info({ version, publicPort: running.publicPort, internalPort: running.internalPort, host: config.http.host }, 'broker listening');
  // Lines are written in batches; this one should not wait for the next (supervisors watch for it).
  logger.flush();
  void broker.warmUp();

  const shutdown = async (signal: NodeJS.Signals) => {
    logger.info({ signal, timeoutMs: config.http.shutdownTimeoutMs }, 'shutdown started');
    // At once: if the drain outlasts the orchestrator's grace period, its SIGKILL loses the buffer.
    logger.flush();
    await running.stop();
    logger.info('shutdown complete');
    await flushLogs(logger);
    process.exit(0);
  };
  process.once('SIGTERM', (signal) => void shutdown(signal));
  process.once('SIGINT', (signal) => void shutdown(signal));
}

/**
 * Waits for the log lines to reach stdout, but never for long: a stdout nobody reads (a stalled
 * pipe, a closed terminal) must not keep the process from exiting. Lines still unwritten then are
 * given up; the logger's exit hook writes what the pipe takes without blocking.
 */
function flushLogs(logger: { flush(callback: (error?: Error) => void): void }): Promise<void> {
  return new Promise((resolve) => {
    const giveUp = setTimeout(resolve, 1_000);
    logger.flush(() => {
      clearTimeout(giveUp);
      resolve();
    });
  });
}

/** Secrets that `--env-file` probably cut at a `#` (see config/env-file-check.ts). */
function envFileWarnings(): ConfigWarning[] {
  return envFilesOf(process.execArgv).flatMap((path) => {
    try {
      return cutSecretWarnings(readFileSync(path, 'utf8'), process.env);
    } catch {
      return []; // Node has read it already, or skipped it (--env-file-if-exists).
    }
  });
}

function printWarnings(warnings: readonly ConfigWarning[]): void {
  for (const { message } of warnings) console.error(`Warning: ${message}`);
}

await main();
