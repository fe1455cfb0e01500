// Operations: GET /ops (through the gateway; admin-only in required mode)
// rendered as tables — CDC slot and lag, bus position, indexer applied LSN
// and lag, connections, request rates — refreshed every 5 s. The shape is
// the webserver's; anything it adds shows as rows without a change here.
import { h, clear, errorBox } from './dom.js';
import { api } from './api.js';

function label(k) { return k.replace(/_/g, ' '); }

function value(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString() : v.toFixed(2);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

// table draws an object as rows; nested objects become their own
// sections (so unknown fields are still shown, as text).
function draw(obj, level = 2) {
  const rows = [];
  const nested = [];
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v)) nested.push([k, v]);
    else rows.push(h('tr', { 'data-key': k }, h('th', { scope: 'row' }, label(k)),
      h('td', {}, Array.isArray(v) ? v.map(x => typeof x === 'object' ? JSON.stringify(x) : String(x)).join(', ') : value(v))));
  }
  const out = [];
  if (rows.length) out.push(h('table', { class: 'kv' }, h('tbody', {}, rows)));
  for (const [k, v] of nested) {
    out.push(h('section', { class: 'card', 'data-section': k }, h('h' + Math.min(level, 6), {}, label(k)), draw(v, level + 1)));
  }
  return out;
}

export function opsPage(main) {
  main.append(h('h1', {}, 'Operations'));
  const stamp = h('p', { class: 'hint', id: 'ops-updated', 'aria-live': 'polite' });
  const body = h('div', { id: 'ops', class: 'ops' });
  main.append(stamp, body);
  let timer;
  let stopped = false;
  const load = async () => {
    try {
      const { data } = await api('GET', '/ops');
      clear(body).append(...draw(data));
      stamp.textContent = 'Updated ' + new Date().toLocaleTimeString() + '; refreshes every 5 seconds.';
    } catch (e) {
      clear(body).append(errorBox(e));
    }
    if (!stopped) timer = setTimeout(load, 5000);
  };
  load();
  return () => { stopped = true; clearTimeout(timer); };
}
