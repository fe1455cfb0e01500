// Sign-in page: the dev user picker (docstream dev's token issuer), OIDC
// code + PKCE when an issuer is configured, or anonymous in open mode.
import { h, errorBox } from './dom.js';
import { getSettings, devSignIn, oidcSignIn, session } from './auth.js';
import { navigate } from './main.js';

const devUsers = [
  { sub: 'alice', email: 'alice@example.com', name: 'Alice' },
  { sub: 'bob', email: 'bob@example.com', name: 'Bob' },
  { sub: 'admin', email: 'admin@example.com', name: 'Admin', admin: true },
];

export function signInPage(main) {
  const st = getSettings();
  const next = new URLSearchParams(location.search).get('next') || '/';
  const safeNext = next.startsWith('/') && !next.startsWith('//') ? next : '/';
  main.append(h('h1', {}, 'Sign in'));
  const s = session();
  if (s) main.append(h('p', {}, `You are signed in as ${s.name || s.email || s.user}.`));
  const status = h('div', { 'aria-live': 'polite' });
  if (st.oidc) {
    main.append(h('section', { 'aria-labelledby': 'oidc-h' }, h('h2', { id: 'oidc-h' }, 'With your identity provider'),
      h('button', { type: 'button', class: 'primary', id: 'oidc-signin', onclick: async () => {
        status.replaceChildren();
        try { await oidcSignIn(safeNext); } catch (e) { status.append(errorBox(e)); }
      } }, 'Sign in with OpenID Connect')));
  }
  if (st.dev_tokens) {
    const go = async u => {
      status.replaceChildren();
      try {
        await devSignIn(u);
        navigate(safeNext, { replace: true });
      } catch (e) {
        status.append(errorBox(e));
      }
    };
    const sub = h('input', { id: 'dev-sub', name: 'sub', required: true, autocomplete: 'username', maxlength: '255' });
    const email = h('input', { id: 'dev-email', name: 'email', type: 'email', autocomplete: 'email' });
    const name = h('input', { id: 'dev-name', name: 'name', autocomplete: 'name', maxlength: '255' });
    const admin = h('input', { id: 'dev-admin', name: 'admin', type: 'checkbox' });
    main.append(h('section', { 'aria-labelledby': 'dev-h' },
      h('h2', { id: 'dev-h' }, 'Development user'),
      h('p', { class: 'hint' }, 'docstream dev issues a token for any user you name (GET /auth/token). Never enabled outside dev.'),
      h('ul', { class: 'pick' }, devUsers.map(u => h('li', {}, h('button', { type: 'button', 'data-user': u.sub, onclick: () => go(u) },
        `${u.name} (${u.email})${u.admin ? ', admin' : ''}`)))),
      h('form', { class: 'stack', onsubmit: e => { e.preventDefault(); go({ sub: sub.value.trim(), email: email.value.trim(), name: name.value.trim(), admin: admin.checked }); } },
        h('label', { for: 'dev-sub' }, 'User id'), sub,
        h('label', { for: 'dev-email' }, 'Email (optional)'), email,
        h('label', { for: 'dev-name' }, 'Name (optional)'), name,
        h('div', { class: 'check' }, admin, h('label', { for: 'dev-admin' }, 'Administrator')),
        h('button', { type: 'submit', class: 'primary' }, 'Sign in as this user'))));
  }
  if (st.auth_mode === 'open') {
    main.append(h('p', {}, 'This system runs in open mode: ', h('a', { href: '/', 'data-link': '' }, 'continue anonymously'), '.'));
  }
  if (!st.oidc && !st.dev_tokens && st.auth_mode !== 'open') {
    main.append(h('p', {}, 'No browser sign-in is configured (set --webapp-oidc-issuer). Use the API with a token or an API key.'));
  }
  main.append(status);
}
