/**
 * Everything a test run must never see in a log: configured secrets, user JWTs, issued tokens.
 * Tests register what they create; test/support/secret-scan.ts checks every captured log against
 * it when each test file ends.
 */
const secrets = new Set<string>();
const tokenLists: Array<readonly string[]> = [];
const logSources: Array<() => string> = [];

/** Registers a secret value and returns it, so a declaration can register itself. */
export function secret<T extends string>(value: T): T {
  if (value.length >= 8) secrets.add(value);
  return value;
}

/** Registers a live list of tokens (e.g. a fake's issued tokens), read when the file ends. */
export function watchTokens(list: readonly string[]): void {
  tokenLists.push(list);
}

/** Registers a source of log text: a capture stream or a child process's output. */
export function watchLogs(read: () => string): void {
  logSources.push(read);
}

export function allSecrets(): string[] {
  return [...secrets, ...tokenLists.flat()];
}

export function allLogs(): string {
  return logSources.map((read) => read()).join('\n');
}
