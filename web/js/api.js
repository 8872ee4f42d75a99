// The management API client. The key lives in sessionStorage only (never in a URL, never in
// localStorage) and goes out as `Authorization: Bearer`. Every error carries the server's own
// message, so pages can show it as is.

const KEY_SLOT = 'switchyard.managementKey';
export const BASE = '/v0/management';

export const session = {
  get key() {
    return sessionStorage.getItem(KEY_SLOT) || '';
  },
  set(key) {
    sessionStorage.setItem(KEY_SLOT, key);
  },
  clear() {
    sessionStorage.removeItem(KEY_SLOT);
  },
};

export class ApiError extends Error {
  constructor(status, body, fallback) {
    super(serverMessage(body) || fallback || `HTTP ${status}`);
    this.status = status;
    this.body = body && typeof body === 'object' ? body : {};
  }
}

// The most precise text a JSON error carries: `message` (details, e.g. a config error with its
// line), else `error`; plain-text bodies as they are.
export function serverMessage(body) {
  if (!body) return '';
  if (typeof body === 'string') return body.trim().slice(0, 2000);
  const { error, message } = body;
  if (typeof message === 'string' && message.trim()) {
    return typeof error === 'string' && error && !message.includes(error) ? `${error}: ${message}` : message;
  }
  if (typeof error === 'string') return error;
  if (error && typeof error === 'object' && typeof error.message === 'string') return error.message;
  return '';
}

// Called with the error when an authenticated call answers 401 (the key stopped working).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

async function parse(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// `api(method, path, {json, body, headers, key, raw})`: path relative to /v0/management unless
// it starts with `/v1` or `http`. Answers the parsed body; `raw: true` answers the Response.
export async function api(method, path, options = {}) {
  const { json, body, headers = {}, key = session.key, raw = false, auth = true } = options;
  const url = path.startsWith('/v1') || path.startsWith('http') ? path : `${BASE}${path}`;
  const sent = { ...headers };
  if (auth && key) sent.Authorization = `Bearer ${key}`;
  let payload = body;
  if (json !== undefined) {
    sent['Content-Type'] = 'application/json';
    payload = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(url, { method, headers: sent, body: payload, cache: 'no-store', credentials: 'omit' });
  } catch (error) {
    throw new ApiError(0, null, `network error: ${error.message}`);
  }
  if (raw && response.ok) return response;
  const parsed = await parse(response);
  if (!response.ok) {
    const error = new ApiError(response.status, parsed, response.statusText);
    if (response.status === 401 && auth && path.startsWith('/') && !path.startsWith('/v1')) onUnauthorized(error);
    throw error;
  }
  // 207 (some files failed) is an answer, not an error.
  if (parsed && typeof parsed === 'object') parsed.__status = response.status;
  return parsed;
}

export const get = (path, options) => api('GET', path, options);
export const put = (path, json, options) => api('PUT', path, { ...options, json });
export const patch = (path, json, options) => api('PATCH', path, { ...options, json });
export const post = (path, json, options) => api('POST', path, { ...options, json });
export const del = (path, options) => api('DELETE', path, options);

// What the server says about this key: 'ok', or why not ('disabled' = management off on this
// server, 'remote' = refused because this browser is not local, 'key' = wrong or missing key,
// 'banned'), with the server's message.
export async function checkKey(key) {
  try {
    await api('GET', '/config', { key, auth: true });
    return { state: 'ok' };
  } catch (error) {
    if (error.status === 404) return { state: 'disabled', message: error.message };
    if (error.status === 403) {
      return { state: /banned/i.test(error.message) ? 'banned' : 'remote', message: error.message };
    }
    if (error.status === 401) return { state: 'key', message: error.message };
    return { state: 'error', message: error.message };
  }
}

// Whether an endpoint exists on this server (called once per page registry entry): 404 = no.
export async function probe(path) {
  try {
    await api('GET', path);
    return true;
  } catch (error) {
    return error.status !== 404;
  }
}

// GET a file as a Blob and hand it to the browser as a download.
export async function download(path, fileName) {
  const response = await api('GET', path, { raw: true });
  const blob = await response.blob();
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
