// The document page: metadata, preview (safe types only), download, title
// edit guarded by the version (If-Match), the status actions the state
// machine allows, statistics, shares, signatures and signing, the live
// event feed (WS /ws/{id}) and the audit trail with its verification when
// the API has one.
import { h, clear, announce, fmtTime, fmtSize, statusBadge, errorBox, saveBytes } from './dom.js';
import { api, blob, APIError, noteWrite } from './api.js';
import { session, getSettings } from './auth.js';
import { Feed } from './live.js';
import { signaturePad } from './sign.js';

// transitions mirrors the state machine in internal/document/document.go.
export const TRANSITIONS = {
  created: ['sent', 'viewed', 'pending', 'approved', 'signed', 'cancelled', 'archived'],
  sent: ['viewed', 'pending', 'approved', 'signed', 'cancelled', 'archived'],
  viewed: ['sent', 'pending', 'approved', 'signed', 'cancelled', 'archived'],
  pending: ['sent', 'viewed', 'approved', 'signed', 'cancelled', 'archived'],
  approved: ['signed', 'cancelled', 'archived'],
  signed: ['completed', 'archived'],
  completed: ['archived'],
  cancelled: [],
  archived: [],
};

// Previews are made from these types only, never from the uploader's
// HTML, SVG or anything a browser would run.
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const TEXT_TYPES = ['text/plain', 'text/csv', 'text/markdown', 'application/json'];
const TEXT_PREVIEW_MAX = 256 * 1024;

function baseType(ct) { return String(ct || '').split(';')[0].trim().toLowerCase(); }

export async function documentPage(main, id) {
  const path = '/documents/' + encodeURIComponent(id);
  const closers = [];
  const urls = [];
  let doc;
  let etag;
  try {
    const r = await api('GET', path);
    doc = r.data;
    etag = r.headers.get('ETag') || `"${doc.version}"`;
  } catch (e) {
    main.append(h('h1', {}, 'Document'), errorBox(e), h('p', {}, h('a', { href: '/', 'data-link': '' }, 'Back to the documents')));
    return null;
  }
  document.title = (doc.title || 'Document') + ' · docstream';

  const title = h('h1', { id: 'doc-title' }, doc.title || '(untitled)');
  const badge = h('span', { id: 'doc-status' }, statusBadge(doc.status));
  const meta = h('dl', { class: 'meta' });
  const drawMeta = () => {
    clear(meta);
    const row = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
    meta.append(...row('Status', badge), ...row('Created by', doc.created_by || ''), ...row('Owner', doc.owner || ''),
      ...row('Type', doc.content_type), ...row('Size', fmtSize(doc.content_size)), ...row('Version', String(doc.version)),
      ...row('Created', fmtTime(doc.created_at)), ...row('Updated', fmtTime(doc.updated_at)),
      ...row('SHA-256', h('code', {}, doc.content_sha256 || '')), ...row('Id', h('code', {}, doc.id)));
  };
  const setDoc = (d, tag) => {
    doc = d;
    if (tag) etag = tag;
    title.textContent = d.title || '(untitled)';
    badge.replaceChildren(statusBadge(d.status));
    drawMeta();
    drawActions();
  };
  drawMeta();

  // Title edit, guarded by the version the page holds.
  const titleInput = h('input', { id: 'edit-title', name: 'title', value: doc.title, maxlength: '255', required: true });
  const editMsg = h('div', { 'aria-live': 'polite' });
  const edit = h('form', { class: 'inline', onsubmit: async e => {
    e.preventDefault();
    editMsg.replaceChildren();
    try {
      const r = await api('PATCH', path, { body: { title: titleInput.value }, headers: { 'If-Match': etag } });
      noteWrite(r.headers.get('X-Commit-LSN'));
      setDoc(r.data, r.headers.get('ETag'));
      editMsg.append(h('p', { class: 'ok' }, 'Title saved.'));
    } catch (err) {
      if (err instanceof APIError && err.status === 412) {
        editMsg.append(h('p', { class: 'error', role: 'alert' }, 'Someone changed this document meanwhile; reload to see their version before editing.'),
          h('button', { type: 'button', onclick: () => refresh() }, 'Reload the document'));
      } else editMsg.append(errorBox(err));
    }
  } }, h('label', { for: 'edit-title' }, 'Title'), titleInput, h('button', { type: 'submit' }, 'Save title'), editMsg);

  // Status actions.
  const actions = h('div', { class: 'actions', id: 'status-actions' });
  const actionMsg = h('div', { 'aria-live': 'polite' });
  function drawActions() {
    clear(actions);
    const next = TRANSITIONS[doc.status] || [];
    if (!next.length) actions.append(h('p', { class: 'hint' }, `A ${doc.status} document has no further status.`));
    for (const st of next) {
      actions.append(h('button', { type: 'button', 'data-to': st, onclick: async () => {
        actionMsg.replaceChildren();
        try {
          const r = await api('PATCH', path, { body: { status: st }, headers: { 'If-Match': etag } });
          setDoc(r.data, r.headers.get('ETag'));
          announce(`Status is now ${st}`);
        } catch (err) { actionMsg.append(errorBox(err)); }
      } }, `Mark ${st}`));
    }
  }
  drawActions();

  async function refresh() {
    try {
      const r = await api('GET', path);
      setDoc(r.data, r.headers.get('ETag'));
      titleInput.value = r.data.title;
    } catch (e) { actionMsg.replaceChildren(errorBox(e)); }
  }

  // Download: fetched with the token, saved as bytes (never opened here).
  const download = h('button', { type: 'button', id: 'download', onclick: async () => {
    try {
      saveBytes(await blob(path + '/content'), doc.title || 'document', urls);
    } catch (e) { actionMsg.replaceChildren(errorBox(e)); }
  } }, 'Download');

  const preview = h('div', { class: 'preview', id: 'preview', 'aria-live': 'polite' });
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '/', 'data-link': '' }, 'Documents'), ' › ', 'this document'), title,
    h('div', { class: 'cols' },
      h('section', { class: 'card', 'aria-labelledby': 'details-h' }, h('h2', { id: 'details-h' }, 'Details'), meta, download),
      h('section', { class: 'card', 'aria-labelledby': 'preview-h' }, h('h2', { id: 'preview-h' }, 'Preview'), preview)),
    h('section', { class: 'card', 'aria-labelledby': 'edit-h' }, h('h2', { id: 'edit-h' }, 'Edit'), edit,
      h('h3', {}, 'Status'), actions, actionMsg));

  renderPreview(preview, path, doc, urls);

  // Signing.
  const pad = signaturePad();
  const s = session();
  const signerName = h('input', { id: 'signer-name', name: 'signer_name', required: true, autocomplete: 'name', value: (s && s.name) || '' });
  const signerEmail = h('input', { id: 'signer-email', name: 'signer_email', type: 'email', required: true, autocomplete: 'email', value: (s && s.email) || '' });
  const typed = h('input', { id: 'typed-signature', name: 'typed', autocomplete: 'off' });
  const modeDraw = h('input', { type: 'radio', name: 'sigmode', id: 'mode-draw', value: 'draw', checked: true });
  const modeType = h('input', { type: 'radio', name: 'sigmode', id: 'mode-type', value: 'type' });
  const typedRow = h('div', { class: 'typed', hidden: true }, h('label', { for: 'typed-signature' }, 'Type your name as your signature'), typed);
  const padRow = h('div', { class: 'padrow' }, pad.canvas, h('button', { type: 'button', onclick: () => pad.clear() }, 'Clear drawing'));
  const setMode = () => {
    typedRow.hidden = !modeType.checked;
    if (modeType.checked) pad.typeName(typed.value.trim()); else pad.clear();
  };
  modeDraw.addEventListener('change', setMode);
  modeType.addEventListener('change', setMode);
  typed.addEventListener('input', () => pad.typeName(typed.value.trim()));
  const signMsg = h('div', { 'aria-live': 'polite', id: 'sign-msg' });
  const signForm = h('form', { class: 'stack', id: 'sign-form', onsubmit: async e => {
    e.preventDefault();
    signMsg.replaceChildren();
    if (modeType.checked) pad.typeName(typed.value.trim());
    if (pad.isEmpty()) { signMsg.append(h('p', { class: 'error', role: 'alert' }, 'Draw or type a signature first.')); return; }
    try {
      const r = await api('POST', '/signatures', { body: { document_id: doc.id, signer_name: signerName.value.trim(),
        signer_email: signerEmail.value.trim(), signature_data: pad.dataURL() } });
      signMsg.append(h('p', { class: 'ok' }, `Signed by ${r.data.signer_name}; the document status update is ${r.data.document_status_update}.`));
      announce('Signature recorded');
      loadSignatures();
    } catch (err) { signMsg.append(errorBox(err)); }
  } },
  h('fieldset', {}, h('legend', {}, 'Signature'),
    h('div', { class: 'radios' }, modeDraw, h('label', { for: 'mode-draw' }, 'Draw'), modeType, h('label', { for: 'mode-type' }, 'Type')),
    padRow, typedRow),
  h('label', { for: 'signer-name' }, 'Your name'), signerName,
  h('label', { for: 'signer-email' }, 'Your email'), signerEmail,
  h('button', { type: 'submit', class: 'primary', id: 'sign-submit' }, 'Sign this document'), signMsg);

  const sigList = h('ul', { class: 'sigs', id: 'signatures' });
  const loadSignatures = async () => {
    try {
      const { data } = await api('GET', path + '/signatures');
      clear(sigList);
      if (!data || !data.length) sigList.append(h('li', { class: 'hint' }, 'No signatures yet.'));
      for (const g of data || []) {
        const li = h('li', {}, h('strong', {}, g.signer_name), ` <${g.signer_email}> signed ${fmtTime(g.signed_at)}`,
          g.document_version ? ` (version ${g.document_version})` : '');
        if (g.signature_data && /^data:image\/(png|jpeg);base64,/.test(g.signature_data)) {
          li.append(h('img', { src: g.signature_data, alt: `Signature of ${g.signer_name}`, class: 'sig-img' }));
        }
        sigList.append(li);
      }
    } catch (e) { clear(sigList).append(h('li', {}, errorBox(e))); }
  };
  main.append(h('section', { class: 'card', 'aria-labelledby': 'sign-h' }, h('h2', { id: 'sign-h' }, 'Sign'), signForm,
    h('h3', {}, 'Signatures'), sigList));
  loadSignatures();

  // Statistics and shares.
  const stats = h('p', { id: 'stats' });
  api('GET', path + '/stats').then(({ data }) => stats.replaceChildren(`${data.total_views} views, ${data.unique_views} unique viewers`),
    e => stats.replaceChildren(errorBox(e)));
  const shareList = h('ul', { id: 'shares' });
  const loadShares = async () => {
    try {
      const { data } = await api('GET', path + '/shares');
      clear(shareList);
      const list = Array.isArray(data) ? data : (data && data.shares) || [];
      if (!list.length) shareList.append(h('li', { class: 'hint' }, 'Not shared.'));
      for (const sh of list) {
        shareList.append(h('li', {}, `${sh.grantee}: ${sh.level} `, h('button', { type: 'button', class: 'link', onclick: async () => {
          try { await api('DELETE', path + '/shares/' + encodeURIComponent(sh.grantee)); loadShares(); } catch (e) { shareMsg.replaceChildren(errorBox(e)); }
        } }, `Remove ${sh.grantee}`)));
      }
    } catch (e) { clear(shareList).append(h('li', {}, errorBox(e))); }
  };
  const grantee = h('input', { id: 'share-grantee', name: 'grantee', required: true, placeholder: 'user:bob, email:bob@example.com or group:legal' });
  const level = h('select', { id: 'share-level', name: 'level' }, ['view', 'edit', 'sign', 'own'].map(l => h('option', { value: l }, l)));
  const shareMsg = h('div', { 'aria-live': 'polite' });
  const shareForm = h('form', { class: 'inline', onsubmit: async e => {
    e.preventDefault();
    shareMsg.replaceChildren();
    try { await api('POST', path + '/shares', { body: { grantee: grantee.value.trim(), level: level.value } }); grantee.value = ''; loadShares(); } catch (err) { shareMsg.append(errorBox(err)); }
  } }, h('label', { for: 'share-grantee' }, 'Share with'), grantee, h('label', { for: 'share-level' }, 'Level'), level,
  h('button', { type: 'submit' }, 'Share'), shareMsg);
  main.append(h('div', { class: 'cols' },
    h('section', { class: 'card', 'aria-labelledby': 'stats-h' }, h('h2', { id: 'stats-h' }, 'Statistics'), stats),
    h('section', { class: 'card', 'aria-labelledby': 'shares-h' }, h('h2', { id: 'shares-h' }, 'Shares'), shareList, shareForm)));
  loadShares();

  // Audit trail, when the API has one.
  const audit = h('section', { class: 'card', 'aria-labelledby': 'audit-h', hidden: true }, h('h2', { id: 'audit-h' }, 'Audit trail'));
  main.append(audit);
  loadAudit(audit, path);

  // Live events.
  // Focusable: the list scrolls once it is long, and a scrolling region
  // must be reachable by keyboard (axe: scrollable-region-focusable).
  const events = h('ol', { class: 'events', id: 'events', reversed: true, tabindex: '0', 'aria-label': 'Live events' });
  const liveState = h('p', { class: 'live', id: 'doc-live', 'aria-live': 'polite' });
  main.append(h('section', { class: 'card', 'aria-labelledby': 'events-h' }, h('h2', { id: 'events-h' }, 'Live events'), liveState, events));
  const feed = new Feed('/ws/' + encodeURIComponent(doc.id), {
    onState: st => { liveState.textContent = st === 'live' ? 'Live.' : st === 'closed' ? '' : st + '…'; liveState.dataset.state = st; },
    onMessage: msg => {
      if (!msg.type) return;
      const d = msg.data || {};
      events.prepend(h('li', {}, h('code', {}, msg.type), ' ', fmtTime(msg.timestamp),
        d.new_status ? ` → ${d.new_status}` : '', d.signer_name ? ` by ${d.signer_name}` : ''));
      if (d.new_status && d.new_status !== doc.status) { refresh(); announce(`Status is now ${d.new_status}`); }
      else if (msg.type === 'document.updated') refresh();
      if (msg.type === 'signature.added') loadSignatures();
      if (msg.type === 'document.deleted') actionMsg.replaceChildren(h('p', { class: 'error', role: 'alert' }, 'This document was deleted.'));
    },
  });
  closers.push(() => feed.close());
  if (getSettings().auth_mode === 'open' && !session()) {
    main.append(h('p', { class: 'hint' }, 'Anonymous (open mode). ', h('a', { href: '/app/signin', 'data-link': '' }, 'Sign in'), ' to act as a user.'));
  }
  return () => { closers.forEach(f => f()); urls.forEach(u => URL.revokeObjectURL(u)); };
}

async function renderPreview(box, path, doc, urls) {
  const ct = baseType(doc.content_type);
  const note = t => box.replaceChildren(h('p', { class: 'hint' }, t));
  if (!doc.content_size) return note('No content.');
  try {
    if (ct === 'application/pdf') {
      note('Rendering page 1…');
      const pdfjs = await import('/app/vendor/pdfjs/pdf.min.mjs');
      pdfjs.GlobalWorkerOptions.workerSrc = '/app/vendor/pdfjs/pdf.worker.min.mjs';
      const data = new Uint8Array(await (await blob(path + '/content')).arrayBuffer());
      // No eval (the CSP forbids it) and no font <style> injection.
      const pdf = await pdfjs.getDocument({ data, isEvalSupported: false, disableFontFace: false, useSystemFonts: true }).promise;
      const page = await pdf.getPage(1);
      const base = page.getViewport({ scale: 1 });
      const viewport = page.getViewport({ scale: Math.min(2, 800 / base.width) });
      const canvas = h('canvas', { width: String(Math.floor(viewport.width)), height: String(Math.floor(viewport.height)), id: 'pdf-canvas',
        role: 'img', 'aria-label': `Page 1 of ${pdf.numPages} of the PDF` });
      await page.render({ canvas, canvasContext: canvas.getContext('2d'), viewport }).promise;
      canvas.dataset.rendered = 'true';
      box.replaceChildren(canvas, h('p', { class: 'hint' }, `Page 1 of ${pdf.numPages}.`));
    } else if (IMAGE_TYPES.includes(ct)) {
      const b = await blob(path + '/content');
      // The blob's type is set here from the allow-list, not taken from
      // the server's answer.
      const url = URL.createObjectURL(new Blob([b], { type: ct }));
      urls.push(url);
      box.replaceChildren(h('img', { src: url, alt: `Preview of ${doc.title}`, id: 'preview-img' }));
    } else if (TEXT_TYPES.includes(ct) || ct.startsWith('text/plain')) {
      const b = await blob(path + '/content');
      const text = await b.slice(0, TEXT_PREVIEW_MAX).text();
      box.replaceChildren(h('pre', { id: 'preview-text', tabindex: '0', 'aria-label': 'Text preview' }, text));
      if (b.size > TEXT_PREVIEW_MAX) box.append(h('p', { class: 'hint' }, 'Preview cut; download for the rest.'));
    } else {
      note(`No preview for ${ct || 'this type'}: download it to open it with an application you trust.`);
      box.dataset.previewless = 'true';
    }
  } catch (e) {
    box.replaceChildren(errorBox(e));
  }
}

async function loadAudit(section, path) {
  let entries;
  try {
    entries = (await api('GET', path + '/audit')).data;
  } catch (e) {
    // No audit API in this build (404 for the route) or not allowed: the
    // section stays hidden.
    return;
  }
  section.hidden = false;
  const list = Array.isArray(entries) ? entries : (entries && (entries.entries || entries.items)) || [];
  const result = h('p', { id: 'audit-verify' }, 'Verifying…');
  section.append(result, h('ol', { class: 'events' }, list.map(en => h('li', {}, h('code', {}, en.type || en.event || ''), ' ',
    fmtTime(en.at || en.created_at || en.timestamp), en.actor ? ` by ${en.actor}` : ''))));
  try {
    const v = (await api('GET', path + '/audit/verify')).data || {};
    const ok = v.ok === true || v.valid === true || v.verified === true;
    result.replaceChildren(h('span', { class: ok ? 'ok' : 'error' }, ok ? 'Chain verified.' : 'Verification failed.'),
      v.error || v.reason ? ` ${v.error || v.reason}` : '');
  } catch (e) {
    result.replaceChildren(errorBox(e));
  }
}
