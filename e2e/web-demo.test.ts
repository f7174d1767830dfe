import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../sandbox/sandbox.js';
import { captureLogs } from '../test/support/log-capture.js';
import { deleteKeys, inspectRedis, testRedisUrl, uniquePrefix } from '../test/support/redis.js';
import { watchTokens } from '../test/support/secrets.js';

/**
 * The demo's example web app in a real headless Chromium, as a person would use it: sign in, link
 * Benji through the hosted page's popup, see the link, unlink. Then nothing the browser received,
 * kept or was sent may contain a Benji user token.
 */
const chromiumPath = '/usr/bin/chromium';
const prefix = uniquePrefix();
let sandbox: Sandbox;
let browser: Browser;

beforeAll(async () => {
  // No browser is a failure, not a skip: .ci/run installs Debian's chromium before this runs.
  expect(existsSync(chromiumPath), `${chromiumPath} (apt-get install chromium)`).toBe(true);
  const logs = captureLogs();
  sandbox = await startSandbox({ redisUrl: testRedisUrl, redisKeyPrefix: prefix, logDestination: logs.stream });
  // None of these may reach a log: the user JWTs, and what Benji issued.
  watchTokens(sandbox.web.issuedTokens);
  watchTokens(sandbox.benji.issuedUserTokens);
  watchTokens(sandbox.benji.issuedExchangeTokens);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await sandbox?.stop();
  const redis = inspectRedis();
  await deleteKeys(redis, prefix);
  await redis.quit();
});

/** Everything the browser got or was handed: each response body (page and popups) and each message posted to a window. */
async function watchBrowser(context: BrowserContext) {
  const bodies: Array<Promise<string>> = [];
  context.on('response', (response) => {
    // A redirect or an aborted load has no body to read.
    bodies.push(
      response.body().then(
        (body) => body.toString('utf8'),
        () => '',
      ),
    );
  });
  const messages: string[] = [];
  await context.exposeBinding('recordMessage', (_source, data: string) => void messages.push(data));
  // Before any script of the page: every message event any window of the context receives.
  await context.addInitScript({ content: `addEventListener('message', (event) => recordMessage(JSON.stringify(event.data)));` });
  return { bodies: () => Promise.all(bodies), messages };
}

const text = (page: Page, selector: string) => page.locator(selector).textContent();

async function signIn(page: Page, name: 'Alice' | 'Bob') {
  await page.getByRole('button', { name: `Sign in as ${name}` }).click();
  await expect.poll(() => text(page, '#who')).toBe(`Signed in as ${name}.`);
  await expect.poll(() => text(page, '#link-status')).not.toMatch(/Checking|Sign in/);
}

it('signs Alice in, links her Benji account in the hosted popup, shows it to her and not to Bob, unlinks; no Benji token reaches the page', async () => {
  const context = await browser.newContext();
  const seen = await watchBrowser(context);
  const page = await context.newPage();
  await page.goto(sandbox.webUrl);

  await signIn(page, 'Alice');
  expect(await text(page, '#link-status')).toBe('Not linked to Benji.');

  const opened = page.waitForEvent('popup');
  await page.getByRole('button', { name: 'Connect Benji' }).click();
  const popup = await opened;
  await popup.locator('#approve').waitFor();
  expect(new URL(popup.url()).origin).toBe(new URL(sandbox.benji.url).origin);
  // A message from anything but Benji's page in that popup is ignored: this one would fail the exchange.
  await page.evaluate(`postMessage({ type: 'benji:connect:success', exchangeToken: 'xt_forged' }, '*')`);
  const closed = popup.waitForEvent('close');
  await popup.locator('#approve').click();
  await closed;

  const alice = sandbox.benji.userFor('alice');
  expect(alice).toBeDefined();
  await expect.poll(() => text(page, '#link-status')).toMatch(new RegExp(`^Linked as Benji user ${alice?.benjiUserId} \\(since .+\\)\\.$`));
  expect(await text(page, '#error')).toBe('');
  expect(sandbox.benji.stats.exchanges).toBe(1);

  // The link lives in the broker: a reload forgets the page's state, and signing in again shows it.
  await page.reload();
  expect(await text(page, '#link-status')).toBe('Sign in to see your Benji link.');
  await signIn(page, 'Alice');
  expect(await text(page, '#link-status')).toContain(`Linked as Benji user ${alice?.benjiUserId} `);

  await signIn(page, 'Bob');
  expect(await text(page, '#link-status')).toBe('Not linked to Benji.');

  await signIn(page, 'Alice');
  expect(await text(page, '#link-status')).toContain(`Linked as Benji user ${alice?.benjiUserId} `);
  await page.getByRole('button', { name: 'Unlink' }).click();
  await expect.poll(() => text(page, '#link-status')).toBe('Not linked to Benji.');
  await page.reload();
  await signIn(page, 'Alice');
  expect(await text(page, '#link-status')).toBe('Not linked to Benji.');
  expect(await text(page, '#error')).toBe('');

  // The broker got Benji's user tokens; the browser never did, by any way in.
  const benjiUserTokens = sandbox.benji.issuedUserTokens;
  expect(benjiUserTokens.filter((token) => /^(at|rt)_/.test(token)).length).toBeGreaterThanOrEqual(2);
  const storage = await page.evaluate(`JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } })`);
  const browserSaw = [...(await seen.bodies()), await page.content(), String(storage), ...seen.messages].join('\n');
  expect(benjiUserTokens.filter((token) => browserSaw.includes(token))).toEqual([]);
  // What the page was handed is recorded: the exchange token came by message, and the app keeps nothing.
  expect(seen.messages.some((message) => message.includes(sandbox.benji.issuedExchangeTokens[0] ?? '-'))).toBe(true);
  expect(storage).toBe('{"local":{},"session":{}}');
  await context.close();
});

it('says so when the user cancels on Benji’s page, and stays unlinked', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(sandbox.webUrl);
  await signIn(page, 'Bob');

  const opened = page.waitForEvent('popup');
  await page.getByRole('button', { name: 'Connect Benji' }).click();
  const popup = await opened;
  const closed = popup.waitForEvent('close');
  await popup.locator('#cancel').click();
  await closed;

  await expect.poll(() => text(page, '#error')).toBe('Connecting to Benji was cancelled.');
  expect(await text(page, '#link-status')).toBe('Not linked to Benji.');
  await context.close();
});
