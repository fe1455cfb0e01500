// The API, same origin: JSON in and out with the session's bearer token.
import { token, signOut, session } from './auth.js';

export class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `request failed (${status})`);
    this.status = status;
    this.code = e.code;
    this.details = e.details || [];
  }
}

function authHeaders(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// api calls path and returns { data, headers, status }. A 401 drops the
// session (it expired or was revoked) so the page offers sign-in.
export async function api(method, path, { body, headers } = {}) {
  const init = { method, headers: authHeaders(headers) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!r.ok) {
    if (r.status === 401 && token()) {
      signOut();
      window.dispatchEvent(new Event('docstream:signed-out'));
    }
    throw new APIError(r.status, data);
  }
  return { data, headers: r.headers, status: r.status };
}

// blob fetches binary content with the bearer token (img/src cannot send
// one) and returns it as a Blob of the type the server declared.
export async function blob(path) {
  const r = await fetch(path, { headers: authHeaders({ Accept: '*/*' }) });
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    throw new APIError(r.status, body);
  }
  return r.blob();
}

// upload sends one file as multipart/form-data with XMLHttpRequest, whose
// upload progress events fetch() does not offer. Resolves to
// { doc, lsn } (lsn: X-Commit-LSN, for read-your-writes search).
export function upload(file, { title, createdBy, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/documents');
    const t = token();
    if (t) xhr.setRequestHeader('Authorization', 'Bearer ' + t);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', e => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        if (onProgress) onProgress(1);
        resolve({ doc: body, lsn: xhr.getResponseHeader('X-Commit-LSN') || '' });
      } else {
        reject(new APIError(xhr.status, body));
      }
    });
    xhr.addEventListener('error', () => reject(new Error('network error during upload')));
    xhr.addEventListener('abort', () => reject(new Error('upload aborted')));
    const form = new FormData();
    form.append('title', title || file.name);
    // The API needs a creator (an email, as in the reference); in required
    // mode it is the caller's own identity whatever is sent. An anonymous
    // visitor (open mode) gives theirs in the upload form.
    const s = session();
    form.append('created_by', createdBy || (s && (s.email || s.user)) || '');
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

// noteWrite remembers the X-Commit-LSN of this tab's latest write, and
// lastWrite returns it: searches pass it as min_lsn, so what the user just
// wrote is searchable in their next search (read-your-writes).
const LAST_WRITE = 'docstream.lastWrite';
export function noteWrite(lsn) {
  if (!/^\d+$/.test(String(lsn || ''))) return;
  const cur = lastWrite();
  if (!cur || BigInt(lsn) > BigInt(cur)) sessionStorage.setItem(LAST_WRITE, String(lsn));
}
export function lastWrite() {
  try { return sessionStorage.getItem(LAST_WRITE) || ''; } catch { return ''; }
}

// wsURL is the WebSocket URL of path on this origin.
export function wsURL(path) {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
}

// wsProtocols carries the token in the "bearer" subprotocol: a browser's
// WebSocket cannot send a header, and a query string lands in access logs.
export function wsProtocols() {
  const t = token();
  return t ? ['bearer', t] : [];
}
