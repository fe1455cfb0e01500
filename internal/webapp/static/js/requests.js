// A document's signing requests, drawn below the document page: the
// owner creates one (recipients with a role and an order group, a
// message, an optional expiry and reminders), follows its state and each
// recipient's live, cancels, resends or sends a draft, and downloads the
// certificate of completion once it exists.
//
// "Live": the document's WebSocket feed (/ws/{id}) says when its status
// moves (sent, viewed, pending, signed, completed) or a request or
// recipient changes state (signing_request.* and recipient.* messages), and
// the list reloads at once; while a request is open the list is also polled
// every 2 s, a fallback for a feed that is down.
import { h, clear, announce, fmtTime, errorBox, statusBadge, saveBytes } from './dom.js';
import { api, blob } from './api.js';
import { Feed } from './live.js';

const ROLES = ['signer', 'approver', 'viewer', 'cc'];
const OPEN = ['draft', 'sent', 'in_progress'];
const POLL_MS = 2000;

// signingRequests draws the section into main and returns its cleanup.
export function signingRequests(main, docId) {
  const listPath = '/documents/' + encodeURIComponent(docId) + '/signing-requests';
  const urls = [];
  let timer = null;
  let closed = false;
  let loading = null;
  let drawn = '';

  const list = h('div', { id: 'requests', 'aria-live': 'polite' }, h('p', { class: 'hint' }, 'Loading signing requests…'));
  const listMsg = h('div', { 'aria-live': 'polite', id: 'requests-msg' });
  const liveState = h('p', { class: 'live', id: 'requests-live' });

  // The create form: one row per recipient.
  const rows = h('ol', { class: 'recipients', id: 'recipient-rows' });
  let seq = 0;
  const addRow = (r = {}) => {
    const n = ++seq;
    const id = k => `rc-${k}-${n}`;
    const email = h('input', { id: id('email'), name: 'email', type: 'email', required: true, autocomplete: 'off', value: r.email || '' });
    const name = h('input', { id: id('name'), name: 'name', autocomplete: 'off', maxlength: '255', value: r.name || '' });
    const role = h('select', { id: id('role'), name: 'role' }, ROLES.map(x => h('option', { value: x, selected: x === (r.role || 'signer') }, x)));
    const order = h('input', { id: id('order'), name: 'order', type: 'number', min: '1', max: '1000', value: String(r.order || 1), class: 'narrow' });
    const li = h('li', { class: 'recipient-row' },
      h('span', { class: 'field' }, h('label', { for: id('email') }, 'Email'), email),
      h('span', { class: 'field' }, h('label', { for: id('name') }, 'Name'), name),
      h('span', { class: 'field' }, h('label', { for: id('role') }, 'Role'), role),
      h('span', { class: 'field' }, h('label', { for: id('order') }, 'Order'), order),
      h('button', { type: 'button', class: 'link', onclick: () => { if (rows.children.length > 1) li.remove(); } }, `Remove recipient ${n}`));
    li.read = () => ({ email: email.value.trim(), name: name.value.trim(), role: role.value, order: Number(order.value) || 1 });
    rows.append(li);
    return li;
  };
  addRow();
  const message = h('textarea', { id: 'request-message', name: 'message', rows: '2', maxlength: '10000' });
  const expires = h('input', { id: 'request-expires', name: 'expires_at', type: 'datetime-local' });
  const remind = h('select', { id: 'request-remind', name: 'reminder_interval' },
    [['', 'never'], ['24h', 'every day'], ['72h', 'every 3 days'], ['168h', 'every week']].map(([v, t]) => h('option', { value: v }, t)));
  const draft = h('input', { id: 'request-draft', name: 'draft', type: 'checkbox' });
  const createMsg = h('div', { 'aria-live': 'polite', id: 'request-create-msg' });
  const createBtn = h('button', { type: 'submit', class: 'primary', id: 'request-create' }, 'Send the request');
  const form = h('form', { class: 'stack wide', id: 'request-form', onsubmit: async e => {
    e.preventDefault();
    createMsg.replaceChildren();
    const body = { recipients: [...rows.children].map(li => li.read()), message: message.value.trim() || undefined,
      reminder_interval: remind.value || undefined, draft: draft.checked || undefined };
    if (expires.value) {
      const t = new Date(expires.value);
      if (isNaN(t)) { createMsg.append(h('p', { class: 'error', role: 'alert' }, 'The expiry is not a date.')); return; }
      body.expires_at = t.toISOString();
    }
    createBtn.disabled = true;
    try {
      const { data } = await api('POST', listPath, { body });
      createMsg.append(h('p', { class: 'ok' }, data.state === 'draft' ? 'Draft saved: send it when ready.' : 'Sent: the first recipients are being mailed.'));
      announce('Signing request created');
      clear(rows);
      addRow();
      message.value = '';
      expires.value = '';
      draft.checked = false;
      load();
    } catch (err) {
      createMsg.append(errorBox(err));
    } finally {
      createBtn.disabled = false;
    }
  } },
  h('fieldset', {}, h('legend', {}, 'Recipients'),
    h('p', { class: 'hint' }, 'The same order signs in parallel; a higher order is mailed once every lower one is done. A cc never blocks and gets the completed document.'),
    rows, h('button', { type: 'button', id: 'add-recipient', onclick: () => addRow({ order: Math.max(1, ...[...rows.children].map(li => li.read().order)) }).querySelector('input').focus() }, 'Add a recipient')),
  h('label', { for: 'request-message' }, 'Message (optional)'), message,
  h('label', { for: 'request-expires' }, 'Expires (optional, your local time)'), expires,
  h('label', { for: 'request-remind' }, 'Remind those who have not acted'), remind,
  h('div', { class: 'check' }, draft, h('label', { for: 'request-draft' }, 'Save as a draft (send later)')),
  createBtn, createMsg);

  const section = h('section', { class: 'card', 'aria-labelledby': 'requests-h', id: 'signing' },
    h('h2', { id: 'requests-h' }, 'Signing requests'), liveState, list, listMsg,
    h('details', { class: 'create', id: 'request-create-box' }, h('summary', {}, 'New signing request'), form));
  main.append(section);

  const op = (r, what) => async ev => {
    const btn = ev.currentTarget;
    listMsg.replaceChildren();
    btn.disabled = true;
    try {
      await api('POST', `/signing-requests/${encodeURIComponent(r.id)}/${what}`);
      listMsg.append(h('p', { class: 'ok' }, { cancel: 'Cancelled.', resend: 'Sent again to the recipients who are waiting.', send: 'Sent.' }[what]));
      announce(`Signing request: ${what} done`);
      load();
    } catch (e) {
      listMsg.append(errorBox(e));
    } finally {
      btn.disabled = false;
    }
  };

  const certificate = r => async ev => {
    listMsg.replaceChildren();
    const btn = ev.currentTarget;
    btn.disabled = true;
    try {
      const b = await blob(`/signing-requests/${encodeURIComponent(r.id)}/certificate`);
      // The page checks what it got against the hash the API recorded.
      const sum = [...new Uint8Array(await crypto.subtle.digest('SHA-256', await b.arrayBuffer()))].map(x => x.toString(16).padStart(2, '0')).join('');
      saveBytes(b, `certificate-${r.id}.pdf`, urls);
      const ok = !r.certificate_sha256 || sum === r.certificate_sha256;
      listMsg.append(h('p', { class: ok ? 'ok' : 'error', id: 'certificate-msg', 'data-sha256': sum, 'data-match': String(ok) },
        ok ? `Certificate downloaded (SHA-256 ${sum}, as recorded).` : `The downloaded certificate's SHA-256 ${sum} differs from the recorded ${r.certificate_sha256}.`));
    } catch (e) {
      listMsg.append(errorBox(e));
    } finally {
      btn.disabled = false;
    }
  };

  const draw = reqs => {
    clear(list);
    if (!reqs.length) { list.append(h('p', { class: 'hint' }, 'No signing request yet.')); return; }
    for (const r of reqs) {
      const recipients = [...(r.recipients || [])].sort((a, b) => a.order - b.order);
      const acts = h('div', { class: 'actions' });
      if (r.state === 'draft') acts.append(h('button', { type: 'button', class: 'primary', 'data-op': 'send', onclick: op(r, 'send') }, 'Send'));
      if (r.state === 'sent' || r.state === 'in_progress') acts.append(h('button', { type: 'button', 'data-op': 'resend', onclick: op(r, 'resend') }, 'Resend to those waiting'));
      if (OPEN.includes(r.state)) acts.append(h('button', { type: 'button', 'data-op': 'cancel', onclick: op(r, 'cancel') }, 'Cancel the request'));
      if (r.certificate_sha256) acts.append(h('button', { type: 'button', class: 'primary', 'data-op': 'certificate', onclick: certificate(r) }, 'Download the certificate'));
      else if (r.state === 'completed') acts.append(h('span', { class: 'hint' }, 'The certificate is being issued…'));
      list.append(h('article', { class: 'request', 'data-id': r.id, 'data-state': r.state },
        h('h3', {}, 'Request ', statusBadge(r.state), ' ', h('span', { class: 'hint' }, `created ${fmtTime(r.created_at)}`)),
        r.message ? h('blockquote', { class: 'message' }, r.message) : null,
        h('p', { class: 'hint' }, [r.expires_at ? `Expires ${fmtTime(r.expires_at)}. ` : '', r.reminder_interval ? `Reminders every ${r.reminder_interval}. ` : '',
          r.outcome ? `Outcome: ${r.outcome}. ` : '', r.completed_at ? `Completed ${fmtTime(r.completed_at)}.` : '']),
        h('div', { class: 'table-wrap' }, h('table', { class: 'docs recipients-table' },
          h('caption', { class: 'visually-hidden' }, 'Recipients and their state'),
          h('thead', {}, h('tr', {}, ['Order', 'Recipient', 'Role', 'State', 'When'].map(c => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, recipients.map(rc => h('tr', { 'data-email': rc.email, 'data-state': rc.state },
            h('td', {}, String(rc.order)),
            h('td', {}, rc.name ? h('span', { class: 'rc-name' }, rc.name) : null, rc.name ? ' ' : null, h('span', { class: 'hint' }, `<${rc.email}>`)),
            h('td', {}, rc.role),
            h('td', {}, statusBadge(rc.state), rc.decline_reason ? h('span', { class: 'reason' }, ` “${rc.decline_reason}”`) : null),
            h('td', { class: 'hint' }, rc.acted_at ? `acted ${fmtTime(rc.acted_at)}` : rc.viewed_at ? `viewed ${fmtTime(rc.viewed_at)}` : rc.notified_at ? `mailed ${fmtTime(rc.notified_at)}` : '')))))),
        acts));
    }
  };

  async function load() {
    // One load at a time; a load asked for meanwhile runs after it.
    if (loading) { loading.again = true; return; }
    loading = { again: false };
    try {
      const { data } = await api('GET', listPath);
      if (closed) return;
      const reqs = Array.isArray(data) ? data : [];
      // Redraw only on a change: a redraw under the pointer or the focus
      // would swallow a click and lose a keyboard user's place.
      const seen = JSON.stringify(reqs);
      if (seen !== drawn) { drawn = seen; draw(reqs); }
      clearTimeout(timer);
      if (reqs.some(r => OPEN.includes(r.state) || (r.state === 'completed' && !r.certificate_sha256))) timer = setTimeout(load, POLL_MS);
    } catch (e) {
      drawn = '';
      if (!closed) list.replaceChildren(errorBox(e));
    } finally {
      const again = loading.again;
      loading = null;
      if (again && !closed) load();
    }
  }
  load();

  const feed = new Feed('/ws/' + encodeURIComponent(docId), {
    onState: st => { liveState.textContent = st === 'live' ? 'Live.' : st === 'closed' ? '' : st + '…'; liveState.dataset.state = st; },
    onMessage: msg => { if (msg && msg.type) load(); },
  });
  return () => {
    closed = true;
    clearTimeout(timer);
    feed.close();
    urls.forEach(u => URL.revokeObjectURL(u));
  };
}
