// Dates in a task's own IANA time zone, with nothing but the browser's Intl.

const pad = (n) => String(n).padStart(2, '0');
const formatters = new Map();

function parts(zone, date) {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return Object.fromEntries(f.formatToParts(date).map((p) => [p.type, p.value]));
}

/** Whether the browser knows `zone` as an IANA time zone. */
export function validZone(zone) {
  try {
    parts(zone, new Date());
    return true;
  } catch {
    return false;
  }
}

/** The browser's own time zone. */
export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/** Minutes east of UTC of `zone` at the instant `date`. */
function offsetMinutes(zone, date) {
  const p = parts(zone, date);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60000);
}

/** `YYYY-MM-DDTHH:mm` (a datetime-local value) in `zone` as RFC 3339 with its offset. */
export function localToRfc3339(local, zone) {
  const [d, t] = local.split('T');
  const [y, m, day] = d.split('-').map(Number);
  const [hh, mm] = t.split(':').map(Number);
  const wall = Date.UTC(y, m - 1, day, hh, mm);
  let offset = offsetMinutes(zone, new Date(wall));
  offset = offsetMinutes(zone, new Date(wall - offset * 60000));
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return `${d}T${pad(hh)}:${pad(mm)}:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** An RFC 3339 instant as a datetime-local value in `zone`. */
export function rfc3339ToLocal(iso, zone) {
  const p = parts(zone, new Date(iso));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** A short human date in `zone`, e.g. "Tue, Jan 7, 09:00". */
export function humanDate(iso, zone) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone: zone, weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  }).format(new Date(iso));
}

/** Every IANA zone the browser knows (for the time zone picker). */
export function allZones() {
  return typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : ['UTC'];
}

const UNITS = { m: 'M', min: 'M', h: 'H', d: 'D', w: 'W' };

/** "15m", "1h", "2d", "1w" as ISO 8601 durations; anything else unchanged. */
export function reminderToIso(text) {
  const m = /^(\d+)\s*(m|min|h|d|w)$/i.exec(text.trim());
  if (!m) return text.trim();
  const unit = UNITS[m[2].toLowerCase()];
  return unit === 'M' || unit === 'H' ? `PT${m[1]}${unit}` : `P${m[1]}${unit}`;
}

/** An ISO 8601 duration as the short form the editor shows ("PT15M" -> "15m"). */
export function reminderToText(value) {
  const m = /^P(?:(\d+)W|(\d+)D|T(\d+)H|T(\d+)M)$/.exec(value);
  if (!m) return value;
  const [, w, d, h, min] = m;
  return w ? `${w}w` : d ? `${d}d` : h ? `${h}h` : `${min}m`;
}
