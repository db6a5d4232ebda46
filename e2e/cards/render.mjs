// Renders every golden Adaptive Card of gatebot (cards/testdata/*.golden.json) with the
// official renderer (npm adaptivecards, pinned) in headless Debian Chromium, with a Teams-like
// light host config, and saves one PNG per card (and one with the Reject form open for cards
// that have an Action.ShowCard). It fails when the renderer reports any parse or validation
// event for a card, when the page logs an error, or when a card renders empty.
//
// Offline: the page is built from local files; every request that is not file:, data: or
// loopback is aborted (and reported). Env: CARDS_GOLDEN_DIR (default ../../cards/testdata),
// CARDS_RENDER_OUT (default ./out), CHROMIUM (default /usr/bin/chromium), CARDS_ONLY (a
// substring to render a subset).
import { chromium } from 'playwright-core';
import { readFileSync, readdirSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const goldenDir = resolve(process.env.CARDS_GOLDEN_DIR || join(here, '../../cards/testdata'));
const outDir = resolve(process.env.CARDS_RENDER_OUT || join(here, 'out'));
const exe = process.env.CHROMIUM || '/usr/bin/chromium';
const only = process.env.CARDS_ONLY || '';
mkdirSync(outDir, { recursive: true });
if (!existsSync(exe)) {
  console.log(`SKIP cards render: no Chromium at ${exe}`);
  process.exit(0);
}

const acJS = require.resolve('adaptivecards/dist/adaptivecards.min.js');
const mdJS = require.resolve('markdown-it/dist/markdown-it.min.js');
const hostConfig = JSON.parse(readFileSync(join(here, 'hostconfig.json'), 'utf8'));

// Teams-like chrome around the renderer's own markup: the message bubble, and
// buttons styled as Teams styles them (positive = filled brand, destructive = red).
const css = `
body { margin: 0; background: #F5F5F5; font-family: 'Segoe UI', 'Liberation Sans', sans-serif; }
#bubble { width: 520px; margin: 16px; background: #fff; border-radius: 6px; overflow: hidden;
  box-shadow: 0 1px 2px rgba(0,0,0,.14), 0 0 2px rgba(0,0,0,.12); }
.ac-pushButton { font: 600 14px 'Segoe UI', 'Liberation Sans', sans-serif; padding: 5px 12px; min-height: 32px;
  border-radius: 4px; border: 1px solid #D1D1D1; background: #fff; color: #242424; cursor: pointer;
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ac-pushButton.style-positive { background: #5B5FC7; border-color: #5B5FC7; color: #fff; }
.ac-pushButton.style-destructive { color: #C4314B; border-color: #C4314B; }
.ac-pushButton[aria-expanded="true"] { background: #EBEBEB; }
.ac-input, .ac-textInput, .ac-numberInput, .ac-multichoiceInput { font: 14px 'Segoe UI', 'Liberation Sans', sans-serif;
  border: 1px solid #D1D1D1; border-bottom-color: #616161; border-radius: 4px; padding: 5px 8px; box-sizing: border-box; width: 100%; }
.ac-textBlock p { margin: 0; }
.ac-textBlock at, .mention { color: #4F52B2; font-weight: 600; }
`;

const files = readdirSync(goldenDir).filter((f) => f.endsWith('.golden.json') && f.includes(only)).sort();
if (files.length === 0) {
  console.error(`no golden cards in ${goldenDir}`);
  process.exit(1);
}

// mentionsAsTeams rewrites <at>Name</at> in text blocks to the highlighted name Teams
// shows, but only where msteams.entities declares that exact mention, as Teams does.
function mentionsAsTeams(card) {
  const texts = new Set((card.msteams?.entities || []).filter((e) => e.type === 'mention').map((e) => e.text));
  const walk = (v) => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    if (v.type === 'TextBlock' && typeof v.text === 'string') {
      v.text = v.text.replace(/<at>(.*?)<\/at>/g, (m, name) => (texts.has(m) ? `**${name}**` : m));
    }
    Object.values(v).forEach(walk);
  };
  walk(card.body);
  return card;
}

const started = Date.now();
const browser = await chromium.launch({
  executablePath: exe, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const failures = [];
const aborted = new Set();
try {
  const ctx = await browser.newContext({ viewport: { width: 560, height: 400 }, locale: 'en-US', timezoneId: 'UTC', deviceScaleFactor: 1 });
  await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.protocol === 'file:' || u.protocol === 'data:' || u.protocol === 'about:' ||
        u.hostname === 'localhost' || u.hostname === '127.0.0.1' || u.hostname === '[::1]') return route.continue();
    aborted.add(u.origin);
    return route.abort();
  });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') pageErrors.push(m.text()); });
  await page.setContent(`<!doctype html><html><head><meta charset="utf-8"><style>${css}</style></head><body><div id="bubble"></div></body></html>`);
  await page.addScriptTag({ path: mdJS });
  await page.addScriptTag({ path: acJS });
  for (const f of files) {
    const name = f.replace(/\.golden\.json$/, '');
    const json = mentionsAsTeams(JSON.parse(readFileSync(join(goldenDir, f), 'utf8')));
    pageErrors.length = 0;
    const res = await page.evaluate(({ json, hostConfig }) => {
      const AC = window.AdaptiveCards;
      const md = window.markdownit({ html: false, linkify: false, breaks: false });
      AC.AdaptiveCard.onProcessMarkdown = (text, result) => { result.outputHtml = md.render(text); result.didProcess = true; };
      const card = new AC.AdaptiveCard();
      card.hostConfig = new AC.HostConfig(hostConfig);
      const sc = new AC.SerializationContext();
      card.parse(json, sc);
      const events = [];
      const say = (e) => `${AC.ValidationPhase[e.phase]}/${AC.ValidationEvent[e.event]}: ${e.message}`;
      for (let i = 0; i < sc.eventCount; i++) events.push(say(sc.getEventAt(i)));
      for (const e of card.validateProperties().validationEvents) events.push(say(e));
      const bubble = document.getElementById('bubble');
      bubble.replaceChildren();
      const el = card.render();
      if (!el) return { events, empty: true };
      bubble.appendChild(el);
      // Timing: wait for images (data: URIs) to decode so the badge shows.
      return { events, empty: el.innerText.trim() === '', version: card.version?.toString() };
    }, { json, hostConfig });
    await page.evaluate(() => Promise.all([...document.images].map((i) => i.decode().catch(() => {}))));
    const bubble = page.locator('#bubble');
    await bubble.screenshot({ path: join(outDir, `${name}.png`) });
    const problems = [...res.events, ...pageErrors];
    if (res.empty) problems.push('rendered nothing');
    const broken = await page.evaluate(() => [...document.images].filter((i) => !i.complete || i.naturalWidth === 0).length);
    if (broken) problems.push(`${broken} image(s) did not load`);
    // A card with a ShowCard (the Reject form) is shot again with it open.
    const show = (json.actions || []).find((a) => a.type === 'Action.ShowCard');
    if (show) {
      await page.locator('#bubble .ac-pushButton', { hasText: show.title }).first().click();
      await bubble.screenshot({ path: join(outDir, `${name}.open.png`) });
    }
    if (problems.length) failures.push(`${name}: ${problems.join('; ')}`);
    console.log(`${problems.length ? 'FAIL' : 'ok  '} ${name}${problems.length ? ' — ' + problems.join('; ') : ''}`);
  }
} finally {
  await browser.close();
}
if (aborted.size) console.log('aborted non-local requests to:', [...aborted].join(', '));
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(`${files.length - failures.length} passed, ${failures.length} failed (${files.length} cards in ${secs}s, PNGs in ${outDir})`);
process.exit(failures.length ? 1 : 0);
