// The recipient's page of a signing invitation (/app/invitations/{token},
// the link the invitation mail carries). The recipient needs no account:
// the token is the credential, so this page calls /invitations/{token}
// without the session's bearer token even when the browser has one (the
// invitation acts as its recipient, not as whoever is signed in here).
// It shows the pinned document, records consent, and signs (draw or
// type), approves or declines; a used, expired or unknown link says so.
import { h, clear, announce, fmtTime, errorBox, statusBadge, saveBytes } from './dom.js';
import { APIError } from './api.js';
import { signaturePad } from './sign.js';

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const TEXT_TYPES = ['text/plain', 'text/csv', 'text/markdown', 'application/json'];
const TEXT_PREVIEW_MAX = 256 * 1024;

// call is api() without the session: the token in the path is the
// credential.
async function call(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'omit', referrerPolicy: 'no-referrer' };
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
  if (!r.ok) throw new APIError(r.status, data);
  return data;
}

async function content(path) {
  const r = await fetch(path, { headers: { Accept: '*/*' }, credentials: 'omit', referrerPolicy: 'no-referrer' });
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    throw new APIError(r.status, body);
  }
  return r.blob();
}

const verbs = { signer: 'sign', approver: 'approve', viewer: 'view', cc: 'receive a copy of' };

// unusable explains an invitation the API refuses to show.
function unusable(err) {
  if (err instanceof APIError && err.status === 404) {
    return ['This invitation link is not valid',
      'The link is unknown: it may be mistyped, or the request was replaced. Ask the sender for a new invitation.'];
  }
  if (err instanceof APIError && err.status === 409) {
    const m = err.message || '';
    if (/expired/i.test(m)) return ['This invitation has expired', m + '. Ask the sender for a new invitation if you still need to act.'];
    if (/was used/i.test(m)) return ['This invitation was already used', m + '. An invitation link works once: nothing more is needed from you.'];
    return ['This invitation can no longer be used', m + '.'];
  }
  return null;
}

export async function invitationPage(main, token) {
  const base = '/invitations/' + encodeURIComponent(token);
  const urls = [];
  main.append(h('h1', { id: 'invite-title' }, 'Invitation'));
  const body = h('div', { id: 'invitation', 'aria-live': 'polite' }, h('p', {}, 'Opening the invitation…'));
  main.append(body);
  let inv;
  try {
    inv = await call('GET', base);
  } catch (e) {
    const why = unusable(e);
    clear(body);
    body.dataset.state = why ? 'unusable' : 'error';
    if (why) body.append(h('div', { class: 'card notice', id: 'invite-unusable', role: 'alert' }, h('h2', {}, why[0]), h('p', {}, why[1])));
    else body.append(errorBox(e));
    return null;
  }
  document.title = `${inv.document_title || 'Document'} · Invitation · docstream`;
  const rc = inv.recipient || {};
  const verb = verbs[rc.role] || 'see';
  const title = main.querySelector('#invite-title');
  title.textContent = '';
  title.append(`Please ${verb} `, h('q', { id: 'invite-doc-title' }, inv.document_title || '(untitled)'));
  clear(body);
  body.dataset.state = inv.state;

  const meta = h('dl', { class: 'meta' });
  const row = (k, v) => meta.append(h('dt', {}, k), h('dd', {}, v));
  row('From', inv.from || '');
  row('For', `${rc.name ? rc.name + ' ' : ''}<${rc.email}>`);
  row('Your role', rc.role);
  row('Request', h('span', { id: 'invite-request-state' }, statusBadge(inv.request_state)));
  row('Your state', h('span', { id: 'invite-state' }, statusBadge(inv.state)));
  if (inv.expires_at) row('Expires', fmtTime(inv.expires_at));
  row('Document SHA-256', h('code', {}, inv.content_sha256 || ''));
  const details = h('section', { class: 'card', 'aria-labelledby': 'inv-details-h' }, h('h2', { id: 'inv-details-h' }, 'The request'),
    inv.message ? h('blockquote', { id: 'invite-message', class: 'message' }, inv.message) : null, meta);

  const preview = h('div', { class: 'preview', id: 'invite-preview', 'aria-live': 'polite' });
  const download = h('button', { type: 'button', id: 'invite-download', onclick: async () => {
    try {
      saveBytes(await content(base + '/content'), inv.document_title || 'document', urls);
    } catch (e) { preview.append(errorBox(e)); }
  } }, 'Download the document');
  body.append(h('div', { class: 'cols' }, details,
    h('section', { class: 'card', 'aria-labelledby': 'inv-preview-h' }, h('h2', { id: 'inv-preview-h' }, 'The document'),
      h('p', { class: 'hint' }, 'This is the exact content you are asked about (pinned by its SHA-256).'), preview, download)));
  renderPreview(preview, base + '/content', inv, urls);

  const outcome = h('div', { id: 'invite-outcome', 'aria-live': 'polite' });
  const actCard = h('section', { class: 'card', 'aria-labelledby': 'inv-act-h', id: 'invite-act' });
  body.append(actCard, outcome);
  drawAction(actCard, outcome, base, inv);
  return () => urls.forEach(u => URL.revokeObjectURL(u));
}

// drawAction shows what the recipient may do now.
function drawAction(card, outcome, base, inv) {
  const rc = inv.recipient || {};
  clear(card);
  card.append(h('h2', { id: 'inv-act-h' }, 'Your answer'));
  if (!inv.can_act) {
    let why;
    if (rc.role === 'viewer') why = 'You have viewed the document: that is all this request asks of you.';
    else if (rc.role === 'cc') why = 'You receive a copy: nothing is asked of you. The completed document and its certificate come by mail.';
    else if (['signed', 'approved', 'declined'].includes(inv.state)) why = `You have ${inv.state}.`;
    else why = 'Not your turn yet: recipients earlier in the order must finish first. You will get another mail when it is.';
    card.append(h('p', { id: 'invite-wait' }, why));
    return;
  }
  const consent = h('input', { type: 'checkbox', id: 'invite-consent', name: 'consent' });
  const consentRow = h('div', { class: 'check' }, consent, h('label', { for: 'invite-consent' },
    `I agree to ${rc.role === 'approver' ? 'approve' : 'sign'} this document electronically, and that doing so binds me as a handwritten ${rc.role === 'approver' ? 'approval' : 'signature'} would.`));
  const msg = h('div', { 'aria-live': 'polite', id: 'invite-msg' });
  const done = (out, what) => {
    inv = out;
    clear(card);
    card.remove();
    const text = what === 'decline' ? 'You declined. The sender has been told; nothing more is needed from you.'
      : `You ${what === 'sign' ? 'signed' : 'approved'}. Thank you. The request is now ${out.request_state.replace('_', ' ')}.`;
    outcome.replaceChildren(h('div', { class: 'card done', role: 'status', 'data-state': out.state, 'data-request-state': out.request_state },
      h('h2', {}, what === 'decline' ? 'Declined' : 'Done'), h('p', { id: 'invite-outcome-text' }, text)));
    document.getElementById('invite-state')?.replaceChildren(statusBadge(out.state));
    document.getElementById('invite-request-state')?.replaceChildren(statusBadge(out.request_state));
    announce(text);
  };
  const act = async (what, payload, button) => {
    msg.replaceChildren();
    button.disabled = true;
    try {
      done(await call('POST', `${base}/${what}`, payload), what);
    } catch (e) {
      button.disabled = false;
      const why = unusable(e);
      msg.append(why ? h('div', { class: 'error', role: 'alert' }, h('strong', {}, why[0]), ': ', why[1]) : errorBox(e));
    }
  };

  if (rc.role === 'signer') {
    const pad = signaturePad();
    const name = h('input', { id: 'invite-name', name: 'name', autocomplete: 'name', maxlength: '255', value: rc.name || '' });
    const typed = h('input', { id: 'invite-typed', name: 'typed', autocomplete: 'off', maxlength: '255' });
    const modeDraw = h('input', { type: 'radio', name: 'invite-mode', id: 'invite-mode-draw', value: 'draw', checked: true });
    const modeType = h('input', { type: 'radio', name: 'invite-mode', id: 'invite-mode-type', value: 'type' });
    const typedRow = h('div', { class: 'typed', hidden: true }, h('label', { for: 'invite-typed' }, 'Type your name as your signature'), typed);
    const setMode = () => {
      typedRow.hidden = !modeType.checked;
      if (modeType.checked) pad.typeName(typed.value.trim()); else pad.clear();
    };
    modeDraw.addEventListener('change', setMode);
    modeType.addEventListener('change', setMode);
    typed.addEventListener('input', () => pad.typeName(typed.value.trim()));
    const submit = h('button', { type: 'submit', class: 'primary', id: 'invite-sign' }, 'Sign');
    card.append(h('form', { class: 'stack', id: 'invite-sign-form', onsubmit: e => {
      e.preventDefault();
      msg.replaceChildren();
      if (modeType.checked) pad.typeName(typed.value.trim());
      if (pad.isEmpty()) { msg.append(h('p', { class: 'error', role: 'alert' }, 'Draw or type your signature first.')); return; }
      // consent goes as it is: the API refuses a sign without it and says why.
      act('sign', { consent: consent.checked, signature_data: pad.dataURL(), name: name.value.trim() }, submit);
    } },
    h('fieldset', {}, h('legend', {}, 'Your signature'),
      h('div', { class: 'radios' }, modeDraw, h('label', { for: 'invite-mode-draw' }, 'Draw'), modeType, h('label', { for: 'invite-mode-type' }, 'Type')),
      h('div', { class: 'padrow' }, pad.canvas, h('button', { type: 'button', onclick: () => pad.clear() }, 'Clear drawing')), typedRow),
    h('label', { for: 'invite-name' }, 'Your name'), name, consentRow, submit));
  } else {
    const submit = h('button', { type: 'submit', class: 'primary', id: 'invite-approve' }, 'Approve');
    card.append(h('form', { class: 'stack', id: 'invite-approve-form', onsubmit: e => {
      e.preventDefault();
      act('approve', { consent: consent.checked }, submit);
    } }, consentRow, submit));
  }

  const reason = h('textarea', { id: 'invite-reason', name: 'reason', rows: '3', maxlength: '10000' });
  const declineBtn = h('button', { type: 'submit', id: 'invite-decline' }, 'Decline');
  card.append(h('details', { class: 'decline' }, h('summary', {}, 'Decline instead'),
    h('form', { class: 'stack', id: 'invite-decline-form', onsubmit: e => {
      e.preventDefault();
      act('decline', { reason: reason.value.trim() }, declineBtn);
    } }, h('label', { for: 'invite-reason' }, 'Why (optional, the sender sees it)'), reason, declineBtn)), msg);
}

async function renderPreview(box, path, inv, urls) {
  const ct = String(inv.content_type || '').split(';')[0].trim().toLowerCase();
  const note = t => box.replaceChildren(h('p', { class: 'hint' }, t));
  try {
    if (ct === 'application/pdf') {
      note('Rendering page 1…');
      const pdfjs = await import('/app/vendor/pdfjs/pdf.min.mjs');
      pdfjs.GlobalWorkerOptions.workerSrc = '/app/vendor/pdfjs/pdf.worker.min.mjs';
      const data = new Uint8Array(await (await content(path)).arrayBuffer());
      const pdf = await pdfjs.getDocument({ data, isEvalSupported: false, useSystemFonts: true }).promise;
      const page = await pdf.getPage(1);
      const base = page.getViewport({ scale: 1 });
      const viewport = page.getViewport({ scale: Math.min(2, 800 / base.width) });
      const canvas = h('canvas', { width: String(Math.floor(viewport.width)), height: String(Math.floor(viewport.height)), id: 'invite-pdf',
        role: 'img', 'aria-label': `Page 1 of ${pdf.numPages} of the PDF` });
      await page.render({ canvas, canvasContext: canvas.getContext('2d'), viewport }).promise;
      canvas.dataset.rendered = 'true';
      box.replaceChildren(canvas, h('p', { class: 'hint' }, `Page 1 of ${pdf.numPages}; download it for every page.`));
    } else if (IMAGE_TYPES.includes(ct)) {
      const url = URL.createObjectURL(new Blob([await content(path)], { type: ct }));
      urls.push(url);
      box.replaceChildren(h('img', { src: url, alt: `The document ${inv.document_title}` }));
    } else if (TEXT_TYPES.includes(ct)) {
      const b = await content(path);
      box.replaceChildren(h('pre', { id: 'invite-text', tabindex: '0', 'aria-label': 'The document as text' }, await b.slice(0, TEXT_PREVIEW_MAX).text()));
      if (b.size > TEXT_PREVIEW_MAX) box.append(h('p', { class: 'hint' }, 'Preview cut; download it for the rest.'));
    } else {
      note(`No preview for ${ct || 'this type'}: download it to open it with an application you trust.`);
    }
  } catch (e) {
    box.replaceChildren(errorBox(e));
  }
}
