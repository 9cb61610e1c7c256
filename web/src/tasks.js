// How a task looks in the list: built with DOM calls (never HTML strings), so
// a title is always text.

import { humanDate, reminderToText } from './time.js';

const PRIORITY_LABEL = { urgent: 'Urgent', high: 'High', medium: 'Medium', low: 'Low' };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export { el };

/** Whether a task is open and past its due date. */
export const overdue = (task) => !task.completed && task.due_at && new Date(task.due_at) < new Date();

/** The list item of `task`; `act(kind, task)` runs its buttons. */
export function taskItem(task, act) {
  const titleId = `t-${task.id}`;
  const meta = el('p', { class: 'meta' });
  if (task.due_at) {
    meta.append(el('span', { class: overdue(task) ? 'due overdue' : 'due' },
      overdue(task) ? 'Overdue: ' : 'Due ', humanDate(task.due_at, task.time_zone || 'UTC'),
      task.time_zone && task.time_zone !== 'UTC' ? ` (${task.time_zone})` : ''));
  }
  if (task.recurrence) {
    meta.append(el('span', { class: 'repeat' }, `Repeats ${task.recurrence.text || task.recurrence.rrule}`));
  }
  if (task.reminders?.length) {
    meta.append(el('span', { class: 'reminders' }, `Reminders: ${task.reminders.map(reminderToText).join(', ')}`));
  }
  const tags = task.tags?.length ? el('ul', { class: 'tags', 'aria-label': 'Tags' }, ...task.tags.map((t) => el('li', {}, `#${t}`))) : null;
  const priority = PRIORITY_LABEL[task.priority]
    ? el('span', { class: `priority p-${task.priority}` }, PRIORITY_LABEL[task.priority], el('span', { class: 'visually-hidden' }, ' priority'))
    : null;
  return el('li', { class: task.completed ? 'task done' : 'task', 'data-task-id': task.id, 'aria-labelledby': titleId },
    el('input', {
      type: 'checkbox', class: 'toggle', id: `c-${task.id}`, checked: task.completed,
      'aria-label': `${task.completed ? 'Reopen' : 'Complete'} “${task.title}”`,
      onchange: () => act('toggle', task),
    }),
    el('div', { class: 'body' },
      el('p', { class: 'title', id: titleId }, task.title, priority),
      task.description ? el('p', { class: 'description' }, task.description) : null,
      meta.childElementCount ? meta : null,
      tags),
    el('div', { class: 'item-actions' },
      el('button', { type: 'button', class: 'ghost', 'data-act': 'edit', 'aria-label': `Edit “${task.title}”`, onclick: () => act('edit', task) }, 'Edit'),
      el('button', { type: 'button', class: 'ghost', 'data-act': 'history', 'aria-label': `History of “${task.title}”`, onclick: () => act('history', task) }, 'History'),
      el('button', { type: 'button', class: 'ghost danger', 'data-act': 'delete', 'aria-label': `Delete “${task.title}”`, onclick: () => act('delete', task) }, 'Delete')));
}

const EVENT_WORDS = {
  'com.todo.task.created.v1': 'Created',
  'com.todo.task.updated.v1': 'Updated',
  'com.todo.task.completed.v1': 'Completed',
  'com.todo.task.deleted.v1': 'Deleted',
  'com.todo.reminder.due.v1': 'Reminder fired',
};

/** One audit entry as a history line. */
export function historyItem(entry, zone) {
  let what = EVENT_WORDS[entry.event_type] || entry.event_type;
  let fields = entry.event_type === 'com.todo.task.completed.v1' ? [] : entry.data?.changed || [];
  if (fields.includes('completed') && entry.data?.task?.completed === false) {
    what = 'Reopened';
    fields = fields.filter((f) => f !== 'completed');
  }
  const changed = fields.length ? ` (${fields.join(', ')})` : '';
  return el('li', {},
    el('span', { class: 'what' }, what + changed),
    el('time', { datetime: entry.event_time }, humanDate(entry.event_time, zone)),
    el('code', { class: 'hash', title: `entry ${entry.position}, hash ${entry.hash}` }, `#${entry.position} ${entry.hash.slice(0, 10)}…`));
}
