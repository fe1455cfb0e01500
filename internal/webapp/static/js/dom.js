// DOM building without markup: every untrusted string becomes a text node
// or an attribute value, never parsed as HTML (webapp_test.go checks that
// no module sets markup from a string).

// h builds an element. attrs: class, text, on* (functions), hidden,
// checked/disabled/value/selected (properties), anything else an attribute.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'style' || k.startsWith('on')) throw new Error('refusing attribute ' + k);
    else if (['checked', 'disabled', 'value', 'selected', 'hidden', 'multiple'].includes(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// announce tells screen readers (the polite live region) what changed.
export function announce(text) {
  const el = document.getElementById('announce');
  if (el) el.textContent = text;
}

export function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  return isNaN(d) ? String(s) : d.toLocaleString();
}

export function fmtSize(n) {
  if (n === undefined || n === null) return '';
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1024 / 1024).toFixed(1) + ' MiB';
}

export function statusBadge(status) {
  return h('span', { class: 'badge status-' + status, 'data-status': status, text: status });
}

// errorBox shows an API error: its message and each field's problem.
export function errorBox(err) {
  const box = h('div', { class: 'error', role: 'alert' }, err.message || String(err));
  if (err.details && err.details.length) {
    box.append(h('ul', {}, err.details.map(d => h('li', {}, `${d.field}: ${d.message}`))));
  }
  return box;
}

// Saves bytes as a file named name, never opening them here (the type is
// fixed to octet-stream whatever the bytes are). The object URL is pushed
// on urls for the page to revoke when it is left.
export function saveBytes(bytes, name, urls) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  urls.push(url);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
}
