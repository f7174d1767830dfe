import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { until } from './support/until.js';
import { freePort } from './support/ports.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const run = promisify(execFile);

const started: ChildProcess[] = [];
afterEach(() => {
  // Whatever a failed test left running: its whole process group (each demo runs in its own).
  for (const child of started.splice(0)) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Starts a command in its own process group, collecting stdout and stderr together. */
function startDemo(file: string, args: string[], env: Record<string, string>) {
  const child = spawn(file, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? root, PORT: '0', INTERNAL_PORT: '0', DEMO_WEB_PORT: '0', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  started.push(child);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, output: () => out, exited, ready: () => until(() => out.includes('Press Ctrl-C'), 'the demo banner', 30_000) };
}

/** The ports the banner names: the broker's two doors and the web app. */
function bannerPorts(output: string): number[] {
  return [...new Set([...output.matchAll(/http:\/\/localhost:(\d+)\b/g)].map((m) => Number(m[1])))];
}

/** The banner's curl line that names `path`. */
function curlFor(output: string, path: string): string {
  const line = output
    .split('\n')
    .map((text) => text.trim())
    .find((text) => text.startsWith('curl ') && text.includes(path));
  expect(line, path).toBeDefined();
  return line ?? '';
}

/** Runs a banner curl line: its status and body. */
async function runCurl(line: string): Promise<{ status: string | undefined; body: string }> {
  const lines = (await run('bash', ['-c', `${line} -w '\\n%{http_code}'`])).stdout.trimEnd().split('\n');
  return { status: lines.pop(), body: lines.join('\n') };
}

/** Runs the demo as `npm run demo` does and uses it the way its banner tells a person to. */
it('runs the whole product with no accounts, prints working curl lines, and stops on Ctrl-C', async () => {
  const benjiPort = await freePort();
  const publicBenji = `http://localhost:${benjiPort}`;
  const demo = startDemo(process.execPath, ['--import', 'tsx', 'sandbox/demo.ts'], {
    SANDBOX_BENJI_PORT: String(benjiPort),
    SANDBOX_BENJI_PUBLIC_URL: publicBenji,
  });
  try {
    await demo.ready();
    const out = demo.output();

    // Every curl line the banner prints works; each is run below.
    const curls = out
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.startsWith('curl '));
    expect(curls).toHaveLength(8);
    const paths = ['/sign-in', '/v1/benji/connect-token', '/v1/benji/link', '/v1/starship/api/v1/products', '/v1/admin/starship/session'];
    const outputs = [];
    for (const path of [...paths, '/readyz', '/metrics']) outputs.push(await runCurl(curlFor(out, path)));
    const [signIn, connect, link, products, session, ready, metrics] = outputs;

    // The example web app: its page opens, and its sign-in hands out user JWTs the broker accepts.
    const webUrl = /^Open (http:\/\/localhost:\d+) for the example web app/m.exec(out)?.[1];
    expect(webUrl).toBeDefined();
    const page = await fetch(`${webUrl}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/app.js"></script>');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(signIn?.status).toBe('200');
    expect(JSON.parse(signIn?.body ?? '')).toEqual({ token: expect.stringMatching(/^ey[\w-]+\.[\w-]+\.[\w-]+$/) });

    // The connect-token line carries Alice's JWT, checked against the web app's JWKS.
    expect(connect?.status).toBe('200');
    const issued = JSON.parse(connect?.body ?? '') as { hostedUrl: string };
    expect(issued).toMatchObject({ token: expect.any(String), mode: 'transfer', hostedUrl: expect.stringContaining('connect_token=') });
    // The hosted-connect URL is the published one, and it opens.
    expect(issued.hostedUrl.startsWith(`${publicBenji}/hosted/connect?`)).toBe(true);
    const hosted = await fetch(issued.hostedUrl);
    expect(hosted.status).toBe(200);
    // Issued by the fake, so its page offers to approve it.
    expect(await hosted.text()).toContain('<button id="approve"');
    // Alice's link status, from the broker (the web app's Connect Benji would link her).
    expect(link).toEqual({ status: '200', body: '{"linked":false}' });
    // Without a user token the public door refuses, as FRONTEND_AUTH=jwt does.
    const anonymous = await runCurl(curlFor(out, '/v1/benji/connect-token').replace(/-H 'Authorization: Bearer [^']+' /, ''));
    expect(anonymous.status).toBe('401');

    expect(products?.status).toBe('200');
    expect(JSON.parse(products?.body ?? '')).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'Gift card' })]));
    expect(session?.status).toBe('200');
    expect(JSON.parse(session?.body ?? '')).toMatchObject({ state: 'valid', clientId: '123456' });
    expect(ready?.status).toBe('200');
    expect(metrics?.body).toContain('broker_starship_token_renewals_total{kind="login",result="success"} 1');
    // The webhook line: signed with openssl as Starship signs, stored, forwarded to the sandbox's service.
    const hookLine = out
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line.includes('/v1/webhooks/starship'));
    const hook = await runCurl(hookLine ?? 'false');
    expect(hook).toEqual({ status: '200', body: '{"received":true}' });
    await until(() => /forward target: 200 starship order\.delivered/.test(demo.output()), 'the forwarded webhook');
    const hooks = await runCurl(curlFor(out, '/v1/admin/webhooks'));
    expect(JSON.parse(hooks.body)).toMatchObject({ stored: 1, dead: 0 });
    // Not a terminal: the logs stay JSON lines.
    await until(() => /^\{"level":"info",.*"msg":"starship login succeeded"\}$/m.test(demo.output()), 'the login as a JSON line');
  } finally {
    demo.child.kill('SIGINT');
  }
  expect(await demo.exited).toEqual([0, null]);
  expect(demo.output()).toContain('Stopping the demo');
});

it('`npm run demo` stops when SIGINT is sent to the npm process alone: ports freed, process tree gone', async () => {
  const demo = startDemo('npm', ['run', 'demo'], {});
  await demo.ready();
  // The broker's two doors and the web app.
  const ports = bannerPorts(demo.output());
  expect(ports).toHaveLength(3);
  const webPort = Number(/^Open http:\/\/localhost:(\d+) /m.exec(demo.output())?.[1]);
  for (const port of ports) {
    expect((await fetch(`http://127.0.0.1:${port}${port === webPort ? '/' : '/healthz'}`)).status, String(port)).toBe(200);
  }

  process.kill(demo.child.pid ?? 0, 'SIGINT'); // npm's pid only, not its process group
  expect(await demo.exited).toEqual([0, null]);
  expect(demo.output()).toContain('Stopping the demo');
  for (const port of ports) await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  await until(() => {
    try {
      process.kill(-(demo.child.pid ?? 0), 0);
      return false;
    } catch {
      return true; // ESRCH: nothing is left in the demo's process group
    }
  }, 'every process of the demo to be gone');
});

it('STARSHIP_AUTH=api-key runs Starship with signed API-key calls: its curl lines work, and there is no session', async () => {
  const demo = startDemo(process.execPath, ['--import', 'tsx', 'sandbox/demo.ts'], { STARSHIP_AUTH: 'api-key' });
  try {
    await demo.ready();
    expect(demo.output()).toContain('Starship: API key and secret, every call HMAC-signed');
    const curl = (path: string) =>
      demo
        .output()
        .split('\n')
        .map((line) => line.trim())
        .find((line) => line.startsWith('curl ') && line.includes(path)) ?? '';
    const products = await run('bash', ['-c', `${curl('/v1/starship/api/v1/products')} -w '\n%{http_code}'`]);
    expect(products.stdout.trimEnd().split('\n').pop()).toBe('200');
    const session = await run('bash', ['-c', curl('/v1/admin/starship/session')]);
    expect(JSON.parse(session.stdout)).toMatchObject({ state: 'static' });
    expect(demo.output()).not.toContain('starship login');
  } finally {
    demo.child.kill('SIGINT');
  }
  expect(await demo.exited).toEqual([0, null]);
});

it('writes pretty logs when stdout is a terminal, and stops on a real Ctrl-C', async () => {
  // `script` gives the demo a pseudo-terminal; a ^C typed into it is a terminal's Ctrl-C.
  const demo = startDemo('script', ['-qefc', `exec '${process.execPath}' --import tsx sandbox/demo.ts`, '/dev/null'], { TERM: 'xterm' });
  await demo.ready();
  await until(() => demo.output().includes('starship login succeeded'), 'the login line');
  demo.child.stdin?.write('\x03');
  expect(await demo.exited).toEqual([0, null]);
  const out = demo.output();
  expect(out).toMatch(/\[\d\d:\d\d:\d\d\] .*INFO.*: .*starship login succeeded/);
  expect(out).not.toContain('{"level"');
  expect(out).toContain('Stopping the demo');
});
