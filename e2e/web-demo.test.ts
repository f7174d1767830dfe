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

/**
 * Everything the browser got or was handed: each response body (page and popups) and each message
 * posted to a window. A body that cannot be read is a failure, not a pass: the check would miss it.
 */
async function watchBrowser(context: BrowserContext) {
  const bodies: Array<Promise<string>> = [];
  const unreadable: string[] = [];
  context.on('response', (response) => {
    // A 204 has no body, nor has a redirect (the request it leads to is seen in turn).
    if (response.status() === 204 || (response.status() >= 300 && response.status() < 400)) return;
    bodies.push(
      response.body().then(
        (body) => body.toString('utf8'),
        () => {
          unreadable.push(`${response.request().method()} ${response.url()} ${response.status()}`);
          return '';
        },
      ),
    );
  });
  const messages: string[] = [];
  await context.exposeBinding('recordMessage', (_source, data: string) => void messages.push(data));
  // Before any script of a page: every message event any window of the context receives.
  await context.addInitScript({ content: `addEventListener('message', (event) => recordMessage(JSON.stringify(event.data)));` });
  // Benji's page closes itself as soon as it has its answer, and a closed window's bodies can no
  // longer be read: in a popup, the close waits a moment for the reads (it still closes itself).
  await context.addInitScript({
    content: `if (window.opener) { const close = window.close.bind(window); window.close = () => void setTimeout(close, 500); }`,
  });
  return {
    bodies: async () => {
      const read = await Promise.all(bodies);
      expect(unreadable).toEqual([]);
      return read;
    },
    messages,
  };
}

const text = (page: Page, selector: string) => page.locator(selector).textContent();

/** Clicks a button on Benji's page and waits for the popup to close itself, which may cut the click's own bookkeeping short. */
async function clickAndClose(popup: Page, selector: string) {
  const closed = popup.waitForEvent('close');
  await popup
    .locator(selector)
    .click()
    .catch((error: unknown) => {
      if (!popup.isClosed()) throw error;
    });
  await closed;
}

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
  await clickAndClose(popup, '#approve');

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
  // The watch saw what it should: the connect token in the page's reply, the exchange token in the
  // popup's reply and in the message that carried it to the page.
  const [connectToken] = sandbox.benji.issuedTokens;
  const [exchangeToken] = sandbox.benji.issuedExchangeTokens;
  expect(browserSaw).toContain(connectToken);
  expect((await seen.bodies()).some((body) => body.includes(exchangeToken ?? '-'))).toBe(true);
  expect(seen.messages.some((message) => message.includes(exchangeToken ?? '-'))).toBe(true);
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
  await clickAndClose(popup, '#cancel');

  await expect.poll(() => text(page, '#error')).toBe('Connecting to Benji was cancelled.');
  expect(await text(page, '#link-status')).toBe('Not linked to Benji.');
  await context.close();
});
