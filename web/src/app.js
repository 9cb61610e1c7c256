// The board: sign-in, the filtered task list, quick add, the editor, the
// history with the audit chain's verdict, reminders, and live changes.

import { Api, ApiError } from './api.js';
import { Session, expired } from './auth.js';
import { Live } from './live.js';
import { el, historyItem, taskItem } from './tasks.js';
import { allZones, browserZone, localToRfc3339, reminderToIso, reminderToText, rfc3339ToLocal, validZone } from './time.js';

const $ = (id) => document.getElementById(id);
const config = JSON.parse($('config').textContent);
const session = new Session(config);

const state = {
  api: null,
  live: null,
  tasks: [], // the list as shown, in the server's order
  latest: new Map(), // task id -> newest {version, task, deleted} seen on the stream
  nextCursor: null,
  rendered: false,
  shownNotes: new Set(),
  unread: 0,
};

const uuid = () => crypto.randomUUID();

function say(node, text, kind = '') {
  node.textContent = text;
  node.className = `message ${kind}`.trim();
}

function describe(error) {
  if (error instanceof ApiError) {
    const field = error.problem.field ? ` (${error.problem.field})` : '';
    return `${error.problem.detail || error.message}${field}`;
  }
  return String(error.message || error);
}

// ---------- sign-in ----------

function showSignIn(message = '') {
  state.live?.stop();
  $('board').hidden = true;
  $('account').hidden = true;
  $('live').hidden = true;
  $('signin').hidden = false;
  $('ba-form').hidden = !config.better_auth_url;
  say($('signin-message'), message, message ? 'error' : '');
  (config.better_auth_url ? $('ba-email') : $('token-input')).focus();
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!session.use($('token-input').value)) {
    say($('signin-message'), 'That is not a token: paste the whole JWT (three parts separated by dots).', 'error');
    $('token-input').focus();
    return;
  }
  $('token-input').value = '';
  start();
});

$('ba-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await session.signInWithPassword($('ba-email').value, $('ba-password').value);
    $('ba-password').value = '';
    start();
  } catch (err) {
    say($('signin-message'), String(err.message), 'error');
  }
});

$('signout').addEventListener('click', () => {
  session.signOut();
  state.tasks = [];
  $('tasks').replaceChildren();
  showSignIn();
});

// ---------- the list ----------

function query() {
  const form = new FormData($('filters'));
  const params = new URLSearchParams({ limit: '200' });
  for (const [k, v] of form) if (v) params.set(k, v);
  return params;
}

async function load() {
  try {
    const page = await state.api.list(query());
    state.tasks = page.items.map(newest).filter(Boolean);
    state.nextCursor = page.next_cursor;
    render();
    say($('list-status'), state.tasks.length ? '' : 'No tasks here yet.');
  } catch (e) {
    if (e.status === 401) return showSignIn('Your sign-in has expired: sign in again.');
    say($('list-status'), `The tasks could not be loaded: ${describe(e)}`, 'error');
  }
}

async function loadMore() {
  const params = query();
  params.set('cursor', state.nextCursor);
  try {
    const page = await state.api.list(params);
    state.tasks.push(...page.items.map(newest).filter(Boolean));
    state.nextCursor = page.next_cursor;
    render();
  } catch (e) {
    say($('list-status'), `More tasks could not be loaded: ${describe(e)}`, 'error');
  }
}

/** The newer of a listed task and what the stream said about it since. */
function newest(task) {
  const seen = state.latest.get(task.id);
  if (!seen || seen.version < task.version) return task;
  return seen.deleted ? null : seen.task;
}

function render() {
  const list = $('tasks');
  const focused = document.activeElement;
  const focusKey = focused && list.contains(focused)
    ? { id: focused.closest('[data-task-id]')?.dataset.taskId, act: focused.dataset.act, toggle: focused.classList.contains('toggle') }
    : null;
  list.replaceChildren(...state.tasks.map((t) => taskItem(t, act)));
  $('more').hidden = !state.nextCursor;
  if (focusKey?.id) {
    const item = list.querySelector(`[data-task-id="${CSS.escape(focusKey.id)}"]`);
    const target = item && (focusKey.toggle ? item.querySelector('.toggle') : item.querySelector(`[data-act="${focusKey.act}"]`));
    (target || list).focus?.();
  }
  if (!state.rendered) {
    state.rendered = true;
    performance.mark('board-rendered');
  }
}

let reload = null;
/** Re-reads the list soon: the server decides what the filters and sort show. */
function reloadSoon(delay = 250) {
  clearTimeout(reload);
  reload = setTimeout(load, delay);
}

function upsert(task) {
  const i = state.tasks.findIndex((t) => t.id === task.id);
  if (i >= 0) {
    if (state.tasks[i].version > task.version) return;
    state.tasks[i] = task;
  } else {
    state.tasks.unshift(task);
  }
  render();
}

function remember(task, deleted = false) {
  const seen = state.latest.get(task.id);
  if (!seen || seen.version <= task.version) state.latest.set(task.id, { version: task.version, task, deleted });
}

let searchTimer = null;
$('filters').addEventListener('input', (e) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(load, e.target.id === 'f-q' ? 200 : 0);
});
$('filters').addEventListener('submit', (e) => {
  e.preventDefault();
  load();
});
$('more').addEventListener('click', loadMore);

async function refreshTags() {
  try {
    const tags = await state.api.tags();
    const select = $('f-tag');
    const current = select.value;
    select.replaceChildren(el('option', { value: '' }, 'Any'), ...tags.map((t) => el('option', { value: t.tag }, `#${t.tag} (${t.count})`)));
    select.value = tags.some((t) => t.tag === current) ? current : '';
  } catch {
    // the tag filter keeps its options
  }
}

// ---------- quick add ----------

$('quick').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('quick-text');
  const text = input.value.trim();
  if (!text) return;
  const status = $('quick-status');
  const key = uuid();
  try {
    const task = await state.api.quickAdd(text, browserZone(), key);
    say(status, `Added “${task.title}”.`);
    input.value = '';
    remember(task);
    if (!state.tasks.some((t) => t.id === task.id)) upsert(task);
    reloadSoon();
  } catch (err) {
    say(status, `Not added: ${describe(err)}`, 'error');
  }
  input.focus();
});

// ---------- actions on a task ----------

async function act(kind, task) {
  const status = $('list-status');
  try {
    if (kind === 'toggle') {
      const updated = await state.api.toggle(task);
      remember(updated);
      upsert(updated);
      say(status, updated.completed ? `Completed “${updated.title}”.` : `Reopened “${updated.title}”.`);
      reloadSoon();
    } else if (kind === 'delete') {
      if (!confirm(`Delete “${task.title}”?`)) return;
      await state.api.remove(task);
      remember({ ...task, version: task.version + 1 }, true);
      state.tasks = state.tasks.filter((t) => t.id !== task.id);
      render();
      say(status, `Deleted “${task.title}”.`);
      $('quick-text').focus();
    } else if (kind === 'edit') {
      openEditor(task);
    } else if (kind === 'history') {
      openHistory(task);
    }
  } catch (e) {
    if (e.status === 412) {
      say(status, `“${task.title}” was changed elsewhere; showing the latest version. Try again.`, 'warn');
      load();
    } else {
      say(status, `That did not work: ${describe(e)}`, 'error');
      load();
    }
  }
}

// ---------- the editor ----------

let editing = null;
let opener = null;

function openDialog(dialog) {
  const el = document.activeElement;
  // The list may be redrawn while the dialog is open: remember the button by its task.
  opener = { el, task: el?.closest?.('[data-task-id]')?.dataset.taskId, act: el?.dataset?.act };
  dialog.showModal();
}

/** The element that opened a dialog, or the same button of a redrawn list. */
function openerNow() {
  if (opener?.el && document.contains(opener.el)) return opener.el;
  if (!opener?.task) return null;
  return $('tasks').querySelector(`[data-task-id="${CSS.escape(opener.task)}"] [data-act="${opener.act}"]`);
}

function closeDialog(dialog) {
  dialog.close();
}

for (const dialog of document.querySelectorAll('dialog')) {
  dialog.addEventListener('close', () => (openerNow() || $('quick-text')).focus());
}

function openEditor(task) {
  editing = task;
  const zone = task.time_zone || browserZone();
  $('e-title').value = task.title;
  $('e-description').value = task.description || '';
  $('e-due').value = task.due_at ? rfc3339ToLocal(task.due_at, zone) : '';
  $('e-zone').value = zone;
  $('e-priority').value = task.priority || 'none';
  $('e-tags').value = (task.tags || []).join(', ');
  $('e-recurrence').value = task.recurrence ? task.recurrence.text || task.recurrence.rrule : '';
  $('e-reminders').value = (task.reminders || []).map(reminderToText).join(', ');
  say($('edit-error'), '');
  if (!$('zones').childElementCount) $('zones').append(...allZones().map((z) => el('option', { value: z })));
  openDialog($('editor'));
  $('e-title').focus();
}

const FIELD_INPUT = {
  title: 'e-title', description: 'e-description', due_at: 'e-due', time_zone: 'e-zone', priority: 'e-priority',
  tags: 'e-tags', recurrence: 'e-recurrence', reminders: 'e-reminders',
};

function editorFields() {
  const zone = $('e-zone').value.trim() || 'UTC';
  if (!validZone(zone)) {
    const err = new ApiError(422, { detail: `“${zone}” is not a time zone; pick one such as Europe/Berlin`, field: 'time_zone' });
    throw err;
  }
  const list = (id) => $(id).value.split(',').map((s) => s.trim()).filter(Boolean);
  const recurrence = $('e-recurrence').value.trim();
  const previous = editing.recurrence;
  let rule = null;
  if (recurrence) {
    if (previous && (recurrence === previous.text || recurrence === previous.rrule)) rule = { rrule: previous.rrule, anchor: previous.anchor };
    else if (/^(RRULE:)?FREQ=/i.test(recurrence)) rule = { rrule: recurrence.replace(/^RRULE:/i, '') };
    else rule = { text: recurrence };
  }
  return {
    title: $('e-title').value,
    description: $('e-description').value || null,
    due_at: $('e-due').value ? localToRfc3339($('e-due').value, zone) : null,
    time_zone: $('e-due').value ? zone : null,
    priority: $('e-priority').value,
    tags: list('e-tags'),
    recurrence: rule,
    reminders: list('e-reminders').map(reminderToIso),
  };
}

$('edit-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = $('edit-error');
  try {
    const updated = await state.api.patch(editing, editorFields());
    remember(updated);
    upsert(updated);
    closeDialog($('editor'));
    say($('list-status'), `Saved “${updated.title}”.`);
    reloadSoon();
    refreshTags();
  } catch (err) {
    const field = err.problem?.field?.split(/[.[]/)[0];
    say(error, err.status === 412 ? 'This task was changed elsewhere: close and edit it again.' : `Not saved: ${describe(err)}`, 'error');
    if (FIELD_INPUT[field]) {
      $(FIELD_INPUT[field]).setAttribute('aria-invalid', 'true');
      $(FIELD_INPUT[field]).focus();
    }
  }
});
$('edit-form').addEventListener('input', (e) => e.target.removeAttribute('aria-invalid'));
$('edit-cancel').addEventListener('click', () => closeDialog($('editor')));

// ---------- history and the audit chain ----------

async function openHistory(task) {
  const list = $('history-list');
  const verdict = $('history-verify');
  $('history-title').textContent = `History of “${task.title}”`;
  list.replaceChildren(el('li', {}, 'Loading…'));
  verdict.textContent = '';
  verdict.className = 'verify';
  openDialog($('history'));
  $('history-close').focus();
  const zone = task.time_zone || browserZone();
  const [entries, check] = await Promise.allSettled([state.api.history(task.id), state.api.verify()]);
  if (entries.status === 'fulfilled') {
    list.replaceChildren(...(entries.value.length ? entries.value.map((e) => historyItem(e, zone)) : [el('li', {}, 'No audit entries yet.')]));
  } else {
    list.replaceChildren(el('li', {}, `The history could not be loaded: ${describe(entries.reason)}`));
  }
  if (check.status === 'fulfilled') {
    const v = check.value;
    verdict.textContent = v.intact
      ? `✓ Audit chain intact: ${v.entries} entries verified, head ${String(v.head_hash).slice(0, 12)}…`
      : `✗ Audit chain broken at entry ${v.broken_at} (of ${v.entries})`;
    verdict.className = v.intact ? 'verify ok' : 'verify bad';
  } else {
    verdict.textContent = `The chain could not be verified: ${describe(check.reason)}`;
    verdict.className = 'verify bad';
  }
}
$('history-close').addEventListener('click', () => closeDialog($('history')));

// ---------- reminders ----------

function setUnread(n) {
  state.unread = Math.max(0, n);
  $('unread').textContent = String(state.unread);
  $('bell').setAttribute('aria-label', `Notifications, ${state.unread} unread`);
}

/** The unread count, from the inbox (the newest 50). */
function refreshUnread() {
  state.api.notifications().then((items) => setUnread(items.filter((n) => !n.read_at).length), () => {});
}

function toast(note) {
  if (state.shownNotes.has(note.id)) return;
  state.shownNotes.add(note.id);
  refreshUnread();
  const zone = browserZone();
  const item = el('div', { class: 'toast', role: 'alert', 'data-notification-id': note.id },
    el('p', {}, el('strong', {}, 'Reminder: '), note.title || 'a task'),
    note.due_at ? el('p', { class: 'meta' }, `Due ${new Date(note.due_at).toLocaleString(undefined, { timeZone: zone })}`) : null,
    el('div', { class: 'actions' },
      el('button', { type: 'button', onclick: () => read(note.id, item) }, 'Mark read'),
      el('button', { type: 'button', class: 'ghost', onclick: () => item.remove() }, 'Dismiss')));
  $('toasts').append(item);
  if ('Notification' in window && Notification.permission === 'granted') {
    try {
      new Notification(`Reminder: ${note.title || 'a task'}`, { tag: note.id, body: note.due_at ? `Due ${new Date(note.due_at).toLocaleString()}` : '' });
    } catch {
      // some browsers allow notifications only from a service worker
    }
  }
}

async function read(id, item) {
  try {
    await state.api.markRead(id);
    item?.remove();
  } catch (e) {
    say($('list-status'), `Could not mark it read: ${describe(e)}`, 'error');
  }
}

$('bell').addEventListener('click', async () => {
  const list = $('inbox-list');
  list.replaceChildren(el('li', {}, 'Loading…'));
  openDialog($('inbox'));
  $('inbox-close').focus();
  try {
    const items = await state.api.notifications();
    list.replaceChildren(...(items.length ? items.map((n) => el('li', { class: n.read_at ? 'read' : 'unread' },
      el('span', {}, `${n.read_at ? '' : '● '}${n.title || 'a task'}`),
      el('time', { datetime: n.time }, new Date(n.time).toLocaleString()),
      n.read_at ? null : el('button', { type: 'button', class: 'ghost', onclick: (e) => { read(n.id); e.target.remove(); } }, 'Mark read')))
      : [el('li', {}, 'No notifications.')]));
  } catch (e) {
    list.replaceChildren(el('li', {}, `Could not load them: ${describe(e)}`));
  }
});
$('inbox-close').addEventListener('click', () => closeDialog($('inbox')));

$('allow-notify').addEventListener('click', async () => {
  await Notification.requestPermission();
  $('allow-notify').hidden = Notification.permission !== 'default';
});

// ---------- live changes ----------

const LIVE_TEXT = { live: '● Live', reconnecting: 'Reconnecting…', 'signed-out': 'Signed out' };

function onChange(entry) {
  const task = entry.data?.task;
  if (!task) return;
  const deleted = entry.type === 'com.todo.task.deleted.v1';
  remember(task, deleted);
  if (deleted) {
    state.tasks = state.tasks.filter((t) => t.id !== task.id);
    render();
  } else {
    upsert(task);
  }
  reloadSoon();
  if (entry.type === 'com.todo.task.created.v1' || deleted) refreshTags();
}

function onStatus(s) {
  if (s === 'signed-out') return showSignIn('Your sign-in has expired: sign in again.');
  const live = $('live');
  live.hidden = false;
  live.textContent = LIVE_TEXT[s] || s;
  live.dataset.state = s;
}

// ---------- start ----------

async function start() {
  if (expired(session.token) && !(await session.renew())) return showSignIn('That token has expired: get a new one.');
  state.api = new Api(config, session.user, () => session.token, () => session.renew());
  $('signin').hidden = true;
  $('board').hidden = false;
  $('account').hidden = false;
  $('who').textContent = session.name;
  $('allow-notify').hidden = !('Notification' in window) || Notification.permission !== 'default';
  onStatus('reconnecting');
  state.live?.stop();
  // The feed's head first, then the list: a change made in between arrives on the stream.
  let head = null;
  try {
    head = await state.api.feedHead();
  } catch (e) {
    if (e.status === 401) return showSignIn('That token was refused: sign in again.');
  }
  await load();
  refreshTags();
  refreshUnread();
  state.live = new Live(state.api, {
    change: onChange,
    notification: (entry) => toast({ id: entry.event_id, ...entry.data }),
    read: (entry) => {
      document.querySelector(`[data-notification-id="${CSS.escape(String(entry.data?.notification_id))}"]`)?.remove();
      refreshUnread();
    },
    status: onStatus,
  });
  state.live.start(head);
}

if (session.restore()) start();
else showSignIn();
