// What the browser tests share: Debian's Chromium launched with playwright-core, and their steps.
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

// One JSON line per step on stdout, which the Python test reads.
function step(name, extra) {
  console.log(JSON.stringify({ step: name, ...extra }));
}

// Runs the async ``main``, ending with an 'ok' or a 'failed' step (and exit code 1).
function run(main) {
  main().then(
    () => step('ok'),
    (err) => {
      step('failed', { message: String(err && err.stack || err) });
      process.exitCode = 1;
    },
  );
}

module.exports = { launch, run, step };
