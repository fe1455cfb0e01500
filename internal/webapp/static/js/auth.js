// Sign-in: the session (a bearer token and who it names) lives in
// localStorage so every tab of the app shares it. Three ways in:
// - open mode: anonymous, nothing to do;
// - docstream dev: GET /auth/token names any user (the dev issuer);
// - OpenID Connect: authorization code + PKCE (S256) against the issuer in
//   /app/config.json, callback at /app/callback (never under /auth, which
//   is the realtime service's).

const KEY = 'docstream.session';
const PENDING = 'docstream.oidc';

let settings = { auth_mode: 'open', dev_tokens: false };

export async function loadSettings() {
  const r = await fetch('/app/config.json', { headers: { Accept: 'application/json' } });
  if (r.ok) settings = await r.json();
  return settings;
}

export function getSettings() { return settings; }

export function session() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || 'null');
    if (s && s.expires_at && Date.parse(s.expires_at) < Date.now()) {
      localStorage.removeItem(KEY);
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function token() {
  const s = session();
  return s ? s.token : '';
}

export function signOut() {
  localStorage.removeItem(KEY);
}

function save(s) {
  localStorage.setItem(KEY, JSON.stringify(s));
}

// devSignIn asks the development issuer for a token naming user.
export async function devSignIn({ sub, email, name, admin }) {
  const q = new URLSearchParams({ sub });
  if (email) q.set('email', email);
  if (name) q.set('name', name);
  if (admin) q.set('admin', 'true');
  const r = await fetch('/auth/token?' + q, { headers: { Accept: 'application/json' } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error((body.error && body.error.message) || `sign-in failed (${r.status})`);
    e.details = body.error && body.error.details;
    throw e;
  }
  save({ kind: 'dev', token: body.access_token, user: body.user_id, email: body.email || '', name: body.name || '',
    admin: !!body.admin, expires_at: body.expires_at });
  return session();
}

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(n) {
  const a = new Uint8Array(n);
  crypto.getRandomValues(a);
  return b64url(a);
}

async function discovery(issuer) {
  const r = await fetch(issuer.replace(/\/$/, '') + '/.well-known/openid-configuration');
  if (!r.ok) throw new Error(`the identity provider's discovery document answered ${r.status}`);
  return r.json();
}

function redirectURI() {
  return location.origin + settings.oidc.redirect_path;
}

// oidcSignIn sends the browser to the issuer's authorization endpoint with
// a PKCE challenge; the verifier and state wait in sessionStorage.
export async function oidcSignIn(returnTo) {
  const o = settings.oidc;
  const meta = await discovery(o.issuer);
  const verifier = randomString(48);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = randomString(16);
  const nonce = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, returnTo: returnTo || '/', token_endpoint: meta.token_endpoint, userinfo_endpoint: meta.userinfo_endpoint || '' }));
  const q = new URLSearchParams({
    response_type: 'code', client_id: o.client_id, redirect_uri: redirectURI(), scope: o.scopes,
    state, nonce, code_challenge: b64url(digest), code_challenge_method: 'S256',
  });
  location.assign(meta.authorization_endpoint + '?' + q);
}

function claims(jwt) {
  try {
    const p = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(decodeURIComponent(escape(atob(p))));
  } catch {
    return {};
  }
}

// oidcCallback finishes the code flow on /app/callback: checks state,
// redeems the code with the verifier, keeps the tokens. Returns the path
// to go back to.
export async function oidcCallback() {
  const q = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  if (q.get('error')) throw new Error(`the identity provider refused: ${q.get('error')} ${q.get('error_description') || ''}`);
  if (!pending || q.get('state') !== pending.state) throw new Error('this sign-in was not started here (state mismatch); sign in again');
  const body = new URLSearchParams({
    grant_type: 'authorization_code', code: q.get('code') || '', redirect_uri: redirectURI(),
    client_id: settings.oidc.client_id, code_verifier: pending.verifier,
  });
  const r = await fetch(pending.token_endpoint, { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  const t = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`the token endpoint answered ${r.status}: ${t.error || ''} ${t.error_description || ''}`);
  const id = claims(t.id_token || '');
  if (id.nonce && id.nonce !== pending.nonce) throw new Error('the ID token is not for this sign-in (nonce mismatch)');
  // A provider that issues an access token may leave the profile out of
  // the ID token (OpenID Connect Core 5.4): it is at the userinfo endpoint,
  // whose answer counts only for the ID token's subject (5.3.2).
  let profile = id;
  if (!id.email && !id.name && t.access_token && pending.userinfo_endpoint) {
    const u = await fetch(pending.userinfo_endpoint, { headers: { Authorization: 'Bearer ' + t.access_token } }).catch(() => null);
    const info = u && u.ok ? await u.json().catch(() => ({})) : {};
    if (id.sub && info.sub === id.sub) profile = info;
  }
  // The API verifies JWTs against the issuer's keys: the access token when
  // it is one, else the ID token.
  const bearer = (t.access_token && t.access_token.split('.').length === 3) ? t.access_token : (t.id_token || t.access_token);
  const exp = claims(bearer).exp || id.exp;
  save({ kind: 'oidc', token: bearer, user: id.sub || '', email: profile.email || '', name: profile.name || profile.preferred_username || '',
    expires_at: exp ? new Date(exp * 1000).toISOString() : (t.expires_in ? new Date(Date.now() + t.expires_in * 1000).toISOString() : null) });
  return pending.returnTo || '/';
}
