// The REST API (/api/v1) with the token kept in this tab's session storage.

const KEY = 'scalepilot.token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  sessionStorage.setItem(KEY, t);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

/** An error the API answered with (`{"error": {"code", "message", "field"}}`), or a network one. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** Called on a 401: the token is gone or was revoked; the app goes back to the login form. */
let onUnauthorized = () => {};
export function setOnUnauthorized(f) {
  onUnauthorized = f;
}

async function request(method, path, body, tok) {
  const headers = { Accept: 'application/json' };
  const t = tok ?? token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach scalepilot: ${e.message}`);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = data && data.error ? data.error : {};
    const err = new ApiError(
      res.status,
      e.code || `http_${res.status}`,
      e.message || `${method} ${path}: HTTP ${res.status}`,
      e.field,
    );
    if (res.status === 401 && tok === undefined) onUnauthorized(err);
    throw err;
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  /** With an explicit token: used by the login form before the token is kept. */
  whoami: (tok) => request('GET', '/whoami', undefined, tok),
  // The first 1,000 groups (the API's largest page): the table is for reading, not for a fleet
  // of 100,000 (use the API's cursor for that).
  groups: () => request('GET', '/groups?limit=1000'),
  group: (name) => request('GET', `/groups/${enc(name)}`),
  series: (name) => request('GET', `/groups/${enc(name)}/series`),
  activities: (name, cursor, limit = 50) => {
    let q = `?group=${enc(name)}&limit=${limit}`;
    if (cursor != null) q += `&cursor=${enc(cursor)}`;
    return request('GET', `/activities${q}`);
  },
  audit: (cursor, limit = 100) => {
    let q = `?limit=${limit}`;
    if (cursor != null) q += `&cursor=${enc(cursor)}`;
    return request('GET', `/audit${q}`);
  },
  scale: (name, replicas, reason, force) =>
    request('POST', `/groups/${enc(name)}/scale`, { replicas, reason, force }),
  enable: (name) => request('POST', `/groups/${enc(name)}/enable`, {}),
  disable: (name) => request('POST', `/groups/${enc(name)}/disable`, {}),
  pause: (name, scaleIn, scaleOut) =>
    request('POST', `/groups/${enc(name)}/pause`, { scale_in: scaleIn, scale_out: scaleOut }),
};
