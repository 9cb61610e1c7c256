// The HTTP client of the board: todo-api, notify-service and audit-service,
// each at its configured base URL (empty: this page's origin).

/** An answer that is not 2xx, with its problem+json body when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

/** The path of the sentence-to-task route (todo-api; quick add). */
export const QUICK_ADD_PATH = 'tasks/quick';

const enc = encodeURIComponent;

export class Api {
  /**
   * @param {object} config  the page's settings (`todo_api_url`, `notify_url`, `audit_url`)
   * @param {() => string} token  the current bearer token
   * @param {() => Promise<boolean>} renew  gets a fresh token after a 401 (true when it did)
   */
  constructor(config, user, token, renew) {
    this.config = config;
    this.user = user;
    this.token = token;
    this.renew = renew;
  }

  async request(base, path, { method = 'GET', body, headers = {}, retried = false } = {}) {
    const init = { method, headers: { ...headers, authorization: `Bearer ${this.token()}` } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`${base}/${path}`, init);
    } catch (e) {
      throw new ApiError(0, { detail: 'the service cannot be reached; check your connection' });
    }
    if (response.status === 401 && !retried && (await this.renew())) {
      return this.request(base, path, { method, body, headers, retried: true });
    }
    const type = response.headers.get('content-type') || '';
    const data = response.status === 204 ? null : type.includes('json') ? await response.json() : await response.text();
    if (!response.ok) throw new ApiError(response.status, typeof data === 'object' ? data : { detail: data });
    return { data, etag: response.headers.get('etag'), status: response.status };
  }

  tasksPath(rest = '') {
    return `api/${enc(this.user)}/tasks${rest}`;
  }

  /** One page of tasks for `params` (a URLSearchParams). */
  list(params) {
    return this.request(this.config.todo_api_url, `${this.tasksPath()}?${params}`).then((r) => r.data);
  }

  create(task, idempotencyKey) {
    return this.request(this.config.todo_api_url, this.tasksPath(), {
      method: 'POST', body: task, headers: { 'idempotency-key': idempotencyKey },
    }).then((r) => r.data);
  }

  /** Creates a task from a sentence, read in `timeZone` (todo-api's quick add). */
  quickAdd(text, timeZone, idempotencyKey) {
    return this.request(this.config.todo_api_url, `api/${enc(this.user)}/${QUICK_ADD_PATH}`, {
      method: 'POST', body: { text, time_zone: timeZone }, headers: { 'idempotency-key': idempotencyKey },
    }).then((r) => r.data);
  }

  patch(task, fields) {
    return this.request(this.config.todo_api_url, this.tasksPath(`/${enc(task.id)}`), {
      method: 'PATCH', body: fields, headers: { 'if-match': `"${task.version}"` },
    }).then((r) => r.data);
  }

  toggle(task) {
    return this.request(this.config.todo_api_url, this.tasksPath(`/${enc(task.id)}/complete`), {
      method: 'PATCH', headers: { 'if-match': `"${task.version}"` },
    }).then((r) => r.data);
  }

  remove(task) {
    return this.request(this.config.todo_api_url, this.tasksPath(`/${enc(task.id)}`), {
      method: 'DELETE', headers: { 'if-match': `"${task.version}"` },
    });
  }

  tags() {
    return this.request(this.config.todo_api_url, `api/${enc(this.user)}/tags`).then((r) => r.data.items);
  }

  /** The change feed's head: the cursor a stream resumes after. */
  feedHead() {
    return this.request(this.config.notify_url, `api/${enc(this.user)}/changes?limit=1`).then((r) => r.data.head);
  }

  streamToken() {
    return this.request(this.config.notify_url, `api/${enc(this.user)}/stream-token`, { method: 'POST' }).then((r) => r.data.token);
  }

  streamUrl(token, after) {
    const query = new URLSearchParams({ token });
    if (after != null) query.set('after', String(after));
    return `${this.config.notify_url}/api/${enc(this.user)}/stream?${query}`;
  }

  notifications() {
    return this.request(this.config.notify_url, `api/${enc(this.user)}/notifications?limit=50`).then((r) => r.data.items);
  }

  markRead(id) {
    return this.request(this.config.notify_url, `api/${enc(this.user)}/notifications/${enc(id)}/read`, { method: 'POST' });
  }

  /** Every audit entry about one task, in chain order. */
  async history(taskId) {
    const items = [];
    let after = '';
    for (let page = 0; page < 20; page++) {
      const query = new URLSearchParams({ task_id: taskId, limit: '500' });
      if (after) query.set('after', after);
      const { data } = await this.request(this.config.audit_url, `audit/${enc(this.user)}?${query}`);
      items.push(...data.items);
      if (!data.next_cursor) break;
      after = data.next_cursor;
    }
    return items;
  }

  verify() {
    return this.request(this.config.audit_url, `audit/${enc(this.user)}/verify`).then((r) => r.data);
  }
}
