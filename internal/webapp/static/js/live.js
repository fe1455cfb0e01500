// A WebSocket feed that resumes: each message's lsn is remembered, and a
// dropped connection is reopened with ?since=<lsn> so nothing committed
// meanwhile is missed (the realtime service replays from the bus).
import { wsURL, wsProtocols } from './api.js';

export class Feed {
  // path: /ws (the list feed) or /ws/{id}; onMessage(msg); onState(state,
  // info) with state connecting | live | reconnecting | closed, and on live
  // info.resumed (whether the connection resumed with ?since=).
  constructor(path, { onMessage, onState } = {}) {
    this.path = path;
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.since = null;
    this.closed = false;
    this.delay = 500;
    this.open();
  }

  open() {
    if (this.closed) return;
    this.onState(this.since === null ? 'connecting' : 'reconnecting');
    const url = wsURL(this.path + (this.since !== null ? '?since=' + encodeURIComponent(this.since) : ''));
    const ws = new WebSocket(url, wsProtocols());
    this.ws = ws;
    const resumed = this.since !== null;
    ws.addEventListener('open', () => {
      this.delay = 500;
      // resumed: false when this connection had no position to resume
      // from (no message yet), so the server replays nothing: the page
      // must read again what it shows to cover the time before.
      this.onState('live', { resumed });
    });
    ws.addEventListener('message', e => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      if (msg && typeof msg.lsn === 'number' && msg.lsn > 0) this.since = msg.lsn;
      this.onMessage(msg);
    });
    ws.addEventListener('close', () => {
      if (this.ws !== ws || this.closed) return;
      this.onState('reconnecting');
      // Backoff to 10 s, jittered so many tabs do not reconnect at once.
      const wait = this.delay * (0.75 + Math.random() / 2);
      this.delay = Math.min(this.delay * 2, 10000);
      this.timer = setTimeout(() => this.open(), wait);
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.onState('closed');
  }
}

// eventDocID is the document a feed message is about.
export function eventDocID(msg) {
  return msg && msg.data && msg.data.document_id;
}

// eventStatus is the status a message leaves its document in, if it says.
export function eventStatus(msg) {
  const d = (msg && msg.data) || {};
  return d.new_status || d.status || '';
}
