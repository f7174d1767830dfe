import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { cpuSeconds, killAll, root, stopService } from '../../bench/support.js';
import { imageEnv, startUpstreams, upstreamCalls, type Upstreams } from '../../bench/targets.js';

/**
 * The bench's apparatus: the lean fakes are served by cluster workers, and a Starship token one
 * worker issued must be accepted by every other (else the bench would see 401s on some
 * connections); the image settings the bench runs the broker with are the Dockerfile's own.
 */
describe('bench lean upstreams', () => {
  let upstreams: Upstreams | undefined;
  afterAll(async () => {
    if (upstreams !== undefined) await stopService(upstreams.child);
    killAll();
  });

  it('serve from 2 worker processes that accept each other’s tokens, and add their counts up', async () => {
    upstreams = await startUpstreams('lean upstreams', 900, 'lean');
    expect(upstreams.pids).toHaveLength(2);
    expect(new Set(upstreams.pids).size).toBe(2);
    const { starship, benji } = await upstreamCalls(upstreams);
    // Many fresh connections: the primary hands them out in turn, so both workers serve some.
    const before = upstreams.pids.map(cpuSeconds);
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const dispatcher = new Agent({ pipelining: 0 });
      const reply = await request(starship.url, { headers: starship.headers, dispatcher });
      await reply.body.dump();
      statuses.push(reply.statusCode);
      await dispatcher.close();
    }
    expect(statuses.every((status) => status === 200)).toBe(true);
    const after = upstreams.pids.map(cpuSeconds);
    expect(after.every((cpu, i) => cpu.total > (before[i]?.total ?? Number.POSITIVE_INFINITY))).toBe(true);
    const connect = await request(benji.url, { method: benji.method as 'POST', headers: benji.headers, body: benji.body });
    expect(connect.statusCode).toBe(200);
    await connect.body.dump();
    const forged = await request(starship.url, { headers: { authorization: 'Bearer at_not_issued' } });
    expect(forged.statusCode).toBe(401);
    await forged.body.dump();
    const { stats } = await upstreams.stats();
    expect(stats.logins).toBe(1);
    expect(stats.apiCalls).toBe(41);
  }, 30_000);

  it('runs the broker with every ENV of the Dockerfile’s final stage but NODE_ENV, quotes removed', () => {
    const dockerfile = readFileSync(`${root}/Dockerfile`, 'utf8');
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const env = imageEnv();
    expect(env.NODE_ENV).toBeUndefined();
    expect(env.NODE_OPTIONS).toMatch(/^--max-old-space-size=\d+( --\S+)*$/);
    for (const [name, value] of Object.entries(env)) {
      expect(finalStage).toContain(`ENV ${name}=`);
      expect(value).not.toMatch(/^"|"$/);
    }
    expect(Object.keys(env).length).toBe([...finalStage.matchAll(/^ENV (?!NODE_ENV=)/gm)].length);
  });
});
