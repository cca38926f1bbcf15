/**
 * Query strings end up in logs and spans: values of parameters that look like credentials are
 * replaced before any output sees them. Key matching is case-insensitive and on the decoded key.
 * The agent makes one redactor (REDACT_QUERY_KEYS added to the defaults); the enrichment stage
 * applies it once per exchange, when an output first asks for the query.
 */

export const DEFAULT_SECRET_KEYS: readonly string[] = [
  'apikey',
  'api_key',
  'api-key',
  'key',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'auth',
  'authorization',
  'password',
  'passwd',
  'pwd',
  'secret',
  'client_secret',
  'signature',
  'sig',
  'session',
  'sessionid',
  'session_id',
  'jwt',
  'code',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
];

export const REDACTED = 'REDACTED';

export type Redactor = (query: string) => string;

/** A redactor for the default keys plus `extraKeys`. */
export function createRedactor(extraKeys: readonly string[] = []): Redactor {
  const keys = new Set([...DEFAULT_SECRET_KEYS, ...extraKeys].map((k) => k.trim().toLowerCase()).filter(Boolean));
  return (query) => redactWith(query, keys);
}

function redactWith(query: string, keys: ReadonlySet<string>): string {
  if (query === '') return query;
  const parts = query.split('&');
  let changed = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (!keys.has(decodeKey(part.slice(0, eq)))) continue;
    if (part.length === eq + 1) continue; // nothing to hide
    parts[i] = `${part.slice(0, eq + 1)}${REDACTED}`;
    changed = true;
  }
  return changed ? parts.join('&') : query;
}

function decodeKey(raw: string): string {
  let key = raw.replace(/\+/g, ' ');
  if (key.includes('%')) {
    try {
      key = decodeURIComponent(key);
    } catch {
      // a malformed escape: match on the raw text
    }
  }
  // PHP/Rails-style "user[password]" names the secret in its last bracket.
  const bracket = /\[([^\]]*)\]$/.exec(key);
  return (bracket && bracket[1] !== '' ? bracket[1] : key).trim().toLowerCase();
}
