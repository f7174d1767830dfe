import { readFileSync } from 'node:fs';

/**
 * The version in package.json, which sits one level above both src/ (tsx) and dist/ (the build and
 * the image). Read by the entry points when they start, never at import.
 */
export function readPackageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}
