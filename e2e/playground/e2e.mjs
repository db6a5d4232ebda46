// End-to-end test: gatebot driven through the real Microsoft 365 Agents Playground
// in headless Debian Chromium. It expects the bot to answer at BOT_URL, starts the
// Playground itself, and saves a screenshot after every step into E2E_OUT.
// Every browser request that is not for localhost/127.0.0.1 is aborted.
// The last line is "e2e: N passed, N failed"; the exit code is non-zero on any failure.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { flows } from './flows.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BOT_URL = (process.env.BOT_URL || 'http://127.0.0.1:3978').replace(/\/$/, '');
const PLAYGROUND_PORT = Number(process.env.PLAYGROUND_PORT || 56150);
const OUT = path.resolve(process.env.E2E_OUT || path.join(here, 'out'));
const STEP_MS = Number(process.env.E2E_TIMEOUT_MS || 30000);
const RUN_MS = Number(process.env.E2E_RUN_TIMEOUT_MS || 90000);
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const USER = 'Alex Wilber'; // the Playground's default current user
const BOT_NAME = 'Test Bot'; // the Playground's default bot display name

fs.mkdirSync(OUT, { recursive: true });
for (const f of fs.readdirSync(OUT)) if (f.endsWith('.png')) fs.rmSync(path.join(OUT, f));

const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

class StepError extends Error {}

async function waitHTTP(url, ms, what) {
  const end = Date.now() + ms;
  let last = '';
  while (Date.now() < end) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new StepError(`${what} not answering at ${url} after ${ms} ms (last: ${last})`);
}

// startPlayground runs the Playground from a scratch cwd (it writes ./devTools there)
// and resolves with its URL once it says where it listens.
async function startPlayground() {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'playground-'));
  const bin = path.join(here, 'node_modules', '.bin', 'agentsplayground');
  const outFile = fs.openSync(path.join(OUT, 'playground.out'), 'w');
  const child = spawn(bin, ['-e', `${BOT_URL}/api/messages`, '-c', 'msteams', '-p', String(PLAYGROUND_PORT), '--disable-telemetry'], {
    cwd,
    env: {
      ...process.env,
      TEAMSAPPTESTER_BROWSER: 'none',
      APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
      M365_AGENTS_PLAYGROUND_LOGFILE: path.join(OUT, 'playground.log'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new StepError(`Playground did not start within 60 s; output:\n${text}`)), 60000);
    const onData = (b) => {
      fs.writeSync(outFile, b);
      text += b;
      const m = /Listening on (\d+)/.exec(text);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(t); reject(new StepError(`Playground exited with ${code}; output:\n${text}`)); });
  });
  child.stdout.on('data', (b) => fs.writeSync(outFile, b));
  child.stderr.on('data', (b) => fs.writeSync(outFile, b));
  child.removeAllListeners('exit');
  const url = `http://127.0.0.1:${port}`;
  await waitHTTP(`${url}/`, 30000, 'Playground');
  return { child, url };
}

const aborted = new Set();
// actAs, when set, makes the next card clicks come from another user of the Playground's
// default config (all of them are members of its group chat).
let actAs = null;
// held, when an array, queues the Playground's conversation updates instead of delivering them.
let held = null;
const holdUpdates = (on) => {
  if (on) { held ??= []; return; }
  const q = held || [];
  held = null;
  for (const [ws, m] of q) ws.send(m);
};
const MEGAN = { id: 'user-id-1', name: 'Megan Bowen' };
const ADELE = { id: 'user-id-2', name: 'Adele Vance' };
let shot = 0;

async function screenshot(page, name) {
  shot += 1;
  const file = path.join(OUT, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: false }).catch((e) => log('screenshot failed:', e.message));
  log('  screenshot', path.relative(process.cwd(), file));
  return file;
}

// chatText is what a person sees in the open conversation and the Playground's log panel;
// it goes into failure messages so a timeout says what the bot did instead.
async function chatText(page) {
  const msgs = await page.locator('.fai-OutputCard').allInnerTexts().catch(() => []);
  const body = await page.locator('body').innerText().catch(() => '');
  const start = body.lastIndexOf('Log Panel');
  const end = body.lastIndexOf('Click on a log item');
  const logLines = (start >= 0 ? body.slice(start, end > start ? end : undefined) : '').split('\n')
    .filter((l) => /^\[\d/.test(l)).slice(-8);
  return `bot messages in view (last 4):\n${msgs.slice(-4).map((m) => '  | ' + m.replace(/\n+/g, ' / ')).join('\n') || '  (none)'}\n` +
    `Playground log panel (last lines):\n${logLines.map((l) => '  | ' + l).join('\n') || '  (empty)'}`;
}

async function waitFor(page, what, fn, ms = STEP_MS) {
  const end = Date.now() + ms;
  let lastErr;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await page.waitForTimeout(250);
  }
  throw new StepError(`timed out after ${ms} ms waiting for ${what}${lastErr ? ` (${lastErr.message.split('\n')[0]})` : ''}\n${await chatText(page)}`);
}

async function openConversation(page, treeName) {
  await page.getByRole('treeitem', { name: treeName, exact: true }).click();
  await waitFor(page, `conversation "${treeName}" to be selected`, async () =>
    (await page.getByRole('treeitem', { name: treeName, exact: true }).getAttribute('aria-selected')) === 'true'
    || (await page.getByRole('textbox').last().isVisible()));
}

// send types a message into the compose box. With mention set, it types "@" and picks the
// bot from the typeahead menu, which is the only way the Playground adds a mention entity.
async function send(page, text, { mention = false } = {}) {
  const box = page.getByRole('textbox').last();
  await box.click();
  if (mention) {
    await box.pressSequentially('@' + BOT_NAME.split(' ')[0]);
    const item = page.getByRole('listbox', { name: 'Typeahead menu' }).getByRole('menuitem', { name: new RegExp(escapeRe(BOT_NAME)) });
    await waitFor(page, `"${BOT_NAME}" in the @mention typeahead`, () => item.first().isVisible(), 10000);
    await item.first().click();
    await box.pressSequentially(' ');
  }
  await box.pressSequentially(text);
  await page.keyboard.press('Enter');
}

const botMessages = (page) => page.locator('.fai-OutputCard');

// waitForGate returns the index (among bot messages in view) of the new approval card for version.
async function waitForGate(page, before, version) {
  return waitFor(page, `an approval card for version ${version} with Approve and Reject buttons`, async () => {
    const n = await botMessages(page).count();
    for (let i = n - 1; i >= before; i--) {
      const m = botMessages(page).nth(i);
      if (await m.locator('.ac-adaptiveCard').count() === 0) continue;
      const t = await m.innerText();
      if (!t.includes(version)) continue;
      if (await m.getByRole('button', { name: 'Approve', exact: true }).count() > 0
        && await m.getByRole('button', { name: 'Reject', exact: true }).count() > 0) return { index: i };
    }
    return null;
  });
}

// waitCardText waits until the bot message at index (the same message: updated in place) matches re.
async function waitCardText(page, index, re, what, ms = STEP_MS) {
  const m = botMessages(page).nth(index);
  await waitFor(page, `${what} (the card at the same place must match ${re})`, async () => re.test(await m.innerText()), ms);
  return m;
}

async function assertGateCount(page, before, version) {
  const n = await botMessages(page).count();
  let cards = 0;
  for (let i = before; i < n; i++) {
    const m = botMessages(page).nth(i);
    if (await m.locator('.ac-adaptiveCard').count() > 0 && (await m.innerText()).includes(version)) cards++;
  }
  if (cards !== 1) throw new StepError(`expected exactly 1 card for ${version} (updated in place), found ${cards}\n${await chatText(page)}`);
}

async function approveFlow(page, prefix, version, { mention = false } = {}) {
  const before = await botMessages(page).count();
  const cmd = `/run demo version=${version}`;
  log(`  send ${mention ? '@' + BOT_NAME + ' ' : ''}${cmd}`);
  await send(page, cmd, { mention });
  const { index } = await waitForGate(page, before, version);
  const card = botMessages(page).nth(index);
  await card.scrollIntoViewIfNeeded();
  await screenshot(page, `${prefix}-gate-card`);

  // The run starts within milliseconds of the approval; card updates are held until the
  // answer to the click ("Approved … Starting the pipeline…") has been checked and screenshotted.
  holdUpdates(true);
  let gone;
  try {
    await card.getByRole('button', { name: 'Approve', exact: true }).click();
    await waitCardText(page, index, new RegExp(`Approved by\\s*${escapeRe(USER)}[\\s\\S]*Starting the pipeline`), `"Approved by ${USER} … Starting the pipeline" on the card`);
    gone = await card.getByRole('button', { name: 'Approve', exact: true }).count();
    await screenshot(page, `${prefix}-approved`);
  } finally {
    holdUpdates(false);
  }
  if (gone !== 0) throw new StepError('the approved card still shows an Approve button');

  // Status words are matched in lower case so that a title such as "Running: demo" does not count.
  const seen = [];
  const note = async () => {
    const m = /\b(queued|running|succeeded|failed|cancelled)\b/.exec(await card.innerText());
    if (m && seen.at(-1) !== m[1]) seen.push(m[1]);
    return m?.[1];
  };
  await waitFor(page, 'the card to show the run status (queued or running)', async () => (await note()) !== undefined, RUN_MS);
  await screenshot(page, `${prefix}-run-${seen.at(-1)}`);
  await waitFor(page, 'the run status to reach succeeded (the card at the same place)', async () => (await note()) === 'succeeded', RUN_MS);
  await card.scrollIntoViewIfNeeded();
  await screenshot(page, `${prefix}-succeeded`);
  log(`  run statuses seen on the card: ${seen.join(' -> ')}`);
  if (seen.length < 2) throw new StepError(`the card jumped straight to succeeded without showing the run in progress (seen: ${seen.join(', ')}); the order of the card updates (PUTs) is in out/traffic.log`);
  await assertGateCount(page, before, version);
}

// rejectFlow supports the three ways a card can ask for an optional reason: an input that is
// always on the card, an Action.ShowCard behind "Reject", or a card returned by the Reject click.
async function rejectFlow(page, prefix, version, reason) {
  const before = await botMessages(page).count();
  log(`  send /run demo version=${version}`);
  await send(page, `/run demo version=${version}`);
  const { index } = await waitForGate(page, before, version);
  const card = botMessages(page).nth(index);
  await screenshot(page, `${prefix}-gate-card`);

  const input = () => card.locator('input[type="text"], textarea, input:not([type])').locator('visible=true');
  let filled = false;
  if (await input().count() > 0) {
    await input().first().fill(reason);
    filled = true;
  }
  await card.getByRole('button', { name: 'Reject', exact: true }).click();
  const done = new RegExp(`Rejected by\\s*${escapeRe(USER)}`);
  if (!filled) {
    const state = await waitFor(page, 'the card to ask for a reason (a text input) or show "Rejected by"', async () => {
      if (done.test(await card.innerText())) return 'done';
      return (await input().count()) > 0 ? 'ask' : null;
    });
    if (state === 'done') throw new StepError(`Reject did not offer a reason input before deciding\n${await chatText(page)}`);
    await input().first().fill(reason);
    // The reason field and its confirming button open below the card: show them, not the header.
    await card.getByRole('button').last().scrollIntoViewIfNeeded();
    await screenshot(page, `${prefix}-reason`);
    const buttons = await card.getByRole('button').allInnerTexts();
    const confirm = buttons.map((b) => b.trim()).find((b) => b !== 'Reject' && /reject|confirm|submit|send/i.test(b))
      || buttons.map((b) => b.trim()).find((b) => b === 'Reject');
    if (!confirm) throw new StepError(`no button to confirm the rejection; buttons: ${JSON.stringify(buttons)}`);
    log(`  confirm with "${confirm}"`);
    await card.getByRole('button', { name: confirm, exact: true }).last().click();
  }
  await waitCardText(page, index, new RegExp(`Rejected by\\s*${escapeRe(USER)}[\\s\\S]*?${escapeRe(reason)}`),
    `"Rejected by ${USER} … ${reason}" on the card`);
  await screenshot(page, `${prefix}-rejected`);
  if (await card.getByRole('button', { name: 'Approve', exact: true }).count() !== 0) {
    throw new StepError('the rejected card still shows an Approve button');
  }
  await assertGateCount(page, before, version);
}

let playground;
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (playground) playground.child.kill('SIGTERM');
    console.log(`e2e: interrupted by ${sig}`);
    process.exit(1);
  });
}

async function main() {
  const results = [];
  let ctx;
  let page;
  const test = async (name, fn) => {
    log(`RUN  ${name}`);
    try {
      await fn();
      results.push([name, true]);
      log(`PASS ${name}`);
    } catch (e) {
      results.push([name, false]);
      log(`FAIL ${name}: ${e instanceof StepError ? e.message : e.stack}`);
      if (page) await screenshot(page, `${name}-FAILED`);
    }
  };

  try {
    await waitHTTP(`${BOT_URL}/healthz`, 30000, 'gatebot (/healthz)');
    playground = await startPlayground();
    log('Playground at', playground.url);
    const userData = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-chromium-'));
    ctx = await chromium.launchPersistentContext(userData, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--disable-quic', '--no-first-run'],
    });
    await ctx.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (actAs && u.pathname.endsWith('/v1/invoke') && route.request().method() === 'POST') {
        // A card click by another member of the chat: the Playground's server builds the
        // invoke's `from` (name, aadObjectId) from its own user list by this id.
        const body = JSON.parse(route.request().postData() || '{}');
        body.from = { ...body.from, id: actAs.id, name: actAs.name };
        return route.continue({ postData: JSON.stringify(body) });
      }
      if (u.hostname === 'localhost' || u.hostname === '127.0.0.1') return route.continue();
      aborted.add(u.origin);
      return route.abort();
    });
    // Card updates (the bot's PUTs) reach the page over this websocket. holdUpdates queues
    // them for a moment so that the card answered to a click can be seen before the
    // engine's next update replaces it (the run may start within milliseconds).
    await ctx.routeWebSocket(/\/_ws_conversation\//, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((m) => { if (held) held.push([ws, m]); else ws.send(m); });
    });
    page = ctx.pages()[0] || (await ctx.newPage());
    // The Playground UI receives a log entry for every request between it and the bot, with
    // both bodies, over a websocket; out/traffic.log keeps them to show what the bot did.
    const traffic = fs.openSync(path.join(OUT, 'traffic.log'), 'w');
    page.on('websocket', (ws) => {
      if (!ws.url().includes('/_ws/log/stream')) return;
      ws.on('framereceived', (f) => {
        try {
          const e = JSON.parse(String(f.payload)).log;
          if (!e) return;
          const when = new Date(e.timestamp).toISOString().slice(11, 23);
          if (!e.request && !e.response) { fs.writeSync(traffic, `${when} ${e.displayText}\n`); return; }
          fs.writeSync(traffic, `${when} ${e.from} -> ${e.to}: ${e.activityName} ${e.response?.statusCode ?? ''}\n` +
            `  request: ${JSON.stringify(e.request?.body)}\n  response: ${JSON.stringify(e.response?.body)}\n`);
        } catch { /* not a log entry */ }
      });
    });

    await test('connect', async () => {
      await page.goto(playground.url + '/');
      await waitFor(page, 'the Playground to say "Connected." to the bot', () => page.getByText('Connected.').first().isVisible(), 60000);
      await screenshot(page, 'connected');
    });
    if (!results.at(-1)[1]) throw new StepError('the Playground never connected to the bot; skipping the chat flows');
    await test('personal-approve', async () => {
      await openConversation(page, 'Personal Chat');
      await approveFlow(page, 'personal', '1.2.3');
    });
    await test('personal-reject', async () => {
      await openConversation(page, 'Personal Chat');
      await rejectFlow(page, 'personal-reject', '1.2.5', 'not today');
    });
    const f = flows({ page, send, waitFor, screenshot, botMessages, chatText, escapeRe, StepError, USER, log,
      RUN_MS, STEP_MS, MEGAN, ADELE, holdUpdates, setActAs: (u) => { actAs = u; } });
    let expiring;
    await test('expiry-open', async () => {
      await openConversation(page, 'Personal Chat');
      expiring = await f.expiryOpen('expiry');
    });
    await test('trigger-failure', () => f.triggerFailure('trigger-failure'));
    await test('commands', () => f.commands('commands'));
    await test('typo', () => f.typo('typo'));
    await test('expiry', async () => {
      if (!expiring) throw new StepError('expiry-open failed; nothing to wait for');
      await f.expiry('expiry', expiring);
    });
    await test('group-approve', async () => {
      await openConversation(page, 'Group Chat');
      await approveFlow(page, 'group', '1.2.4', { mention: true });
    });
    await test('group-form-quorum', async () => {
      await openConversation(page, 'Group Chat');
      await f.formQuorum('quorum', { mention: true });
    });
  } catch (e) {
    results.push(['setup', false]);
    log(`FAIL setup: ${e instanceof StepError ? e.message : e.stack}`);
    if (page) await screenshot(page, 'setup-FAILED');
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    if (playground) playground.child.kill('SIGTERM');
  }
  if (aborted.size) log('aborted non-loopback requests to:', [...aborted].join(', '));
  const passed = results.filter((r) => r[1]).length;
  const failed = results.length - passed;
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

await main();
