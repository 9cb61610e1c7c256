// The board, end to end in Debian's Chromium (driven by playwright-core)
// against the real stack that `cargo xtask test` started. Every step throws on
// failure, and the process exits non-zero.
//
// Environment (set by xtask): WEB_URL, TODO_API_URL, CHROMIUM, BOARD_OUT_DIR,
// BOARD_USER_A/BOARD_TOKEN_A (one user, two tabs), BOARD_USER_B/BOARD_TOKEN_B
// (another user). Faults: the script prints `xtask:kill <process>` or
// `xtask:restart <process>` and waits for xtask's `done` line on stdin.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through \`cargo xtask test\``);
  return v;
};
const WEB = env('WEB_URL');
const API = env('TODO_API_URL');
const OUT = env('BOARD_OUT_DIR');
const A = { user: env('BOARD_USER_A'), token: env('BOARD_TOKEN_A') };
const B = { user: env('BOARD_USER_B'), token: env('BOARD_TOKEN_B') };
const SAMPLES = Number(process.env.BOARD_SYNC_SAMPLES || 20);
mkdirSync(OUT, { recursive: true });

// ---------- helpers ----------

const lines = createInterface({ input: process.stdin });
const acks = [];
lines.on('line', (l) => acks.shift()?.(l));
/** Asks xtask to kill or restart a process of the stack, and waits until it did. */
function fault(action, proc) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`xtask did not answer ${action} ${proc}`)), 180_000);
    acks.push((line) => {
      clearTimeout(timer);
      line.trim() === 'done' ? resolve() : reject(new Error(`xtask: ${line}`));
    });
    console.log(`xtask:${action} ${proc}`);
  });
}

async function api(who, method, path, body) {
  const r = await fetch(`${API}/api/${who.user}/${path}`, {
    method, headers: { authorization: `Bearer ${who.token}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const results = [];
async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - started });
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false, error: String(e.stack || e) });
    console.log(`not ok - ${name}\n${String(e.stack || e).replace(/^/gm, '  ')}`);
    throw e;
  }
}

const shot = (page, name) => page.screenshot({ path: `${OUT}/${name}.png` });

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(page, view) {
  await page.evaluate(AXE);
  const report = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const all = report.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  axeReport[view] = all;
  const bad = all.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${view}: serious accessibility violations: ${JSON.stringify(bad, null, 1)}`);
}
const axeReport = {};

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** Polls `probe` until it is true (10 s at most). */
async function until(probe, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits (a second at most: the dialog's close event is asynchronous) until the focused element's name matches. */
function focusOn(page, name, what) {
  return until(async () => name.test(await page.evaluate(() => document.activeElement?.getAttribute('aria-label') || '')), what, 1_000);
}

const item = (page, title) => page.locator('#tasks > li', { has: page.locator('.title', { hasText: title }) });

// ---------- the run ----------

const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const foreign = [];
async function open(who, { viewport = { width: 1100, height: 760 }, signIn = 'hash' } = {}) {
  const context = await browser.newContext({ viewport });
  await context.grantPermissions(['notifications'], { origin: WEB });
  await context.addInitScript(() => {
    // Records every browser notification the page shows.
    window.__notified = [];
    const Native = window.Notification;
    if (Native) {
      window.Notification = class extends Native {
        constructor(title, options) {
          super(title, options);
          window.__notified.push(title);
        }
      };
    }
  });
  const page = await context.newPage();
  const allowed = new Set([new URL(WEB).host, new URL(API).host, new URL(env('NOTIFY_SERVICE_URL')).host, new URL(env('AUDIT_SERVICE_URL')).host]);
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (!['data:', 'blob:'].includes(url.protocol) && !allowed.has(url.host)) foreign.push(r.url());
  });
  page.on('pageerror', (e) => console.log(`page error (${who.user}): ${e.message}`));
  page.on('dialog', (d) => d.accept());
  await page.goto(signIn === 'hash' ? `${WEB}/#token=${who.token}` : WEB);
  return { context, page };
}
const live = (page) => page.locator('#live[data-state="live"]').waitFor({ timeout: 30_000 });

let a1;
let a2;
let b;
const report = { samples: [], first_render_ms: [] };

try {
  await step('sign in by pasting a token; the sign-in view is accessible', async () => {
    a2 = await open(A, { signIn: 'paste' });
    await a2.page.locator('#signin').waitFor();
    await accessible(a2.page, 'sign-in');
    await shot(a2.page, 'sign-in');
    await a2.page.getByLabel(/Bearer token/).fill('not a token');
    await a2.page.getByRole('button', { name: 'Use this token' }).click();
    await a2.page.locator('#signin-message', { hasText: 'That is not a token' }).waitFor();
    await a2.page.getByLabel(/Bearer token/).fill(A.token);
    await a2.page.getByRole('button', { name: 'Use this token' }).click();
    await live(a2.page);
  });

  await step('#token= signs in, leaves the address, and the board renders', async () => {
    a1 = await open(A);
    b = await open(B);
    for (const { page } of [a1, b]) {
      await live(page);
      assert.equal(new URL(page.url()).hash, '', 'the token is removed from the address');
      const t = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const mark = performance.getEntriesByName('board-rendered')[0];
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return { rendered: mark?.startTime, fcp: fcp?.startTime, dom: nav?.domContentLoadedEventEnd };
      });
      assert.ok(t.rendered > 0, 'the board marks its first render');
      report.first_render_ms.push(t);
    }
    assert.match(await a1.page.locator('#who').textContent(), new RegExp(A.user));
  });

  const titles = [];
  await step(`a task added in one tab appears in the other (${SAMPLES} samples)`, async () => {
    await a2.page.evaluate(() => {
      window.__seen = {};
      window.__want = [];
      new MutationObserver(() => {
        const text = document.getElementById('tasks').textContent;
        const now = performance.timeOrigin + performance.now();
        for (const t of window.__want) if (!window.__seen[t] && text.includes(t)) window.__seen[t] = now;
      }).observe(document.getElementById('tasks'), { childList: true, subtree: true, characterData: true });
    });
    for (let i = 0; i < SAMPLES; i++) {
      const title = `Sync probe ${i} ${Date.now().toString(36)}`;
      titles.push(title);
      await a2.page.evaluate((t) => window.__want.push(t), title);
      await a1.page.getByLabel('Add a task').fill(title);
      const sent = await a1.page.evaluate(() => {
        const t = performance.timeOrigin + performance.now();
        document.getElementById('quick').requestSubmit();
        return t;
      });
      await item(a1.page, title).waitFor({ timeout: 10_000 });
      const seen = await a2.page.waitForFunction((t) => window.__seen[t], title, { timeout: 10_000 }).then((h) => h.jsonValue());
      report.samples.push(seen - sent);
    }
    await a1.page.locator('#quick-status', { hasText: 'Added' }).waitFor();
    report.quick_add_status = await a1.page.locator('#quick-status').textContent();
    report.sync_ms = { p50: percentile(report.samples, 50), p95: percentile(report.samples, 95), n: report.samples.length };
  });

  await step('quick add reads the sentence: the date, #tag and priority leave the title', async () => {
    const name = `Call mom ${Date.now().toString(36)}`;
    await a1.page.getByLabel('Add a task').fill(`${name} tomorrow 6pm #family p1`);
    await a1.page.getByLabel('Add a task').press('Enter');
    await item(a1.page, name).waitFor();
    assert.equal((await item(a1.page, name).locator('.title').textContent()).includes('#family'), false, 'the #tag left the title');
    assert.deepEqual(await item(a1.page, name).locator('ul.tags li').allTextContents(), ['#family'], 'the #tag became a tag');
    assert.equal(await a1.page.locator('#quick-status').textContent(), `Added “${name}”.`);
  });

  const recurring = `Water the plants ${Date.now().toString(36)}`;
  await step('edit due date, time zone, priority, tags, recurrence and reminders; a bad rule is refused in place', async () => {
    await a1.page.getByLabel('Add a task').fill(recurring);
    await a1.page.getByLabel('Add a task').press('Enter');
    await item(a1.page, recurring).waitFor();
    await item(a1.page, recurring).getByRole('button', { name: /^Edit/ }).click();
    const dialog = a1.page.locator('#editor');
    await dialog.waitFor();
    assert.equal(await a1.page.evaluate(() => document.activeElement.id), 'e-title', 'focus moves into the editor');
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    await dialog.getByLabel('Due', { exact: true }).fill(`${tomorrow}T09:00`);
    await dialog.getByLabel('Time zone').fill('Europe/Berlin');
    await dialog.getByLabel('Priority').selectOption('high');
    await dialog.getByLabel('Tags').fill('garden, e2e');
    await dialog.getByLabel('Reminders before due').fill('15m, 1h');
    await dialog.getByLabel('Repeats').fill('every blue moon');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await a1.page.locator('#edit-error', { hasText: 'recurrence' }).waitFor();
    assert.equal(await a1.page.evaluate(() => document.activeElement.id), 'e-recurrence', 'focus goes to the refused field');
    assert.equal(await dialog.getByLabel('Repeats').getAttribute('aria-invalid'), 'true');
    await accessible(a1.page, 'editor');
    await shot(a1.page, 'editor');
    await dialog.getByLabel('Repeats').fill('every day');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const other = item(a2.page, recurring);
    await other.locator('.repeat', { hasText: 'every day' }).waitFor({ timeout: 10_000 });
    await other.locator('.priority', { hasText: 'High' }).waitFor();
    await other.locator('.tags', { hasText: '#garden' }).waitFor();
    await other.locator('.reminders', { hasText: '15m, 1h' }).waitFor();
    const [task] = (await api(A, 'GET', `tasks?q=${encodeURIComponent(recurring)}`)).items;
    assert.equal(task.time_zone, 'Europe/Berlin');
    const berlin = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Berlin', dateStyle: 'short', timeStyle: 'short' });
    assert.equal(berlin.format(new Date(task.due_at)), `${tomorrow} 09:00`, `due 09:00 Berlin time: ${task.due_at}`);
    assert.deepEqual(task.reminders, ['PT15M', 'PT1H']);
    await shot(a1.page, 'board');
    await accessible(a1.page, 'board');
  });

  await step('completing a recurring task shows its next occurrence in both tabs; reopening works', async () => {
    const [first] = (await api(A, 'GET', `tasks?q=${encodeURIComponent(recurring)}`)).items;
    // By id: once checked, the list holds two tasks of that title (the next occurrence arrives).
    await a1.page.locator(`#c-${first.id}`).click();
    let next;
    for (const { page } of [a1, a2]) {
      await page.locator(`#tasks > li:not([data-task-id="${first.id}"])`, { has: page.locator('.title', { hasText: recurring }) }).waitFor({ timeout: 15_000 });
    }
    const all = (await api(A, 'GET', `tasks?status=all&q=${encodeURIComponent(recurring)}`)).items;
    next = all.find((t) => t.id !== first.id);
    assert.ok(next, 'the next occurrence exists');
    assert.equal(next.occurrence, 2);
    assert.equal(Date.parse(next.due_at) - Date.parse(first.due_at), 86_400_000, 'due one day later');
    await until(async () => (await item(a2.page, recurring).count()) === 1, 'the done occurrence leaves the open list');
    assert.equal(await item(a2.page, recurring).getAttribute('data-task-id'), next.id, 'the open occurrence is shown');
    await a1.page.getByLabel('Show').selectOption('completed');
    const done = a1.page.locator(`#tasks > li.done[data-task-id="${first.id}"]`);
    await until(async () => (await item(a1.page, recurring).count()) === 1 && (await done.count()) === 1, 'the Done list shows the completed one');
    await done.getByRole('checkbox').click();
    await a1.page.locator('#list-status', { hasText: 'Reopened' }).waitFor();
    const reopened = await api(A, 'GET', `tasks/${first.id}`);
    assert.equal(reopened.completed, false);
    await a1.page.getByLabel('Show').selectOption('pending');
  });

  await step("a task's history from the audit log, with the chain verified", async () => {
    const entry = item(a1.page, recurring).first();
    await entry.getByRole('button', { name: /^History/ }).click();
    const dialog = a1.page.locator('#history');
    await dialog.locator('#history-verify', { hasText: 'Audit chain intact' }).waitFor({ timeout: 10_000 });
    const words = await dialog.locator('#history-list').textContent();
    assert.match(words, /Created/);
    await accessible(a1.page, 'history');
    await shot(a1.page, 'history');
    await a1.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await focusOn(a1.page, /^History/, 'focus returns to the button that opened it');
  });

  await step('keyboard: skip link first, Enter opens the editor, Escape closes it', async () => {
    await a1.page.evaluate(() => document.activeElement.blur());
    await a1.page.locator('body').focus();
    await a1.page.evaluate(() => window.scrollTo(0, 0));
    await a1.page.reload();
    await live(a1.page);
    await a1.page.keyboard.press('Tab');
    assert.equal(await a1.page.evaluate(() => document.activeElement.className), 'skip');
    const edit = item(a1.page, titles[0]).getByRole('button', { name: /^Edit/ });
    await edit.focus();
    await a1.page.keyboard.press('Enter');
    await a1.page.locator('#editor').waitFor();
    await a1.page.keyboard.press('Escape');
    await a1.page.locator('#editor').waitFor({ state: 'hidden' });
    await focusOn(a1.page, /^Edit/, 'focus returns to the Edit button');
  });

  const reminded = `Call the dentist ${Date.now().toString(36)}`;
  await step('a reminder due in a few seconds shows in both tabs of its user, and as a browser notification', async () => {
    const now = Date.now();
    await api(A, 'POST', 'tasks', {
      title: reminded, due_at: new Date(now + 120_000).toISOString(), reminders: [new Date(now + 4_000).toISOString()],
    });
    for (const { page } of [a1, a2]) {
      await page.locator('.toast', { hasText: reminded }).waitFor({ timeout: 30_000 });
    }
    await a1.page.waitForFunction((t) => window.__notified.some((n) => n.includes(t)), reminded, { timeout: 5_000 });
    await shot(a1.page, 'reminder');
    // Marking it read in one tab clears it in the other.
    await a1.page.locator('.toast', { hasText: reminded }).getByRole('button', { name: 'Mark read' }).click();
    await a2.page.locator('.toast', { hasText: reminded }).waitFor({ state: 'detached', timeout: 10_000 });
  });

  await step('delete in one tab, gone in the other', async () => {
    const victim = titles[1];
    await item(a1.page, victim).getByRole('button', { name: /^Delete/ }).click();
    await item(a2.page, victim).waitFor({ state: 'detached', timeout: 10_000 });
    const left = (await api(A, 'GET', `tasks?status=all&q=${encodeURIComponent(victim)}`)).items;
    assert.equal(left.length, 0);
  });

  await step('the page recovers after the notify-service host is restarted, and misses nothing', async () => {
    await fault('kill', 'host-notify-service');
    await a1.page.locator('#live[data-state="reconnecting"]').waitFor({ timeout: 30_000 });
    const during = `Made while notify was down ${Date.now().toString(36)}`;
    await api(A, 'POST', 'tasks', { title: during });
    await fault('restart', 'host-notify-service');
    for (const { page } of [a1, a2]) {
      await live(page);
      await item(page, during).waitFor({ timeout: 30_000 });
    }
    const after = `Made after the restart ${Date.now().toString(36)}`;
    await api(A, 'POST', 'tasks', { title: after });
    await item(a2.page, after).waitFor({ timeout: 10_000 });
    titles.push(during, after);
  });

  await step("another user's board never shows them", async () => {
    const text = await b.page.locator('body').textContent();
    for (const t of [...titles, recurring, reminded]) assert.ok(!text.includes(t), `${B.user} sees ${t}`);
    assert.equal(await b.page.locator('.toast').count(), 0);
    assert.deepEqual(await b.page.evaluate(() => window.__notified), []);
    assert.equal((await api(B, 'GET', 'tasks?status=all')).items.length, 0);
  });

  await step('phone width: readable, no sideways scrolling, accessible', async () => {
    const phone = await open(A, { viewport: { width: 390, height: 844 } });
    await live(phone.page);
    await item(phone.page, recurring).first().waitFor();
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
    await accessible(phone.page, 'phone');
    await shot(phone.page, 'phone');
    await phone.context.close();
  });

  await step('nothing is loaded from anywhere but the stack (works offline)', async () => {
    assert.deepEqual(foreign, []);
  });
} finally {
  report.steps = results;
  report.axe = axeReport;
  writeFileSync(`${OUT}/report.json`, JSON.stringify(report, null, 2));
  await browser.close();
  lines.close();
}

const r = report.first_render_ms.map((t) => Math.round(t.rendered));
console.log(`board: first render ${r.join(', ')} ms after navigation; tab-to-tab p50 ${report.sync_ms.p50.toFixed(0)} ms, p95 ${report.sync_ms.p95.toFixed(0)} ms (n=${report.sync_ms.n})`);
console.log(`board e2e: ${results.filter((s) => s.ok).length} passed`);
