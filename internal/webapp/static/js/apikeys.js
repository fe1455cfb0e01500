// API keys (admin): create one (the key is shown once, in this answer
// only), list every key with its last use, revoke one. The API
// (/apikeys, internal/apikey) decides who may: its 401/403 is shown as is.
import { h, clear, announce, fmtTime, errorBox } from './dom.js';
import { api } from './api.js';

const SCOPES = [
  ['read', 'read: view documents, content, statistics, signatures, search'],
  ['write', 'write: create, edit, delete and share documents'],
  ['sign', 'sign: sign documents'],
  ['admin', 'admin: everything, including managing API keys'],
];

export async function apiKeysPage(main) {
  main.append(h('h1', {}, 'API keys'),
    h('p', { class: 'hint' }, 'A key is a credential for scripts and other systems: send it as "Authorization: Bearer <key>". Managing keys needs an administrator.'));

  const name = h('input', { id: 'key-name', name: 'name', required: true, maxlength: '100', autocomplete: 'off' });
  const boxes = SCOPES.map(([s]) => h('input', { type: 'checkbox', id: 'key-scope-' + s, name: 'scopes', value: s, checked: s === 'read' }));
  const expires = h('input', { id: 'key-expires', name: 'expires_in', placeholder: 'e.g. 90d or 720h; empty: never', autocomplete: 'off' });
  const createMsg = h('div', { 'aria-live': 'polite', id: 'key-create-msg' });
  const created = h('div', { id: 'key-created' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'key-create' }, 'Create the key');
  const form = h('form', { class: 'stack', id: 'key-form', onsubmit: async e => {
    e.preventDefault();
    createMsg.replaceChildren();
    created.replaceChildren();
    submit.disabled = true;
    try {
      const { data } = await api('POST', '/apikeys', { body: { name: name.value.trim(), scopes: boxes.filter(b => b.checked).map(b => b.value),
        expires_in: expires.value.trim() || undefined } });
      const keyText = h('code', { id: 'new-key', class: 'secret' }, data.key);
      const copy = h('button', { type: 'button', onclick: async () => {
        try { await navigator.clipboard.writeText(data.key); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select the key and copy it'; }
      } }, 'Copy');
      created.append(h('div', { class: 'card notice', role: 'status' },
        h('h3', {}, `Key “${data.name}” created`),
        h('p', {}, h('strong', {}, 'Copy it now: it is shown this once and never again.')),
        h('p', { class: 'secret-row' }, keyText, ' ', copy)));
      announce('API key created; it is shown once');
      name.value = '';
      load();
    } catch (err) {
      createMsg.append(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  } },
  h('label', { for: 'key-name' }, 'Name (what it is for)'), name,
  h('fieldset', {}, h('legend', {}, 'Scopes'), SCOPES.map(([s, label], i) => h('div', { class: 'check' }, boxes[i], h('label', { for: 'key-scope-' + s }, label)))),
  h('label', { for: 'key-expires' }, 'Expires in (optional)'), expires,
  submit, createMsg);

  const listMsg = h('div', { 'aria-live': 'polite', id: 'keys-msg' });
  const body = h('tbody', { id: 'key-rows' });
  main.append(h('section', { class: 'card', 'aria-labelledby': 'key-new-h' }, h('h2', { id: 'key-new-h' }, 'New key'), form, created),
    h('section', { class: 'card', 'aria-labelledby': 'keys-h' }, h('h2', { id: 'keys-h' }, 'Keys'), listMsg,
      h('div', { class: 'table-wrap' }, h('table', { class: 'docs' },
        h('thead', {}, h('tr', {}, ['Name', 'Id', 'Scopes', 'Created', 'Expires', 'Last used', 'State'].map(c => h('th', { scope: 'col' }, c)))), body))));

  // Revoking asks for a second click on the same button (no dialog).
  const revoke = k => {
    let armed = false;
    const btn = h('button', { type: 'button', 'data-revoke': k.id, onclick: async () => {
      if (!armed) { armed = true; btn.textContent = `Confirm: revoke “${k.name}”`; btn.classList.add('danger'); return; }
      listMsg.replaceChildren();
      btn.disabled = true;
      try {
        await api('DELETE', '/apikeys/' + encodeURIComponent(k.id));
        listMsg.append(h('p', { class: 'ok' }, `Key “${k.name}” revoked: it is refused from now on.`));
        announce('API key revoked');
        load();
      } catch (e) {
        btn.disabled = false;
        listMsg.append(errorBox(e));
      }
    } }, 'Revoke');
    return btn;
  };

  async function load() {
    try {
      const { data } = await api('GET', '/apikeys');
      clear(body);
      const keys = (data && data.api_keys) || [];
      if (!keys.length) body.append(h('tr', {}, h('td', { colspan: '7', class: 'hint' }, 'No keys yet.')));
      for (const k of keys) {
        const expired = k.expires_at && Date.parse(k.expires_at) < Date.now();
        body.append(h('tr', { 'data-id': k.id, 'data-revoked': String(!!k.revoked_at) },
          h('td', { class: 'key-name' }, k.name), h('td', {}, h('code', {}, k.id)), h('td', {}, (k.scopes || []).join(', ')),
          h('td', {}, fmtTime(k.created_at), k.created_by ? h('span', { class: 'hint' }, ` by ${k.created_by}`) : null),
          h('td', {}, k.expires_at ? fmtTime(k.expires_at) : 'never'),
          h('td', { class: 'last-used' }, k.last_used_at ? fmtTime(k.last_used_at) : 'never'),
          h('td', {}, k.revoked_at ? `revoked ${fmtTime(k.revoked_at)}` : expired ? 'expired' : revoke(k))));
      }
    } catch (e) {
      clear(body);
      listMsg.replaceChildren(errorBox(e));
    }
  }
  await load();
  const refresh = h('button', { type: 'button', id: 'keys-refresh', onclick: () => { listMsg.replaceChildren(); load(); } }, 'Refresh');
  listMsg.before(refresh);
  return null;
}
