import { readFileSync } from 'node:fs';

/**
 * The version in the broker's package.json: the nearest one above this file, the same one Node
 * reads to know that these files are ES modules (one level up from src/ and dist/, further from a
 * build elsewhere). Read by the entry points when they start, never at import.
 */
export function readPackageVersion(): string {
  for (let dir = new URL('./', import.meta.url); ;) {
    const text = readIfExists(new URL('package.json', dir));
    if (text !== undefined) {
      const { version } = JSON.parse(text) as { version?: unknown };
      if (typeof version !== 'string') throw new Error('package.json has no version');
      return version;
    }
    const parent = new URL('../', dir);
    if (parent.href === dir.href) throw new Error('no package.json above the broker');
    dir = parent;
  }
}

function readIfExists(file: URL): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
