// The live connection: notify-service's Server-Sent Events stream, resumed
// after the last cursor seen. Every (re)connect takes a fresh 60 s stream token
// and passes `after=<cursor>`, so a stream that ended (its lifetime), broke
// (a restart) or was refused (an expired token) continues where it stopped.

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;

export class Live {
  /**
   * @param {import('./api.js').Api} api
   * @param {object} on  `change(entry)`, `notification(entry)`, `read(entry)`, `status(state)`
   */
  constructor(api, on) {
    this.api = api;
    this.on = on;
    this.cursor = null;
    this.source = null;
    this.failures = 0;
    this.timer = null;
    this.stopped = false;
  }

  /** Starts after `cursor` (the feed head read before the task list). */
  start(cursor) {
    this.cursor = cursor;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.source?.close();
  }

  async open() {
    if (this.stopped) return;
    let token;
    try {
      token = await this.api.streamToken();
    } catch (e) {
      if (e.status === 401 || e.status === 403) return this.on.status('signed-out');
      return this.retry();
    }
    if (this.stopped) return;
    const source = new EventSource(this.api.streamUrl(token, this.cursor));
    this.source = source;
    const take = (handler) => (event) => {
      const cursor = Number(event.lastEventId);
      if (Number.isFinite(cursor) && event.lastEventId !== '') {
        if (this.cursor != null && cursor <= this.cursor && event.type !== 'ready') return; // seen
        this.cursor = cursor;
      }
      handler?.(JSON.parse(event.data));
    };
    source.addEventListener('ready', take(() => {
      this.failures = 0;
      this.on.status('live');
    }));
    source.addEventListener('change', take(this.on.change));
    source.addEventListener('notification', take(this.on.notification));
    source.addEventListener('notification.read', take(this.on.read));
    source.onerror = () => {
      // The browser would reconnect with the old token; reconnect ourselves.
      source.close();
      if (source !== this.source || this.stopped) return;
      this.on.status('reconnecting');
      this.retry();
    };
  }

  retry() {
    // At once after a stream that worked (it ended or broke); then backing off.
    const delay = this.failures === 0 ? 50 : Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1));
    this.failures += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay * (0.75 + Math.random() * 0.5));
  }
}
