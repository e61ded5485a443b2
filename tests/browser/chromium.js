// How the browser tests launch Debian's Chromium with playwright-core.
'use strict';
const { chromium } = require('playwright-core');

// Without the background-networking flags Chromium keeps dialing Google's
// hosts, which a closed network refuses.
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

function launch() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  return chromium.launch({ executablePath, headless: true, args: ARGS, timeout: 30000 });
}

module.exports = { launch };
