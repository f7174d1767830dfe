import type { Express } from 'express';
import { request } from 'undici';

/** What the baselines share: their settings, the Starship login, and how they listen. */

export function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${process.argv[1] ?? 'baseline'} needs ${name}`);
  return value;
}

/** Logs in to the (fake) Starship once; the baselines then use this token for the whole run. */
export async function starshipAccessToken(): Promise<string> {
  const reply = await request(`${env('STARSHIP_URL')}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: env('STARSHIP_USERNAME'), password: env('STARSHIP_PASSWORD') }),
  });
  const body = (await reply.body.json()) as { access_token?: unknown };
  if (reply.statusCode !== 200 || typeof body.access_token !== 'string') throw new Error(`Starship login failed: ${reply.statusCode}`);
  return body.access_token;
}

export function listen(app: Express): void {
  app.listen(Number(env('PORT')), '127.0.0.1', (error?: Error) => {
    if (error !== undefined) throw error;
  });
  // Started by bench/run.ts with an IPC channel: when the orchestrator goes away, so do we.
  process.on('disconnect', () => process.exit(0));
}
