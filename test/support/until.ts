import { Redis } from 'ioredis';

/** Polls `check` every 10 ms for up to `timeoutMs`; fails naming what it waited for. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Waits until a (restarted) Redis holds the broker's Starship session again. */
export async function untilSessionStored(redisUrl: string, key = '{bff:}starship:session'): Promise<void> {
  const inspect = new Redis(redisUrl);
  try {
    await until(async () => (await inspect.exists(key)) === 1, 'the session written back');
  } finally {
    inspect.disconnect();
  }
}
