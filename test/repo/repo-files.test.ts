import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema, secretVariables } from '../../src/config/env-schema.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');
const variables = Object.keys(envSchema.shape);

describe('README and .env.example', () => {
  it('list exactly the variables of the config schema', () => {
    const readmeTable = [...read('README.md').matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((m) => m[1]);
    expect([...readmeTable].sort()).toEqual([...variables].sort());
    const example = [...read('.env.example').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect([...example].sort()).toEqual([...variables].sort());
  });

  it('mark every variable that can come from a file', () => {
    for (const name of secretVariables) expect(read('README.md')).toContain(`| \`${name}\` †`);
  });

  it('give the test command that .ci/run runs', () => {
    const command = 'npm install && npm test';
    expect(read('README.md').split('\n')).toContain(command);
    expect(read('.ci/run').split('\n')).toContain(command);
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
    // The build writes src/main.ts to dist/main.js, the file CMD starts.
    const build = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(JSON.parse(read('package.json')).scripts.start).toBe('node dist/main.js');
  });

  it('docker-compose.yml: redis with a healthcheck, the broker waiting for it, settings from .env', () => {
    const compose = parse(read('docker-compose.yml')) as {
      services: Record<
        string,
        {
          healthcheck?: unknown;
          depends_on?: Record<string, { condition: string }>;
          env_file?: unknown;
          environment?: Record<string, string>;
          ports?: string[];
        }
      >;
    };
    const { redis, broker } = compose.services;
    expect(redis?.healthcheck).toBeDefined();
    expect(broker?.depends_on?.redis?.condition).toBe('service_healthy');
    expect(broker?.env_file).toBe('.env');
    expect(broker?.environment?.REDIS_URL).toBe('redis://redis:6379');
    expect(broker?.ports).toEqual(expect.arrayContaining(['8080:8080', '127.0.0.1:8081:8081']));
  });
});
