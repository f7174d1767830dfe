import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));
const run = promisify(execFile);

/** Runs the demo as `npm run demo` does and uses it the way its banner tells a person to. */
it('runs the whole product with no accounts, prints working curl lines, and stops on Ctrl-C', async () => {
  const demo = spawn(process.execPath, ['--import', 'tsx', 'src/demo.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', PORT: '0', INTERNAL_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  demo.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  demo.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = once(demo, 'exit');
  try {
    for (let i = 0; i < 300 && !out.includes('Press Ctrl-C'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(out).toContain('Press Ctrl-C');

    const curls = out
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.startsWith('curl '));
    expect(curls.length).toBeGreaterThanOrEqual(4);
    const outputs = [];
    for (const line of curls) outputs.push((await run('bash', ['-c', `${line} -w '\\n%{http_code}'`])).stdout);
    const [connect, products, session, ready, metrics] = outputs.map((text) => {
      const lines = text.trimEnd().split('\n');
      return { status: lines.pop(), body: lines.join('\n') };
    });

    expect(connect?.status).toBe('200');
    expect(JSON.parse(connect?.body ?? '')).toMatchObject({
      token: expect.any(String),
      mode: 'transfer',
      hostedUrl: expect.stringContaining('connect_token='),
    });
    expect(products?.status).toBe('200');
    expect(JSON.parse(products?.body ?? '')).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'Gift card' })]));
    expect(session?.status).toBe('200');
    expect(JSON.parse(session?.body ?? '')).toMatchObject({ state: 'valid', clientId: '123456' });
    expect(ready?.status).toBe('200');
    expect(metrics?.body).toContain('broker_starship_token_renewals_total{kind="login",result="success"} 1');
  } finally {
    demo.kill('SIGINT');
    const [code] = await exited;
    expect(code).toBe(0);
  }
  expect(out).toContain('Stopping the demo');
});
