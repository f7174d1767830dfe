import { pipeline } from 'node:stream/promises';
import express from 'express';
import { Pool } from 'undici';
import { env, listen, starshipAccessToken } from './common.js';

/**
 * The floor any Express proxy pays: Express 5 and an undici Pool, a fixed token, and nothing else —
 * no caller auth, no path checks, no header policy, no logs, no metrics.
 */
const authorization = `Bearer ${await starshipAccessToken()}`;
const pool = new Pool(env('STARSHIP_URL'));
const prefix = '/v1/starship';
// These describe our connection to Starship, not the answer; Node writes its own.
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection']);

const app = express();
app.get(`${prefix}/{*path}`, async (req, res) => {
  const upstream = await pool.request({ method: 'GET', path: req.originalUrl.slice(prefix.length), headers: { authorization } });
  res.status(upstream.statusCode);
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (value !== undefined && !hopByHop.has(name)) res.setHeader(name, value);
  }
  // A caller that hangs up mid-answer (the load generator does, at the end of every run) fails the pipeline,
  // which has already closed both ends: nothing left to do, and nothing worth a stack trace.
  await pipeline(upstream.body, res).catch(() => undefined);
});
listen(app);
