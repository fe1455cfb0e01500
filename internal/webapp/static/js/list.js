// The home page: the document list with filters, sorting and keyset
// paging (X-Next-Cursor), live through the list feed (WS /ws, resumed
// with since), and uploads (drag and drop or the file picker, several
// files, a progress bar each).
import { h, clear, announce, fmtTime, fmtSize, statusBadge, errorBox } from './dom.js';
import { api, upload, noteWrite } from './api.js';
import { session } from './auth.js';
import { Feed, eventDocID, eventStatus } from './live.js';

export const STATUSES = ['created', 'sent', 'viewed', 'pending', 'approved', 'signed', 'completed', 'cancelled', 'archived'];
const PAGE = 25;
// SORTS are GET /documents' sort values and their labels.
const SORTS = [['-created_at', 'newest first'], ['created_at', 'oldest first'], ['-updated_at', 'recently updated'],
  ['updated_at', 'least recently updated'], ['title', 'title A–Z'], ['-title', 'title Z–A']];
const DEFAULT_SORT = '-created_at';
const ANON_EMAIL = 'docstream.anonymousEmail';

export function listPage(main) {
  const params = new URLSearchParams(location.search);
  const state = {
    status: params.get('status') || '', created_by: params.get('created_by') || '',
    from: params.get('from') || '', to: params.get('to') || '', sort: params.get('sort') || DEFAULT_SORT,
  };
  if (!SORTS.some(([v]) => v === state.sort)) state.sort = DEFAULT_SORT;
  main.append(h('h1', {}, 'Documents'));

  // Upload.
  const input = h('input', { type: 'file', id: 'upload-input', multiple: true, class: 'file-input' });
  const uploads = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  // Signed in, the creator is the session's identity; an anonymous
  // visitor (open mode) says who they are, as the reference's created_by
  // asks, and the browser remembers it.
  const email = session() ? null : h('input', { type: 'email', id: 'upload-email', name: 'created_by', autocomplete: 'email',
    required: true, value: localStorage.getItem(ANON_EMAIL) || '' });
  const drop = h('section', { class: 'drop', id: 'drop', 'aria-labelledby': 'upload-h' },
    h('h2', { id: 'upload-h' }, 'Upload'),
    email && h('p', {}, h('label', { for: 'upload-email' }, 'Your email (recorded as the creator)'), ' ', email),
    h('p', {}, 'Drop files here, or ', h('label', { for: 'upload-input', class: 'button' }, 'choose files'), '.'),
    input, uploads);
  const sendAll = files => { for (const f of files) sendOne(f); };
  const sendOne = file => {
    const bar = h('progress', { max: '100', value: '0', 'aria-label': `Upload progress of ${file.name}` });
    const note = h('span', { class: 'note' }, 'uploading…');
    const li = h('li', { class: 'upload' }, h('span', { class: 'name' }, file.name), bar, note);
    uploads.append(li);
    if (email && (!email.value.trim() || !email.checkValidity())) {
      clear(note).append(h('p', { class: 'error', role: 'alert' }, 'Enter your email above first: every document records who created it.'));
      email.focus();
      return;
    }
    if (email) localStorage.setItem(ANON_EMAIL, email.value.trim());
    upload(file, { createdBy: email ? email.value.trim() : '', onProgress: p => { bar.value = Math.round(p * 100); } }).then(({ doc, lsn }) => {
      noteWrite(lsn);
      const find = new URLSearchParams({ q: doc.title || file.name });
      if (lsn) find.set('min_lsn', lsn);
      clear(note).append('uploaded: ', h('a', { href: '/app/documents/' + encodeURIComponent(doc.id), 'data-link': '' }, 'open'),
        ' · ', h('a', { href: '/app/search?' + find, 'data-link': '', class: 'find' }, 'find in search'));
      li.dataset.documentId = doc.id;
      announce(`${file.name} uploaded`);
      // Read your write: the first page again at the upload's commit, so
      // the new document shows in its place at once, whatever the feed
      // does (it may be reconnecting, or the order may not be newest
      // first). Search links carry the same LSN.
      firstPageAgain(lsn);
    }, e => {
      clear(note).append(errorBox(e));
      announce(`${file.name} failed: ${e.message}`);
    });
  };
  input.addEventListener('change', () => { sendAll(input.files); input.value = ''; });
  drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', e => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer && e.dataTransfer.files.length) sendAll(e.dataTransfer.files);
  });
  main.append(drop);

  // Filters.
  const status = h('select', { id: 'f-status', name: 'status' }, h('option', { value: '' }, 'any'),
    STATUSES.map(s => h('option', { value: s, selected: s === state.status }, s)));
  const creator = h('input', { id: 'f-creator', name: 'created_by', value: state.created_by, autocomplete: 'off' });
  const from = h('input', { id: 'f-from', name: 'from', type: 'date', value: state.from });
  const to = h('input', { id: 'f-to', name: 'to', type: 'date', value: state.to });
  const sort = h('select', { id: 'f-sort', name: 'sort' },
    SORTS.map(([v, t]) => h('option', { value: v, selected: v === state.sort }, t)));
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter documents', onsubmit: e => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (status.value) q.set('status', status.value);
    if (creator.value.trim()) q.set('created_by', creator.value.trim());
    if (from.value) q.set('from', from.value);
    if (to.value) q.set('to', to.value);
    if (sort.value !== DEFAULT_SORT) q.set('sort', sort.value);
    history.replaceState(null, '', '/' + (q.toString() ? '?' + q : ''));
    Object.assign(state, { status: status.value, created_by: creator.value.trim(), from: from.value, to: to.value, sort: sort.value });
    reload();
  } },
  h('div', {}, h('label', { for: 'f-status' }, 'Status'), status),
  h('div', {}, h('label', { for: 'f-creator' }, 'Created by'), creator),
  h('div', {}, h('label', { for: 'f-from' }, 'Created from'), from),
  h('div', {}, h('label', { for: 'f-to' }, 'Created until'), to),
  h('div', {}, h('label', { for: 'f-sort' }, 'Sort'), sort),
  h('div', {}, h('button', { type: 'submit' }, 'Apply')));
  main.append(filters);

  const live = h('p', { class: 'live', id: 'live-state', 'aria-live': 'polite' }, 'connecting…');
  const tbody = h('tbody', { id: 'doc-rows' });
  const table = h('table', { class: 'docs' }, h('caption', { class: 'visually-hidden' }, 'Documents'),
    h('thead', {}, h('tr', {}, ['Title', 'Status', 'Created by', 'Type', 'Size', 'Created', 'Updated'].map(t => h('th', { scope: 'col' }, t)))),
    tbody);
  const more = h('button', { type: 'button', id: 'more', hidden: true }, 'More documents');
  const info = h('div', {});
  main.append(live, h('div', { class: 'table-wrap' }, table), more, info);

  let cursor = null;
  let seq = 0;

  function query({ first = false } = {}) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (state.status) q.set('status', state.status);
    if (state.created_by) q.set('created_by', state.created_by);
    // Dates are the user's local days: from its midnight, until the next.
    // created_after is exclusive and created_at has microseconds: the
    // bound is the last microsecond before midnight, so that a document
    // created at midnight itself is in.
    if (state.from) q.set('created_after', new Date(new Date(state.from + 'T00:00:00').getTime() - 1).toISOString().replace('Z', '999Z'));
    if (state.to) { const d = new Date(state.to + 'T00:00:00'); d.setDate(d.getDate() + 1); q.set('created_before', d.toISOString()); }
    // The API's sort values (GET /documents?sort=), the default left out.
    if (state.sort && state.sort !== DEFAULT_SORT) q.set('sort', state.sort);
    if (cursor && !first) q.set('cursor', cursor);
    return q;
  }

  // signingBadge is the state of the document's newest signing request
  // beside its status (nothing when it never had one): a declined,
  // expired or cancelled request leaves the status as it was.
  function signingBadge(s) {
    return s ? h('span', { class: 'badge signing', 'data-signing-status': s, title: 'signing request', text: 'request ' + s }) : null;
  }

  function row(d) {
    return h('tr', { 'data-id': d.id },
      h('td', {}, h('a', { href: '/app/documents/' + encodeURIComponent(d.id), 'data-link': '', class: 'title' }, d.title || '(untitled)')),
      h('td', { class: 'st' }, statusBadge(d.status), h('span', { class: 'signing' }, signingBadge(d.signing_status))),
      h('td', {}, d.created_by || ''),
      h('td', {}, d.content_type || ''),
      h('td', {}, fmtSize(d.content_size)),
      h('td', {}, fmtTime(d.created_at)),
      h('td', { class: 'upd' }, fmtTime(d.updated_at)));
  }

  async function page() {
    const mine = seq;
    try {
      const { data, headers } = await api('GET', '/documents?' + query());
      if (mine !== seq) return;
      for (const d of data || []) if (!tbody.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`)) tbody.append(row(d));
      cursor = headers.get('X-Next-Cursor');
      more.hidden = !cursor;
      if (!tbody.firstChild) info.replaceChildren(h('p', { class: 'empty' }, 'No documents yet.'));
      else info.replaceChildren();
    } catch (e) {
      if (mine === seq) info.replaceChildren(errorBox(e));
    }
  }

  function reload() {
    seq++;
    cursor = null;
    clear(tbody);
    page();
  }
  more.addEventListener('click', page);

  // firstPageAgain reads the first page (with min_lsn, read-your-writes,
  // when lsn is set), redraws its rows already shown if asked (not after
  // an upload: the feed may have drawn a newer status than this read
  // saw), and puts the others
  // after their predecessor on that page, leaving the rest of the pages
  // already loaded as they are. (A document deleted meanwhile stays until
  // a reload: only the feed reports deletes.)
  async function firstPageAgain(lsn, { redraw = false } = {}) {
    const mine = seq;
    const q = query({ first: true });
    if (lsn) q.set('min_lsn', lsn);
    try {
      const { data } = await api('GET', '/documents?' + q);
      if (mine !== seq) return;
      let prev = null;
      for (const d of data || []) {
        let tr = tbody.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`);
        if (!tr) {
          tr = row(d);
          if (prev) prev.after(tr); else tbody.prepend(tr);
        } else if (redraw) {
          const fresh = row(d); // its current status and title
          tr.replaceWith(fresh);
          tr = fresh;
        }
        prev = tr;
      }
      if (tbody.firstChild) info.replaceChildren();
    } catch (e) {
      if (mine === seq) info.replaceChildren(errorBox(e));
    }
  }

  function matches(d) {
    if (state.status && d.status !== state.status) return false;
    if (state.created_by && d.created_by !== state.created_by) return false;
    const t = Date.parse(d.created_at || '');
    if (state.from && !(t >= new Date(state.from + 'T00:00:00').getTime())) return false;
    if (state.to) { const e = new Date(state.to + 'T00:00:00'); e.setDate(e.getDate() + 1); if (!(t < e.getTime())) return false; }
    return true;
  }

  const feed = new Feed('/ws', {
    onState: (s, { resumed } = {}) => {
      // A connection without a position (no event seen yet: the first
      // one, or a reconnection before any event) replays nothing; the
      // first page read again covers what committed before it opened.
      if (s === 'live' && !resumed) firstPageAgain('', { redraw: true });
      live.textContent = { live: 'Live: new documents and status changes appear here.', connecting: 'connecting…',
      reconnecting: 'Connection lost; reconnecting (nothing will be missed)…', closed: '' }[s] || s; live.dataset.state = s;
    },
    onMessage: msg => {
      const id = eventDocID(msg);
      if (!id) return;
      const tr = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
      const d = msg.data || {};
      if (msg.type === 'document.deleted') { if (tr) tr.remove(); return; }
      if (msg.type === 'document.created') {
        const doc = { id, title: d.title, status: d.status, created_by: d.created_by, content_type: d.content_type,
          content_size: d.content_size, created_at: d.created_at || msg.timestamp, updated_at: d.updated_at || msg.timestamp };
        // A new document belongs at the top of a newest-first list; in
        // other orders it shows when the user pages or reloads.
        if (!tr && matches(doc) && (state.sort === '-created_at' || state.sort === '-updated_at')) {
          tbody.prepend(row(doc));
          info.replaceChildren();
          announce(`New document: ${doc.title}`);
        }
        return;
      }
      if (!tr) return;
      const st = eventStatus(msg);
      if (st && msg.type !== 'signature.added') {
        if (state.status && st !== state.status) { tr.remove(); return; }
        tr.querySelector('.st').firstChild.replaceWith(statusBadge(st));
        announce(`${d.title || 'A document'} is now ${st}`);
      }
      if (msg.type === 'document.updated' && d.title) tr.querySelector('a.title').textContent = d.title;
      if (msg.type === 'document.updated' && d.signing_status) tr.querySelector('.st .signing').replaceChildren(signingBadge(d.signing_status));
      if (d.updated_at) tr.querySelector('.upd').textContent = fmtTime(d.updated_at);
    },
  });

  reload();
  return () => feed.close();
}
