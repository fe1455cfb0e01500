// The application shell: settings, the header's sign-in state, and a
// small router over history.pushState. Pages: / (documents),
// /app/documents/{id} (with its signing requests), /app/search, /app/ops,
// /app/signin, /app/callback, /app/invitations/{token} (a recipient's
// page: no account needed), /app/admin/keys, /app/admin/webhooks.
import { h, clear } from './dom.js';
import { loadSettings, getSettings, session, signOut, oidcCallback } from './auth.js';
import { listPage } from './list.js';
import { documentPage } from './doc.js';
import { searchPage } from './search.js';
import { opsPage } from './ops.js';
import { signInPage } from './signin.js';
import { invitationPage } from './invite.js';
import { signingRequests } from './requests.js';
import { apiKeysPage } from './apikeys.js';
import { webhooksPage } from './webhooks.js';

let cleanup = null;

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function routeOf(pathname) {
  if (pathname === '/') return { page: listPage, title: 'Documents' };
  let m = pathname.match(/^\/app\/documents\/([^/]+)$/);
  if (m) return { page: documentWithRequests, args: [decodeURIComponent(m[1])], title: 'Document' };
  m = pathname.match(/^\/app\/invitations\/([^/]+)$/);
  if (m) return { page: invitationPage, args: [decodeURIComponent(m[1])], title: 'Invitation', public: true };
  if (pathname === '/app/admin/keys') return { page: apiKeysPage, title: 'API keys' };
  if (pathname === '/app/admin/webhooks') return { page: webhooksPage, title: 'Webhooks' };
  if (pathname === '/app/search') return { page: searchPage, title: 'Search' };
  if (pathname === '/app/ops') return { page: opsPage, title: 'Operations' };
  if (pathname === '/app/signin') return { page: signInPage, title: 'Sign in' };
  return null;
}

// documentWithRequests is the document page followed by its signing
// requests (requests.js).
async function documentWithRequests(main, id) {
  const closeDoc = await documentPage(main, id);
  // The document page shows its own error when the document is missing.
  if (!document.getElementById('doc-title')) return closeDoc;
  const closeReq = signingRequests(main, id);
  return () => { if (closeDoc) closeDoc(); closeReq(); };
}

function renderWho() {
  const who = clear(document.getElementById('who'));
  const s = session();
  const st = getSettings();
  if (s) {
    who.append(h('span', { class: 'user', 'data-testid': 'signed-in-as' }, 'Signed in as ', h('strong', {}, s.name || s.email || s.user)),
      ' ', h('button', { type: 'button', class: 'link', onclick: () => { signOut(); renderWho(); render(); } }, 'Sign out'));
  } else {
    if (st.auth_mode === 'open') who.append(h('span', { class: 'user' }, 'Anonymous'), ' ');
    who.append(h('a', { href: '/app/signin?next=' + encodeURIComponent(location.pathname + location.search), 'data-link': '' }, 'Sign in'));
  }
}

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  renderWho();
  const main = clear(document.getElementById('main'));
  for (const a of document.querySelectorAll('header nav a')) {
    const here = a.getAttribute('href') === location.pathname;
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (location.pathname === '/app/callback') {
    try {
      const next = await oidcCallback();
      navigate(next, { replace: true });
    } catch (e) {
      main.append(h('h1', {}, 'Sign-in failed'), h('p', { class: 'error', role: 'alert' }, e.message),
        h('p', {}, h('a', { href: '/app/signin', 'data-link': '' }, 'Try again')));
    }
    return;
  }
  const route = routeOf(location.pathname);
  if (!route) {
    document.title = 'Not found · docstream';
    main.append(h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/', 'data-link': '' }, 'Back to the documents')));
    return;
  }
  // Required mode: every page but sign-in needs a session. Open mode: the
  // home page (and everything else) works anonymously.
  // An invitation's token is its credential: its recipient has no account.
  if (getSettings().auth_mode === 'required' && !session() && route.page !== signInPage && !route.public) {
    navigate('/app/signin?next=' + encodeURIComponent(location.pathname + location.search), { replace: true });
    return;
  }
  document.title = route.title + ' · docstream';
  cleanup = await route.page(main, ...(route.args || [])) || null;
}

document.addEventListener('click', e => {
  const a = e.target.closest && e.target.closest('a[data-link]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
  document.getElementById('main').focus({ preventScroll: true });
});
window.addEventListener('popstate', render);
window.addEventListener('docstream:signed-out', renderWho);
// Another tab signed in or out.
window.addEventListener('storage', e => { if (e.key === 'docstream.session') renderWho(); });

loadSettings().then(render, () => render());
