// Webhooks: create an endpoint for some events (its signing secret is
// shown once), list the caller's endpoints (every one for an admin),
// send a test event, see an endpoint's deliveries with their attempts,
// redeliver one, turn an endpoint off or on, delete it. Over the REST API
// of internal/webhooks; its errors are shown as they come.
import { h, clear, announce, fmtTime, errorBox } from './dom.js';
import { api } from './api.js';

// The event names of internal/change's table (events.go), the same for
// webhooks and WebSocket messages.
const EVENTS = ['document.created', 'document.updated', 'document.deleted', 'document.signed', 'signature.created',
  'signing_request.created', 'signing_request.sent', 'signing_request.in_progress', 'signing_request.completed',
  'signing_request.declined', 'signing_request.expired', 'signing_request.cancelled',
  'recipient.notified', 'recipient.viewed', 'recipient.signed', 'recipient.approved', 'recipient.declined'];
const POLL_MS = 2000;

export async function webhooksPage(main) {
  const timers = new Set();
  let closed = false;
  main.append(h('h1', {}, 'Webhooks'),
    h('p', { class: 'hint' }, 'Each event is POSTed to the endpoint, signed the Standard Webhooks way with the endpoint\'s secret, retried, in commit order.'));

  const url = h('input', { id: 'hook-url', name: 'url', type: 'url', required: true, placeholder: 'https://crm.example.com/hooks/docstream', autocomplete: 'off' });
  const boxes = EVENTS.map(ev => h('input', { type: 'checkbox', id: 'hook-ev-' + ev.replace('.', '-'), name: 'events', value: ev, checked: ev === 'document.created' }));
  const desc = h('input', { id: 'hook-desc', name: 'description', maxlength: '500', autocomplete: 'off' });
  const docFilter = h('input', { id: 'hook-doc', name: 'document_id', autocomplete: 'off', placeholder: 'optional: one document id' });
  const createMsg = h('div', { 'aria-live': 'polite', id: 'hook-create-msg' });
  const created = h('div', { id: 'hook-created' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'hook-create' }, 'Create the endpoint');
  const form = h('form', { class: 'stack', id: 'hook-form', onsubmit: async e => {
    e.preventDefault();
    createMsg.replaceChildren();
    created.replaceChildren();
    submit.disabled = true;
    try {
      const { data } = await api('POST', '/webhooks', { body: { url: url.value.trim(), events: boxes.filter(b => b.checked).map(b => b.value),
        description: desc.value.trim() || undefined, document_id: docFilter.value.trim() || undefined } });
      created.append(h('div', { class: 'card notice', role: 'status' },
        h('h3', {}, 'Endpoint created'),
        h('p', {}, h('strong', {}, 'Its signing secret, shown this once: '), h('code', { id: 'new-hook-secret', class: 'secret' }, data.secret)),
        h('p', { class: 'hint' }, 'Verify each delivery\'s webhook-signature header with it.')));
      announce('Webhook endpoint created');
      url.value = '';
      desc.value = '';
      docFilter.value = '';
      load();
    } catch (err) {
      createMsg.append(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  } },
  h('label', { for: 'hook-url' }, 'Endpoint URL'), url,
  h('fieldset', {}, h('legend', {}, 'Events'), EVENTS.map((ev, i) => h('div', { class: 'check' }, boxes[i], h('label', { for: boxes[i].id }, ev)))),
  h('label', { for: 'hook-desc' }, 'Description (optional)'), desc,
  h('label', { for: 'hook-doc' }, 'Only this document (optional)'), docFilter,
  submit, createMsg);

  const listMsg = h('div', { 'aria-live': 'polite', id: 'hooks-msg' });
  const list = h('div', { id: 'hooks' });
  main.append(h('section', { class: 'card', 'aria-labelledby': 'hook-new-h' }, h('h2', { id: 'hook-new-h' }, 'New endpoint'), form, created),
    h('section', { class: 'card', 'aria-labelledby': 'hooks-h' }, h('h2', { id: 'hooks-h' }, 'Endpoints'),
      h('button', { type: 'button', id: 'hooks-refresh', onclick: () => load() }, 'Refresh'), listMsg, list));

  // deliveries draws an endpoint's deliveries into box, refreshing while
  // any is pending and the box is open.
  const deliveries = (w, box) => {
    let timer = null;
    let seen = '';
    const stop = () => { clearTimeout(timer); timers.delete(stop); };
    const show = async () => {
      stop();
      if (closed || box.hidden) return;
      try {
        const { data } = await api('GET', `/webhooks/${encodeURIComponent(w.id)}/deliveries?limit=50`);
        const ds = (data && data.deliveries) || [];
        if (closed || box.hidden) return;
        // Redraw only on a change (a redraw would swallow a click).
        const now = JSON.stringify(ds);
        if (now === seen) {
          if (ds.some(d => d.status === 'pending')) { timer = setTimeout(show, POLL_MS); timers.add(stop); }
          return;
        }
        seen = now;
        clear(box);
        box.append(h('h4', {}, 'Deliveries'), h('button', { type: 'button', 'data-op': 'refresh-deliveries', onclick: () => show() }, 'Refresh deliveries'));
        if (!ds.length) box.append(h('p', { class: 'hint' }, 'None yet.'));
        else box.append(h('div', { class: 'table-wrap' }, h('table', { class: 'docs deliveries' },
          h('thead', {}, h('tr', {}, ['Event', 'Status', 'Attempts', 'Last answer', 'Queued', 'Finished', ''].map(c => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, ds.map(d => h('tr', { 'data-id': d.id, 'data-type': d.type, 'data-status': d.status },
            h('td', {}, h('code', {}, d.type), d.document_id ? h('span', { class: 'hint' }, ` ${d.document_id}`) : null),
            h('td', {}, h('span', { class: 'badge status-' + (d.status === 'delivered' ? 'completed' : d.status === 'failed' ? 'cancelled' : 'pending') }, d.status)),
            h('td', {}, String(d.attempts)),
            h('td', {}, d.last_status ? `HTTP ${d.last_status}` : '', d.last_error ? h('span', { class: 'error' }, ` ${d.last_error}`) : null,
              lastAttempt(d)),
            h('td', {}, fmtTime(d.created_at)),
            h('td', {}, d.finished_at ? fmtTime(d.finished_at) : d.next_attempt_at ? `next try ${fmtTime(d.next_attempt_at)}` : ''),
            h('td', {}, d.status === 'pending' ? null : h('button', { type: 'button', class: 'link', onclick: async () => {
              try { await api('POST', `/webhooks/${encodeURIComponent(w.id)}/deliveries/${encodeURIComponent(d.id)}/redeliver`); show(); } catch (e) { box.prepend(errorBox(e)); }
            } }, `Redeliver ${d.type}`))))))));
        if (ds.some(d => d.status === 'pending')) { timer = setTimeout(show, POLL_MS); timers.add(stop); }
      } catch (e) {
        seen = '';
        clear(box).append(errorBox(e));
      }
    };
    return show;
  };

  const item = w => {
    const msg = h('div', { 'aria-live': 'polite' });
    const box = h('div', { class: 'deliveries-box', hidden: true, 'data-deliveries-for': w.id });
    const show = deliveries(w, box);
    const act = fn => async ev => {
      const btn = ev.currentTarget;
      msg.replaceChildren();
      btn.disabled = true;
      try { await fn(); } catch (e) { msg.append(errorBox(e)); } finally { btn.disabled = false; }
    };
    let armed = false;
    const del = h('button', { type: 'button', 'data-op': 'delete', onclick: act(async () => {
      if (!armed) { armed = true; del.textContent = 'Confirm: delete this endpoint'; del.classList.add('danger'); return; }
      await api('DELETE', '/webhooks/' + encodeURIComponent(w.id));
      announce('Webhook endpoint deleted');
      load();
    }) }, 'Delete');
    const toggle = h('button', { type: 'button', 'data-op': 'deliveries', 'aria-expanded': 'false', onclick: () => {
      box.hidden = !box.hidden;
      toggle.setAttribute('aria-expanded', String(!box.hidden));
      toggle.textContent = box.hidden ? 'Show deliveries' : 'Hide deliveries';
      show();
    } }, 'Show deliveries');
    return h('article', { class: 'hook card', 'data-id': w.id, 'data-enabled': String(w.enabled) },
      h('h3', {}, h('code', { class: 'hook-url' }, w.url)),
      w.description ? h('p', { class: 'hook-desc' }, w.description) : null,
      h('p', {}, 'Events: ', (w.events || []).join(', '), w.document_id ? `; document ${w.document_id}` : '', w.created_by ? `; created by ${w.created_by}` : ''),
      h('p', { class: w.enabled ? 'ok' : 'error' }, w.enabled ? 'Enabled' : `Disabled${w.disabled_reason ? ': ' + w.disabled_reason : ''}`,
        w.failing_since ? h('span', { class: 'error' }, `; failing since ${fmtTime(w.failing_since)}`) : null),
      h('div', { class: 'actions' },
        h('button', { type: 'button', 'data-op': 'test', onclick: act(async () => {
          await api('POST', `/webhooks/${encodeURIComponent(w.id)}/test`);
          msg.append(h('p', { class: 'ok' }, 'Test event queued.'));
          if (box.hidden) toggle.click(); else show();
        }) }, 'Send a test event'),
        toggle,
        h('button', { type: 'button', 'data-op': 'enable', onclick: act(async () => {
          await api('PATCH', '/webhooks/' + encodeURIComponent(w.id), { body: { enabled: !w.enabled } });
          load();
        }) }, w.enabled ? 'Turn off' : 'Turn on'),
        del),
      msg, box);
  };

  async function load() {
    listMsg.replaceChildren();
    try {
      const { data } = await api('GET', '/webhooks');
      if (closed) return;
      for (const stop of [...timers]) stop();
      clear(list);
      const hooks = (data && data.webhooks) || [];
      if (!hooks.length) list.append(h('p', { class: 'hint' }, 'No endpoints yet.'));
      for (const w of hooks) list.append(item(w));
    } catch (e) {
      clear(list);
      listMsg.append(errorBox(e));
    }
  }
  await load();
  return () => { closed = true; for (const stop of [...timers]) stop(); };
}

function lastAttempt(d) {
  const hist = d.history || [];
  const a = hist[hist.length - 1];
  if (!a) return null;
  return h('span', { class: 'hint' }, ` (${a.duration_ms} ms${a.response ? ', ' + a.response.slice(0, 80) : ''})`);
}
