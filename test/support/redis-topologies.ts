import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { until } from './until.js';

/**
 * Real Redis topologies on loopback, from the redis-server, redis-sentinel and redis-cli binaries
 * (.ci/run installs them; a test fails, never skips, without them): a primary with a replica
 * watched by three sentinels, and a three-primary cluster.
 */
interface Server {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

const started: Server[] = [];

async function startServer(args: string[], binary = 'redis-server'): Promise<Server> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'redis-topology-'));
  const child = spawn(binary, [...args.map((arg) => arg.replaceAll('{port}', String(port)).replaceAll('{dir}', dir))], {
    stdio: 'ignore',
    cwd: dir,
  });
  child.once('error', (error) => {
    throw new Error(`${binary} could not be started (is it installed?): ${error.message}`);
  });
  const server = tracked(port, child);
  await until(() => ping(port), `${binary} on port ${port}`, 10_000);
  return server;
}

/** A process this file stops at the end, or a test kills earlier (stopping it twice is fine). */
function tracked(port: number, child: ChildProcess): Server {
  const server: Server = {
    port,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
  started.push(server);
  return server;
}

async function ping(port: number): Promise<boolean> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Stops every server a test file started. */
export async function stopTopologies(): Promise<void> {
  await Promise.all(started.splice(0).map((server) => server.stop()));
}

const serverArgs = ['--port', '{port}', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '{dir}'];

export interface SentinelTopology {
  readonly name: string;
  readonly sentinels: readonly { host: string; port: number }[];
  primary(): Promise<number>;
  /** Kills the current primary; resolves once the sentinels have promoted the replica. */
  failOver(): Promise<void>;
}

/** A primary, a replica and three sentinels (quorum 2), failing over within about a second. */
export async function startSentinelTopology(name = 'broker'): Promise<SentinelTopology> {
  const primary = await startServer(serverArgs);
  const replica = await startServer([...serverArgs, '--replicaof', '127.0.0.1', String(primary.port)]);
  const sentinels: Server[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'redis-sentinel-'));
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${name} 500`,
        `sentinel failover-timeout ${name} 2000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const child = spawn('redis-sentinel', [config], { stdio: 'ignore', cwd: dir });
    child.once('error', (error) => {
      throw new Error(`redis-sentinel could not be started (is it installed?): ${error.message}`);
    });
    sentinels.push(tracked(port, child));
    await until(() => ping(port), `redis-sentinel on port ${port}`, 10_000);
  }
  const servers = [primary, replica];
  const askPrimary = async (): Promise<number> => {
    const sentinel = new Redis({ port: sentinels[0]?.port ?? 0, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      const [, port] = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string];
      return Number(port);
    } finally {
      sentinel.disconnect();
    }
  };
  // The replica must be in sync before anything relies on it.
  await until(
    async () => {
      const info = await new Redis({ port: replica.port, host: '127.0.0.1' }).info('replication').catch(() => '');
      return info.includes('master_link_status:up');
    },
    'the replica in sync',
    10_000,
  );
  return {
    name,
    sentinels: sentinels.map(({ port }) => ({ host: '127.0.0.1', port })),
    primary: askPrimary,
    async failOver() {
      const before = await askPrimary();
      await servers.find((server) => server.port === before)?.stop();
      await until(async () => (await askPrimary().catch(() => before)) !== before, 'the sentinels promoting the replica', 15_000);
    },
  };
}

export interface ClusterTopology {
  readonly nodes: readonly { host: string; port: number }[];
}

/** Three primaries, no replicas, every slot assigned (`redis-cli --cluster create`). */
export async function startClusterTopology(): Promise<ClusterTopology> {
  const nodes: Server[] = [];
  for (let i = 0; i < 3; i++) {
    nodes.push(
      await startServer([
        ...serverArgs,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        '{dir}/nodes.conf',
        '--cluster-node-timeout',
        '2000',
      ]),
    );
  }
  const created = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map(({ port }) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
    {
      encoding: 'utf8',
    },
  );
  if (created.status !== 0)
    throw new Error(`redis-cli --cluster create failed: ${created.stderr || created.stdout || created.error?.message}`);
  await until(
    async () => {
      const probe = new Redis({ port: nodes[0]?.port ?? 0, host: '127.0.0.1' });
      try {
        return (await probe.cluster('INFO')).includes('cluster_state:ok');
      } finally {
        probe.disconnect();
      }
    },
    'the cluster ready',
    15_000,
  );
  return { nodes: nodes.map(({ port }) => ({ host: '127.0.0.1', port })) };
}
