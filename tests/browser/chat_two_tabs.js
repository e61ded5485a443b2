// Two tabs of the greensio chat demo in headless Chromium (Debian's, via playwright-core).
//
// usage: node chat_two_tabs.js <base url> <screenshot.png>
// Prints one JSON line per step; exits 0 only if a message typed in one tab
// appears in the other (lobby, then a room the two tabs joined).
'use strict';
const { launch, run, step } = require('./chromium');

const [url, screenshot] = process.argv.slice(2);
const STEP_MS = 10000;

async function openTab(context, name) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (err) => step('pageerror', { tab: name, message: String(err) }));
  await page.goto(url);
  await page.waitForSelector('#status.online');
  await page.fill('#username', name);
  await page.click('#set-name');
  await page.waitForSelector(`#messages li.notice:has-text("You are now ${name}")`);
  step('tab ready', { tab: name, transport: await page.textContent('#transport') });
  return page;
}

async function say(page, text) {
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
}

async function sees(page, who, text) {
  const line = page.locator('#messages li', { hasText: text });
  await line.waitFor();
  const author = await line.locator('.who').textContent();
  if (author !== who) throw new Error(`expected ${who} as the author of "${text}", got ${author}`);
}

run(async () => {
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
    const alice = await openTab(context, 'alice');
    const bob = await openTab(context, 'bob');

    await say(alice, 'hello from alice');
    await sees(bob, 'alice', 'hello from alice');
    await sees(alice, 'alice', 'hello from alice');
    step('lobby message crossed tabs');

    for (const page of [alice, bob]) {
      await page.fill('#new-room', 'general');
      await page.press('#new-room', 'Enter');
      await page.waitForSelector('#room-title:has-text("#general")');
    }
    await say(bob, 'bob in general');
    await sees(alice, 'bob', 'bob in general');
    step('room message crossed tabs');

    await bob.screenshot({ path: screenshot, fullPage: true });
    step('screenshot', { path: screenshot });
  } finally {
    await browser.close();
  }
});
