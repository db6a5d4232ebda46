// The Playground flows for the run form, quorum, expiry, trigger failure and the chat
// commands (e2e.mjs has the browser setup and the first flows). Each flow asserts on the
// visible text of the cards and takes a numbered screenshot after every step. The pipelines
// they use are in gatebot.e2e.yaml.

// flows binds the flows to e2e.mjs's helpers: h has page, send, waitFor, screenshot,
// botMessages, chatText, escapeRe, setActAs, StepError, USER, RUN_MS.
export function flows(h) {
  const { page, send, waitFor, screenshot, botMessages, escapeRe, StepError, USER } = h;
  const fail = async (msg) => { throw new StepError(`${msg}\n${await h.chatText(page)}`); };
  const button = (card, name) => card.getByRole('button', { name, exact: true });
  const gateIdRe = /Gate (g_[a-z0-9]{8})/;

  // newCard waits for the newest bot card after index before whose text matches re.
  async function newCard(before, re, what) {
    return waitFor(page, what, async () => {
      const n = await botMessages(page).count();
      for (let i = n - 1; i >= before; i--) {
        const m = botMessages(page).nth(i);
        if (await m.locator('.ac-adaptiveCard').count() === 0) continue;
        if (re.test(await m.innerText())) return { index: i, card: m };
      }
      return null;
    });
  }

  // newReply waits for a bot message (text or card) after index before matching re.
  async function newReply(before, re, what) {
    return waitFor(page, what, async () => {
      const n = await botMessages(page).count();
      for (let i = n - 1; i >= before; i--) {
        const m = botMessages(page).nth(i);
        if (re.test(await m.innerText())) return { index: i, msg: m };
      }
      return null;
    });
  }

  async function cardText(card, re, what, ms) {
    await waitFor(page, `${what} (the card must match ${re})`, async () => re.test(await card.innerText()), ms);
    return card.innerText();
  }

  async function shortIdOf(card) {
    const m = gateIdRe.exec(await card.innerText());
    if (!m) await fail('the gate card shows no "Gate g_…" id');
    return m[1];
  }

  // byGate finds the message that is gate id's card (cards are looked up by their id, not
  // their place, when other messages came after them).
  function byGate(id) {
    return botMessages(page).filter({ has: page.locator('.ac-adaptiveCard') }).filter({ hasText: `Gate ${id}` });
  }

  // sendAndWait sends text and waits for the bot's answer matching re.
  async function sendAndWait(text, re, what, opts) {
    const before = await botMessages(page).count();
    h.log(`  send ${opts?.mention ? '@Test Bot ' : ''}${text}`);
    await send(page, text, opts);
    return newReply(before, re, what);
  }

  // runStatuses follows the run on card until succeeded, screenshotting the first
  // in-progress state different from what the previous screenshot showed.
  async function followRun(card, prefix) {
    const seen = [];
    const note = async () => {
      const m = /\b(queued|running|succeeded|failed|cancelled)\b/.exec(await card.innerText());
      if (m && seen.at(-1) !== m[1]) seen.push(m[1]);
      return m?.[1];
    };
    await waitFor(page, 'the card to show the run running', async () => ['running', 'succeeded'].includes(await note()), h.RUN_MS);
    await card.scrollIntoViewIfNeeded();
    await screenshot(page, `${prefix}-run-${seen.at(-1)}`);
    await waitFor(page, 'the run status to reach succeeded (the card at the same place)', async () => (await note()) === 'succeeded', h.RUN_MS);
    await card.scrollIntoViewIfNeeded();
    await screenshot(page, `${prefix}-succeeded`);
    h.log(`  run statuses seen on the card: ${seen.join(' -> ')}`);
  }

  return {
    // formQuorum: pipelines → Run… → a wrong version comes back on the form → the right one
    // turns the form into the gate card in place → two other members approve → succeeded.
    async formQuorum(prefix, { mention }) {
      const { index, msg: list } = await sendAndWait('pipelines', /Pick one to fill in its run form[\s\S]*quorum[\s\S]*Needs two approvers/, 'the pipeline list', { mention });
      // The innermost element holding both the quorum pipeline's text and a Run… button is its row.
      const runBtn = () => page.getByRole('button', { name: /^Run(…|\.\.\.)$/ });
      const entry = list.locator('div').filter({ hasText: 'Needs two approvers' }).filter({ has: runBtn() }).last();
      const buttons = await list.getByRole('button').allInnerTexts();
      if (await entry.count() === 0 || await entry.locator(runBtn()).count() !== 1) {
        await fail(`the quorum entry of the pipeline list has no "Run…" button; the list's buttons: ${JSON.stringify(buttons)}`);
      }
      await list.scrollIntoViewIfNeeded();
      await screenshot(page, `${prefix}-pipelines`);

      await entry.locator(runBtn()).click();
      const form = botMessages(page).nth(index);
      // "Run quorum" is the form's title; the list it replaces says "Pipelines".
      await cardText(form, /^\s*Run quorum[\s\S]*version/, 'the run form for quorum in place of the list');
      await waitFor(page, 'the run form\'s "Run" button and version field', async () =>
        (await button(form, 'Run').count()) === 1 && (await form.locator('input[type="text"], input:not([type])').count()) === 1);
      const version = form.locator('input[type="text"], input:not([type])').first();
      await version.fill('banana');
      await screenshot(page, `${prefix}-form`);
      await button(form, 'Run').click();
      const bad = await cardText(form, /expected format|must match|does not match/i, 'the version error on the form (the client checks the pattern; the bot checks it again)');
      if (!/version/i.test(bad)) await fail('the form error does not name the version input');
      await screenshot(page, `${prefix}-form-error`);

      await form.locator('input[type="text"], input:not([type])').first().fill('2.0.0');
      await button(form, 'Run').click();
      const gate = await cardText(form, /quorum[\s\S]*2\.0\.0[\s\S]*Gate g_/, 'the gate card in place of the form');
      if (!/0 of 2|2 more approvals|Waiting for 2/i.test(gate)) await fail('the gate card does not show a quorum of 2');
      if (await button(form, 'Approve').count() !== 1 || await button(form, 'Reject').count() !== 1) await fail('the gate card lacks Approve/Reject');
      await screenshot(page, `${prefix}-gate-card`);

      try {
        h.setActAs(h.MEGAN);
        await button(form, 'Approve').click();
        await cardText(form, /Approved by\s*Megan Bowen/, '"Approved by Megan Bowen" (1 of 2)');
        const one = await form.innerText();
        if (!/1 more approval|1 of 2/i.test(one)) await fail('after one approval the card does not say one more is needed');
        if (await button(form, 'Approve').count() !== 1) await fail('the card lost Approve before the quorum was reached');
        await screenshot(page, `${prefix}-approved-1-of-2`);

        h.setActAs(h.ADELE);
        // The answer to the click is the approved card. The engine starts the run within
        // milliseconds and its card update would replace that answer at once, so updates
        // are held until the answer has been seen and screenshotted.
        h.holdUpdates(true);
        const answered = page.waitForResponse((r) => r.url().endsWith('/v1/invoke'), { timeout: h.STEP_MS });
        await button(form, 'Approve').click();
        const body = await (await answered).json().catch(() => ({}));
        if (body.type !== 'application/vnd.microsoft.card.adaptive') await fail(`the second approval was not answered with a card: ${JSON.stringify(body).slice(0, 300)}`);
        await cardText(form, /Approved by\s*Megan Bowen[\s\S]*Approved by\s*Adele Vance/, 'both approvals on the card answered to the click');
      } finally {
        h.setActAs(null);
      }
      let approved;
      try {
        approved = await form.innerText();
        await form.scrollIntoViewIfNeeded();
        await screenshot(page, `${prefix}-approved`);
      } finally {
        h.holdUpdates(false);
      }
      if (await button(form, 'Approve').count() !== 0) await fail('the approved card still shows Approve');
      if (!/\bApproved\b[\s\S]*Starting the pipeline/.test(approved)) await fail('the card answered to the quorum-reaching click does not read "Approved … Starting the pipeline…"');
      await followRun(form, prefix);
    },

    // expiryOpen asks for a gate of the 20 s pipeline; expiry checks it later.
    async expiryOpen(prefix) {
      const before = await botMessages(page).count();
      h.log('  send /run expiring version=9.0.0');
      await send(page, '/run expiring version=9.0.0');
      const { card } = await newCard(before, /expiring[\s\S]*9\.0\.0[\s\S]*Gate g_/, 'the expiring gate card');
      const text = await card.innerText();
      if (!/Expires/.test(text)) await fail('the expiring gate card does not say when it expires');
      await screenshot(page, `${prefix}-gate-card`);
      return { id: await shortIdOf(card), openedAt: Date.now() };
    },

    async expiry(prefix, gate) {
      const card = byGate(gate.id).first();
      await card.scrollIntoViewIfNeeded();
      const left = 20000 - (Date.now() - gate.openedAt);
      const text = await cardText(card, /Expired/, `gate ${gate.id} to show Expired`, Math.max(left, 0) + h.STEP_MS);
      if (!/Expired[\s\S]*0 of 1 approval/.test(text)) await fail('the expired card does not say "Expired … with 0 of 1 approval"');
      await card.scrollIntoViewIfNeeded();
      await screenshot(page, `${prefix}-expired`);
      await waitFor(page, 'the requester\'s notice that the request expired', async () =>
        (await botMessages(page).allInnerTexts()).some((t) => /Your request to run expiring expired/.test(t)));
      if (await button(card, 'Approve').count() !== 0) await fail('the expired card still shows Approve');
    },

    // triggerFailure: the provider refuses the run at once → Could not start … + Retry;
    // Retry refuses again and counts the attempts.
    async triggerFailure(prefix) {
      const before = await botMessages(page).count();
      h.log('  send /run broken version=1.0.0');
      await send(page, '/run broken version=1.0.0');
      const { card } = await newCard(before, /broken[\s\S]*1\.0\.0[\s\S]*Gate g_/, 'the broken pipeline gate card');
      await screenshot(page, `${prefix}-gate-card`);
      await button(card, 'Approve').click();
      const text = await cardText(card, /Could not start the pipeline/, '"Could not start the pipeline" on the card');
      if (!/the simulator refuses every run/.test(text)) await fail('the card does not show the provider\'s message');
      await waitFor(page, 'a Retry button on the card', async () => (await button(card, 'Retry').count()) === 1);
      await card.scrollIntoViewIfNeeded();
      await screenshot(page, `${prefix}-retry`);
      await button(card, 'Retry').click();
      await cardText(card, /2 attempts so far/, 'the retried trigger to fail again ("2 attempts so far")');
      await card.scrollIntoViewIfNeeded();
      await screenshot(page, `${prefix}-retried`);
    },

    // commands: pending lists an open gate; status <short id> shows its card; cancel
    // <short id> not needed cancels it and the gate's own card says so.
    async commands(prefix) {
      const before = await botMessages(page).count();
      h.log('  send /run demo version=3.0.0');
      await send(page, '/run demo version=3.0.0');
      const { card } = await newCard(before, /demo[\s\S]*3\.0\.0[\s\S]*Gate g_/, 'the gate card for 3.0.0');
      const id = await shortIdOf(card);
      await screenshot(page, `${prefix}-gate-card`);

      const { msg: list } = await sendAndWait('pending', new RegExp(`Open gates[\\s\\S]*${escapeRe(id)}`), `the pending list to name ${id}`);
      const listed = await list.innerText();
      if (!/demo 3\.0\.0\s*Approval needed/.test(listed)) await fail('the pending list does not show "demo 3.0.0 / Approval needed"');
      await list.scrollIntoViewIfNeeded();
      await screenshot(page, `${prefix}-pending`);

      const { msg: status } = await sendAndWait(`status ${id.slice(2)}`, new RegExp(`demo[\\s\\S]*3\\.0\\.0[\\s\\S]*Gate ${escapeRe(id)}`), `the status card of ${id}`);
      if (!/Waiting for|Your approval/.test(await status.innerText())) await fail('the status card does not show the gate as pending');
      await status.scrollIntoViewIfNeeded();
      await screenshot(page, `${prefix}-status`);

      await sendAndWait(`cancel ${id.slice(2)} not needed`, new RegExp(`Cancelled ${escapeRe(id)}`), `"Cancelled ${id}" in answer to cancel`);
      await screenshot(page, `${prefix}-cancel`);
      const gate = byGate(id);
      await cardText(gate.first(), new RegExp(`Cancelled by\\s*${escapeRe(USER)}[\\s\\S]*not needed`), `the gate's card to read "Cancelled by ${USER} … not needed"`);
      await gate.first().scrollIntoViewIfNeeded();
      await screenshot(page, `${prefix}-cancelled-card`);
    },

    async typo(prefix) {
      await sendAndWait('pnding', /Did you mean pending\?/, '"Did you mean pending?" in answer to pnding');
      await screenshot(page, `${prefix}-did-you-mean`);
    },
  };
}
