// The signature pad: draw with a mouse, a finger or a pen (pointer
// events, one path per stroke, pressure ignored), or type a name that is
// drawn in a script face. Either way the result is a PNG data: URL, which
// is what POST /signatures stores as signature_data.
import { h } from './dom.js';

export function signaturePad() {
  const canvas = h('canvas', { width: '600', height: '200', class: 'pad', id: 'sign-canvas', role: 'img',
    'aria-label': 'Signature drawing area: draw with a mouse, finger or pen' });
  const ctx = canvas.getContext('2d');
  let drawn = false;
  let last = null;
  const reset = () => {
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = '#1e293b';
    ctx.fillStyle = '#1e293b';
    ctx.lineWidth = 3;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    drawn = false;
  };
  reset();
  const at = e => {
    const r = canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
  };
  canvas.addEventListener('pointerdown', e => {
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    ctx.beginPath();
    ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, Math.PI * 2);
    ctx.fill();
    drawn = true;
    canvas.dispatchEvent(new Event('change'));
  });
  canvas.addEventListener('pointermove', e => {
    if (!last) return;
    const p = at(e);
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    last = p;
  });
  const end = () => { last = null; };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  const typeName = text => {
    reset();
    if (!text) return;
    let size = 72;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'center';
    do {
      ctx.font = `italic ${size}px "Brush Script MT", "Segoe Script", cursive, serif`;
      size -= 4;
    } while (ctx.measureText(text).width > canvas.width - 40 && size > 16);
    ctx.fillText(text, canvas.width / 2, canvas.height / 2);
    drawn = true;
  };

  return {
    canvas,
    clear: reset,
    typeName,
    isEmpty: () => !drawn,
    dataURL: () => canvas.toDataURL('image/png'),
  };
}
