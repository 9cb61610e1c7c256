// Who is signed in: a bearer token from `#token=` in the address (what
// `cargo xtask dev` prints), pasted into the form, or issued by Better Auth
// (its JWT plugin's `GET /api/auth/token`) where one is configured.

const KEY = 'todo.token';

/** The claims of a JWT, unverified (the services verify it); `null` if unreadable. */
export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      atob(part).split('').map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''),
    );
    const value = JSON.parse(json);
    return typeof value?.sub === 'string' && value.sub ? value : null;
  } catch {
    return null;
  }
}

/** Whether `token`'s `exp` has passed (with 10 s to spare). */
export function expired(token) {
  const c = claims(token);
  return !c || (typeof c.exp === 'number' && c.exp * 1000 < Date.now() + 10_000);
}

export class Session {
  constructor(config) {
    this.betterAuth = config.better_auth_url || '';
    this.token = null;
  }

  /** Takes `#token=` from the address (and removes it), else the stored token. */
  restore() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const fromHash = hash.get('token');
    if (fromHash) {
      history.replaceState(null, '', location.pathname + location.search);
      if (this.use(fromHash)) return true;
    }
    const stored = localStorage.getItem(KEY);
    return Boolean(stored && this.use(stored));
  }

  /** Signs in with `token`; false when it is not a readable JWT. */
  use(token) {
    const trimmed = token.trim().replace(/^Bearer\s+/i, '');
    if (!claims(trimmed)) return false;
    this.token = trimmed;
    localStorage.setItem(KEY, trimmed);
    return true;
  }

  get user() {
    return this.token ? claims(this.token).sub : null;
  }

  get name() {
    const c = this.token && claims(this.token);
    return c ? c.name || c.email || c.sub : '';
  }

  signOut() {
    this.token = null;
    localStorage.removeItem(KEY);
  }

  /** Better Auth: signs in with email and password, then takes its JWT. */
  async signInWithPassword(email, password) {
    const r = await fetch(`${this.betterAuth}/api/auth/sign-in/email`, {
      method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    if (!r.ok) throw new Error('the email or the password is wrong');
    if (!(await this.renew())) throw new Error('signed in, but Better Auth issued no token (is its JWT plugin enabled?)');
  }

  /** A fresh token from Better Auth's session (its JWTs last 15 minutes). */
  async renew() {
    if (!this.betterAuth) return false;
    try {
      const r = await fetch(`${this.betterAuth}/api/auth/token`, { credentials: 'include' });
      if (!r.ok) return false;
      const { token } = await r.json();
      return this.use(token);
    } catch {
      return false;
    }
  }
}
