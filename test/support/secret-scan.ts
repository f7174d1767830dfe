import { afterAll, expect } from 'vitest';
import { allLogs, allSecrets } from './secrets.js';

/**
 * Runs after every test file: no configured secret, user JWT or issued token may appear in any log
 * the file captured (broker loggers and child processes alike). Starship tokens of the fake are
 * recognised by their shape, since the broker never hands them to a test.
 */
afterAll(() => {
  const logs = allLogs();
  const leaked = allSecrets().filter((value) => logs.includes(value));
  expect(leaked.map((value) => `${value.slice(0, 6)}…`)).toEqual([]);
  expect(logs.match(/\b(at|rt)_[0-9a-f]{48}\b/g) ?? []).toEqual([]);
});
