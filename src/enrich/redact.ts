/**
 * Query strings and path parameters end up in logs and spans: values whose names look like
 * credentials are replaced before any output sees them. A name matches when, percent-decoded and
 * lowercased, with any array suffix removed (`token[]`, `password[0]`, `user[password]`), it
 * contains one of the patterns (token, secret, password, ... — a false positive such as
 * `keyboard` costs one hidden value, a false negative costs a leaked credential) or equals one of
 * the exact names. Pairs are split on `&` and `;`; a value that itself holds a URL with a secret
 * (`redirect=https%3A%2F%2Fa%2F%3Ftoken%3D...`) is hidden whole; path parameters after `;`
 * (`/app;jsessionid=...`) are redacted the same way.
 *
 * The agent makes one redactor (REDACT_QUERY_KEYS: `name` adds a pattern, `-name` turns a default
 * off); the enrichment stage applies it once per exchange, when an output first asks.
 */

/** Names containing any of these are secrets. */
export const DEFAULT_SECRET_PATTERNS: readonly string[] = [
  'token',
  'secret',
  'password',
  'passwd',
  'pwd',
  'auth',
  'key',
  'session',
  'signature',
  'credential',
  'jwt',
];

/** Names that are secrets only when they are exactly these (as substrings they are too common). */
export const DEFAULT_SECRET_NAMES: readonly string[] = ['code', 'sig'];

export const REDACTED = 'REDACTED';

export interface Redactor {
  /** the query (after '?', without it) with secret values replaced */
  query(query: string): string;
  /** the path with secret path parameters (`;name=value`) replaced */
  path(path: string): string;
}

/**
 * The default patterns and names, with `settings` applied: `name` adds a pattern, `-name` removes
 * a default pattern or exact name.
 */
export function createRedactor(settings: readonly string[] = []): Redactor {
  const patterns = new Set(DEFAULT_SECRET_PATTERNS);
  const names = new Set(DEFAULT_SECRET_NAMES);
  for (const raw of settings) {
    const s = raw.trim().toLowerCase();
    if (s.startsWith('-')) {
      patterns.delete(s.slice(1));
      names.delete(s.slice(1));
    } else if (s !== '') {
      patterns.add(s);
    }
  }
  const patternList = [...patterns];
  const isSecret = (name: string): boolean => {
    if (names.has(name)) return true;
    for (let i = 0; i < patternList.length; i++) if (name.includes(patternList[i])) return true;
    return false;
  };
  // A quick look that most queries pass without being split: no pattern, no exact name, no escape.
  const words = [...patternList, ...names].map(escapeRegExp);
  const maybe = words.length === 0 ? /(?!)/ : new RegExp(words.join('|'), 'i');
  const needsWork = (text: string): boolean => maybe.test(text) || text.includes('%');
  return {
    query: (query) => (query === '' || !needsWork(query) ? query : redactPairs(query, isSecret)),
    path(path) {
      const semi = path.indexOf(';');
      if (semi < 0 || !needsWork(path)) return path;
      // Each segment's parameters: /a;k=v;k2=v2/b;k3=v3
      return path
        .split('/')
        .map((segment) => {
          const at = segment.indexOf(';');
          return at < 0 ? segment : segment.slice(0, at + 1) + redactPairs(segment.slice(at + 1), isSecret);
        })
        .join('/');
    },
  };
}

/** name=value pairs separated by & or ;, separators kept as they were. */
function redactPairs(text: string, isSecret: (name: string) => boolean): string {
  const parts = text.split(/([&;])/);
  let changed = false;
  for (let i = 0; i < parts.length; i += 2) {
    const part = parts[i];
    const eq = part.indexOf('=');
    if (eq < 0 || part.length === eq + 1) continue; // a flag, or nothing to hide
    const value = part.slice(eq + 1);
    if (!isSecret(nameOf(part.slice(0, eq))) && !holdsSecret(value, isSecret)) continue;
    parts[i] = `${part.slice(0, eq + 1)}${REDACTED}`;
    changed = true;
  }
  return changed ? parts.join('') : text;
}

/** The name a secret would go by: percent-decoded, lowercased, array suffixes off. */
function nameOf(raw: string): string {
  let name = decode(raw.replace(/\+/g, ' '));
  // PHP/Rails style: "user[password]" names the secret in its last non-empty bracket; token[], password[0]
  const bracket = /\[([^\]]*)\]$/.exec(name);
  if (bracket) name = /^\d*$/.test(bracket[1]) ? name.slice(0, bracket.index) : bracket[1];
  return name.trim().toLowerCase();
}

/** A value that is itself an encoded query or URL carrying a secret (looked into 3 levels deep). */
function holdsSecret(value: string, isSecret: (name: string) => boolean, depth = 0): boolean {
  if (depth > 2 || (!value.includes('%') && !value.includes('?'))) return false;
  const decoded = decode(value);
  const q = decoded.indexOf('?');
  const inner = q >= 0 ? decoded.slice(q + 1) : decoded.includes('=') ? decoded : '';
  if (inner === '') return false;
  for (const part of inner.split(/[&;]/)) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) continue;
    if (isSecret(nameOf(part.slice(0, eq))) || holdsSecret(part.slice(eq + 1), isSecret, depth + 1)) return true;
  }
  return false;
}

function decode(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a malformed escape: match on the raw text
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
