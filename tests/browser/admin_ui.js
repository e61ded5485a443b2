// The official Socket.IO Admin UI (@socket.io/admin-ui's ui/dist) against a
// greensio server, in headless Chromium (Debian's, via playwright-core).
//
// usage: node admin_ui.js <base url> <username> <password> <sockets json> <screenshot dir> [<server ids json>]
// <sockets json> lists the application's sockets as [{"id": sid, "room": room}];
// <server ids json> the servers the Servers page must list (default ["greensio-admin-test"]);
// the script logs in through the UI's connection form, waits until the
// dashboard, the sockets page and the rooms page show them, then disconnects
// the first one with the UI's own button and waits until the UI drops it.
// Prints one JSON line per step; exits 0 only if every step passed.
'use strict';
const { launch, run, step } = require('./chromium');

const [url, username, password, socketsJson, screenshotDir, serverIdsJson] = process.argv.slice(2);
const sockets = JSON.parse(socketsJson);
const serverIds = JSON.parse(serverIdsJson || '["greensio-admin-test"]');
const STEP_MS = 15000;

run(async () => {
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // the page links web fonts and icons from CDNs; refuse them at once
    // rather than let them time out on a closed network
    await context.route((u) => !u.href.startsWith(url), (route) => route.abort());
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (err) => step('pageerror', { message: String(err) }));

    await page.goto(`${url}/`);
    await page.getByLabel('Server URL').fill(url);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByLabel('Password').waitFor({ state: 'hidden' });
    step('logged in');

    await page.goto(`${url}/#/servers/`);
    for (const serverId of serverIds) {
      await page.getByText(serverId).first().waitFor();
    }
    step('server listed', { count: serverIds.length });

    await page.goto(`${url}/#/sockets/`);
    for (const { id } of sockets) {
      await page.getByText(id, { exact: true }).first().waitFor();
    }
    step('sockets listed', { count: sockets.length });
    await page.waitForTimeout(500); // the page's fade-in
    await page.screenshot({ path: `${screenshotDir}/admin_ui_sockets.png` });

    await page.goto(`${url}/#/rooms/`);
    for (const room of new Set(sockets.map((s) => s.room))) {
      await page.getByText(room, { exact: true }).first().waitFor();
    }
    step('rooms listed');

    await page.goto(`${url}/#/`);
    await page.waitForTimeout(2500); // a few server_stats for the charts
    await page.screenshot({ path: `${screenshotDir}/admin_ui.png` });
    step('dashboard');

    await page.goto(`${url}/#/sockets/`);
    const victim = sockets[0].id;
    const row = page.locator('tr', { has: page.getByText(victim, { exact: true }) }).first();
    await row.locator('button:has(.mdi-logout)').first().click();
    // the click also opens the socket's page, where socket_disconnected shows
    await page.getByText(/^\s*disconnected\s*$/i).first().waitFor();
    await page.screenshot({ path: `${screenshotDir}/admin_ui_disconnected.png` });
    step('disconnected from the UI', { id: victim });
  } catch (err) {
    for (const page of browser.contexts().flatMap((c) => c.pages())) {
      await page.screenshot({ path: `${screenshotDir}/admin_ui_failed.png` }).catch(() => {});
    }
    throw err;
  } finally {
    await browser.close();
  }
});
