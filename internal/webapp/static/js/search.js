// Search: suggestions as you type (GET /suggest, a title prefix), results
// with their highlighted fragments (GET /search; <mark> tags from the
// index turned into <mark> elements around text nodes, never parsed as
// HTML), facets with counts (GET /aggregations/status|created_by), and a
// note when a hit matched fuzzily (its marked words differ from the query's).
import { h, clear, announce, fmtTime, statusBadge, errorBox } from './dom.js';
import { api, lastWrite } from './api.js';

// Entities the index's HTML highlighter escapes; decoded into text.
const ENTITIES = { '&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&#34;': '"', '&#39;': "'", '&#x27;': "'" };
const unescape = s => s.replace(/&(lt|gt|amp|quot|#34|#39|#x27);/g, m => ENTITIES[m] || m);

// fragment turns one highlighted fragment into nodes, collecting the
// marked words.
export function fragment(text, marked) {
  const out = h('span', { class: 'frag' });
  const parts = String(text).split(/(<mark>|<\/mark>)/);
  let inMark = false;
  for (const p of parts) {
    if (p === '<mark>') { inMark = true; continue; }
    if (p === '</mark>') { inMark = false; continue; }
    if (!p) continue;
    const t = unescape(p);
    if (inMark) { out.append(h('mark', {}, t)); marked.push(t.toLowerCase()); } else out.append(document.createTextNode(t));
  }
  return out;
}

export function searchPage(main) {
  const params = new URLSearchParams(location.search);
  const state = { q: params.get('q') || '', status: params.get('status') || '', created_by: params.get('created_by') || '', min_lsn: params.get('min_lsn') || lastWrite() };
  main.append(h('h1', {}, 'Search'));
  const input = h('input', { id: 'q', name: 'q', type: 'search', value: state.q, autocomplete: 'off', role: 'combobox',
    'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': 'suggestions' });
  const list = h('ul', { id: 'suggestions', role: 'listbox', class: 'suggest', hidden: true, 'aria-label': 'Suggestions' });
  const form = h('form', { role: 'search', class: 'searchbar', onsubmit: e => { e.preventDefault(); hideSuggest(); go({ q: input.value.trim() }); } },
    h('label', { for: 'q' }, 'Search documents'), h('div', { class: 'combo' }, input, list), h('button', { type: 'submit', class: 'primary' }, 'Search'));
  const facets = h('aside', { class: 'facets', 'aria-label': 'Filters' });
  const results = h('div', { id: 'results', 'aria-live': 'polite' });
  main.append(form, h('div', { class: 'search-cols' }, facets, results));

  let active = -1;
  let suggestSeq = 0;
  let timer;
  const hideSuggest = () => { list.hidden = true; input.setAttribute('aria-expanded', 'false'); input.removeAttribute('aria-activedescendant'); active = -1; };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (q.length < 2) { hideSuggest(); return; }
    timer = setTimeout(async () => {
      const mine = ++suggestSeq;
      try {
        const { data } = await api('GET', '/suggest?' + new URLSearchParams({ q }));
        if (mine !== suggestSeq) return;
        clear(list);
        (data.suggestions || []).forEach((s, i) => list.append(h('li', { role: 'option', id: 'sugg-' + i, 'aria-selected': 'false',
          onmousedown: e => { e.preventDefault(); input.value = s; hideSuggest(); go({ q: s }); } }, s)));
        list.hidden = !list.firstChild;
        input.setAttribute('aria-expanded', String(!list.hidden));
      } catch { hideSuggest(); }
    }, 150);
  });
  input.addEventListener('keydown', e => {
    const opts = [...list.children];
    if (list.hidden || !opts.length) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + opts.length) % opts.length;
      opts.forEach((o, i) => o.setAttribute('aria-selected', String(i === active)));
      input.setAttribute('aria-activedescendant', opts[active].id);
    } else if (e.key === 'Enter' && active >= 0) {
      e.preventDefault();
      input.value = opts[active].textContent;
      hideSuggest();
      go({ q: input.value });
    } else if (e.key === 'Escape') hideSuggest();
  });
  input.addEventListener('blur', () => setTimeout(hideSuggest, 100));

  function go(change) {
    Object.assign(state, change);
    const q = new URLSearchParams();
    for (const k of ['q', 'status', 'created_by', 'min_lsn']) if (state[k]) q.set(k, state[k]);
    history.replaceState(null, '', '/app/search' + (q.toString() ? '?' + q : ''));
    run();
  }

  let seq = 0;
  async function run() {
    const mine = ++seq;
    clear(results);
    clear(facets);
    if (!state.q) { results.append(h('p', { class: 'hint' }, 'Type a word from a title or a document\'s content.')); return; }
    const q = new URLSearchParams({ q: state.q, size: '20' });
    if (state.status) q.set('status', state.status);
    if (state.created_by) q.set('created_by', state.created_by);
    if (state.min_lsn) q.set('min_lsn', state.min_lsn);
    try {
      const [res, byStatus, byCreator] = await Promise.all([
        api('GET', '/search?' + q),
        api('GET', '/aggregations/status?' + new URLSearchParams({ q: state.q })),
        api('GET', '/aggregations/created_by?' + new URLSearchParams({ q: state.q })),
      ]);
      if (mine !== seq) return;
      drawFacets(byStatus.data, byCreator.data);
      drawResults(res.data);
    } catch (e) {
      if (mine === seq) results.append(errorBox(e));
    }
  }

  function facet(title, field, agg) {
    const cur = state[field];
    return h('section', {}, h('h2', {}, title), h('ul', {},
      cur ? h('li', {}, h('button', { type: 'button', class: 'link', onclick: () => go({ [field]: '' }) }, `any ${title.toLowerCase()}`)) : null,
      (agg.values || []).map(b => h('li', {}, h('button', { type: 'button', class: 'link', 'aria-pressed': String(cur === b.key),
        'data-facet': field, 'data-value': b.key, onclick: () => go({ [field]: cur === b.key ? '' : b.key }) }, `${b.key} (${b.count})`)))));
  }

  function drawFacets(status, creator) {
    facets.append(facet('Status', 'status', status || {}), facet('Creator', 'created_by', creator || {}));
  }

  function drawResults(data) {
    const words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    const total = `${data.total_relation === 'gte' ? 'at least ' : ''}${data.total} result${data.total === 1 ? '' : 's'}`;
    results.append(h('p', { class: 'count', id: 'result-count' }, total, data.stale ? ' (your latest change may not be searchable yet)' : ''));
    announce(total);
    const ol = h('ol', { class: 'hits' });
    for (const d of data.documents || []) {
      const marked = [];
      const frags = [];
      for (const field of ['title', 'content']) {
        for (const f of (d.highlights && d.highlights[field]) || []) frags.push(h('p', { class: 'hl hl-' + field }, fragment(f, marked)));
      }
      const fuzzy = [...new Set(marked)].filter(m => !words.some(w => m === w || m.startsWith(w)));
      ol.append(h('li', { class: 'hit', 'data-id': d.id },
        h('h2', {}, h('a', { href: '/app/documents/' + encodeURIComponent(d.id), 'data-link': '' }, d.title || '(untitled)')),
        h('p', { class: 'sub' }, statusBadge(d.status), ` by ${d.created_by || 'unknown'}, ${fmtTime(d.created_at)}`),
        frags,
        fuzzy.length ? h('p', { class: 'fuzzy' }, `Fuzzy match: “${fuzzy.join('”, “')}” for “${state.q}”`) : null));
    }
    results.append(ol);
  }

  run();
  return () => clearTimeout(timer);
}
