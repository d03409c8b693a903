// minigpt attention viewer: everything the page shows comes from the data
// blocks `minigpt view` embeds (see src/viewer/html.cpp for their format).
//
// Attention weights arrive as base64 of uint8 values q = round(255 * sqrt(w)),
// one block per layer; inside it head h starts at byte h * head_bytes and row t
// (t + 1 weights) at t * (t + 1) / 2 from there. Rows are decoded on demand, a
// few hundred bytes per head, so a 12 x 12 x 1024 context (75 M weights) costs
// nothing until a token is picked. Decoded weight: (q / 255)^2, which is within
// sqrt(w) / 255 + 1 / 260100 of the exported value.
(function () {
  'use strict';
  const tStart = performance.now();
  const $ = (id) => document.getElementById(id);
  const D = JSON.parse($('mg-data').textContent);
  const tParsed = performance.now();

  // A token with no text (SentencePiece's <s>, say) is shown as its id, so it can still be picked.
  const ids = D.tokens.ids, texts = D.tokens.text.map((s, i) => s === '' ? `\u27e8${ids[i]}\u27e9` : s);
  const noText = (i) => D.tokens.text[i] === '';
  const T = ids.length, P = D.tokens.n_prompt, hexOf = D.tokens.hex || {};
  const A = D.attention;
  const L = A ? A.n_layer : 0, H = A ? A.n_head : 0, R = A ? A.n_rows : 0;

  // ---- colour map (light -> dark blue, from ColorBrewer "Blues"), indexed by q ----
  const MASKED = [232, 228, 222];  // positions after the selected token (causal mask)
  const CMAP = (() => {
    const stops = [[247, 251, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
      [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107]];
    const out = new Uint8Array(256 * 3);
    for (let q = 0; q < 256; q++) {
      const x = q / 255 * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
      for (let c = 0; c < 3; c++) out[q * 3 + c] = Math.round(stops[i][c] * (1 - f) + stops[i + 1][c] * f);
    }
    return out;
  })();
  const rgb = (q) => `rgb(${CMAP[q * 3]},${CMAP[q * 3 + 1]},${CMAP[q * 3 + 2]})`;
  const DEQ = new Float64Array(256).map((_, q) => (q / 255) * (q / 255));

  // ---- attention rows, decoded lazily from base64 ----
  const B64 = new Uint8Array(128);
  'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => { B64[c.charCodeAt(0)] = i; });
  const layerText = [];
  const layerString = (l) => layerText[l] || (layerText[l] = $(A.layers[l]).textContent);

  // Writes row t of head (l, h) (t + 1 bytes) into out[at..].
  function decodeRow(l, h, t, out, at) {
    const s = layerString(l);
    const start = h * A.head_bytes + t * (t + 1) / 2, end = start + t + 1;
    for (let g = Math.floor(start / 3), b = g * 3; b < end; g++, b += 3) {
      const c = g * 4;
      const v = (B64[s.charCodeAt(c)] << 18) | (B64[s.charCodeAt(c + 1)] << 12) |
        (B64[s.charCodeAt(c + 2)] << 6) | B64[s.charCodeAt(c + 3)];
      if (b >= start) out[at + b - start] = v >>> 16;
      if (b + 1 >= start && b + 1 < end) out[at + b + 1 - start] = (v >>> 8) & 255;
      if (b + 2 >= start && b + 2 < end) out[at + b + 2 - start] = v & 255;
    }
  }

  let thumbs = null;  // L*H*S*S bytes: each head's whole pattern, block-averaged
  function thumbBytes() {
    if (!thumbs) {
      const bin = atob($(A.thumb.id).textContent);
      thumbs = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) thumbs[i] = bin.charCodeAt(i);
    }
    return thumbs;
  }

  // ---- state ----
  // scale 'abs': colour index q itself (∝ √weight); 'row': q / (row max) * 255, which
  // brings out the structure of diffuse heads (∝ √(weight / row max)).
  const st = { t: 0, cl: 0, ch: 0, mode: 'row', scale: 'abs', rows: null, rowT: -1, lastSelectMs: 0 };
  const hasRow = (t) => A && t < R;
  // The selected token's quantised rows for every head: rows[(l*H + h)*(t+1) + j].
  function rowsFor(t) {
    if (st.rowT === t) return st.rows;
    const n = t + 1, rows = new Uint8Array(L * H * n);
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) decodeRow(l, h, t, rows, (l * H + h) * n);
    st.rows = rows; st.rowT = t;
    return rows;
  }
  const headRow = (l, h) => rowsFor(st.t).subarray((l * H + h) * (st.t + 1), (l * H + h + 1) * (st.t + 1));

  // ---- text ----
  const tokEls = [];
  function buildTokens() {
    const frag = document.createDocumentFragment();
    for (let i = 0; i < T; i++) {
      const s = document.createElement('span');
      const txt = texts[i];
      const nl = txt.endsWith('\n');
      s.className = 'tok ' + (i < P ? 'p' : 'g') + (nl ? ' nl' : '') + (noText(i) ? ' empty' : '');
      s.textContent = nl ? txt.slice(0, -1) : txt;
      s.dataset.i = i;
      s.title = `#${i} id ${ids[i]}` + (i < P ? ' (prompt)' : ' (generated)') + (hexOf[i] ? ` bytes ${hexOf[i]}` : '');
      frag.appendChild(s);
      if (nl) frag.appendChild(document.createTextNode('\n'));
      tokEls.push(s);
    }
    $('tokens').appendChild(frag);
    $('tokens').addEventListener('click', (e) => { const i = e.target.dataset && e.target.dataset.i; if (i !== undefined) select(+i); });
  }
  const shade = new Int16Array(T).fill(-1);
  function drawTokenShading() {
    const t = st.t, row = hasRow(t) ? headRow(st.cl, st.ch) : null;
    for (let j = 0; j < T; j++) {
      const q = row && j <= t && row[j] > 0 ? row[j] : -1;
      if (q === shade[j]) continue;
      shade[j] = q;
      tokEls[j].style.backgroundColor = q < 0 ? '' : rgb(q);
      tokEls[j].style.color = q > 170 ? '#fff' : '';
    }
  }

  // ---- grid of heads ----
  const cells = [];  // {canvas, ctx, wrap}
  // Row mode lays the selected token's row (positions 0..t) out in a square,
  // left to right then top to bottom, so every cell is filled whatever t is.
  const wrapOf = (t) => { const n = t + 1, cols = Math.ceil(Math.sqrt(n)); return { n, cols, rows: Math.ceil(n / cols) }; };
  function cellCss() {  // cell side in CSS pixels: the grid fills the panel's width
    const w = $('grid-panel').clientWidth - 22 - 28 - 3 * H;
    return Math.max(24, Math.min(84, Math.floor(w / Math.max(H, 1)) - 4));
  }
  function buildGrid() {
    const g = $('grid');
    if (!A) { g.textContent = 'No attention file given (minigpt view TRACE --attention FILE).'; return; }
    const px = cellCss();
    g.style.gridTemplateColumns = `28px repeat(${H}, ${px + 2}px)`;
    g.appendChild(document.createElement('div'));
    for (let h = 0; h < H; h++) { const d = document.createElement('div'); d.className = 'axis'; d.style.textAlign = 'center'; d.textContent = 'H' + h; g.appendChild(d); }
    for (let l = 0; l < L; l++) {
      const ax = document.createElement('div'); ax.className = 'axis'; ax.textContent = 'L' + l; g.appendChild(ax);
      for (let h = 0; h < H; h++) {
        const wrap = document.createElement('div'); wrap.className = 'cell'; wrap.title = `L${l}H${h}`;
        const c = document.createElement('canvas');
        c.style.width = c.style.height = px + 'px';
        wrap.appendChild(c);
        wrap.addEventListener('click', () => chooseHead(l, h));
        g.appendChild(wrap);
        cells.push({ canvas: c, ctx: c.getContext('2d', { willReadFrequently: true }), wrap });
      }
    }
    const lg = document.createElement('canvas'); lg.width = 256; lg.height = 1; lg.style.width = '160px'; lg.style.height = '10px';
    const li = lg.getContext('2d').createImageData(256, 1);
    for (let q = 0; q < 256; q++) { li.data.set([CMAP[q * 3], CMAP[q * 3 + 1], CMAP[q * 3 + 2], 255], q * 4); }
    lg.getContext('2d').putImageData(li, 0, 0);
    const leg = $('legend');
    const hi = document.createElement('span'); hi.id = 'legend-hi';
    leg.append('weight 0', lg, hi);
    legendText();
  }
  function drawGrid() {
    if (!A) return;
    const t = st.t;
    if (st.mode === 'pattern') return drawPatterns();
    const { n, cols, rows: nr } = wrapOf(t);
    for (let k = 0; k < L * H; k++) {
      const { canvas, ctx } = cells[k];
      if (canvas.width !== cols || canvas.height !== nr) { canvas.width = cols; canvas.height = nr; }
      const img = ctx.createImageData(cols, nr), px = img.data;
      const row = hasRow(t) ? rowsFor(t).subarray(k * n, (k + 1) * n) : null;
      let f = 1;
      if (row && st.scale === 'row') { let m = 1; for (let j = 0; j < n; j++) m = Math.max(m, row[j]); f = 255 / m; }
      for (let j = 0; j < n; j++) {  // pixels past n stay transparent
        const o = j * 4;
        if (row) { const q = f === 1 ? row[j] : Math.round(row[j] * f); px[o] = CMAP[q * 3]; px[o + 1] = CMAP[q * 3 + 1]; px[o + 2] = CMAP[q * 3 + 2]; }
        else { px[o] = MASKED[0]; px[o + 1] = MASKED[1]; px[o + 2] = MASKED[2]; }
        px[o + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
    }
  }
  function legendText() {
    const el = $('legend-hi');
    if (el) el.textContent = st.scale === 'row' && st.mode === 'row' ? "the row's largest (colour \u221d \u221a(weight \u00f7 row max))" : '1 (colour \u221d \u221aweight)';
  }
  // Pattern mode: each head's whole (block-averaged) pattern, the selected row marked.
  function drawPatterns() {
    const S = A.thumb.size, tb = thumbBytes();
    const mark = Math.min(S - 1, Math.floor(st.t * S / Math.max(R, 1)));
    for (let k = 0; k < L * H; k++) {
      const { canvas, ctx } = cells[k];
      if (canvas.width !== S || canvas.height !== S) { canvas.width = S; canvas.height = S; }
      const img = ctx.createImageData(S, S), px = img.data;
      for (let i = 0; i < S * S; i++) {
        const q = tb[k * S * S + i], o = i * 4, y = Math.floor(i / S), x = i % S;
        const c = x > y ? MASKED : [CMAP[q * 3], CMAP[q * 3 + 1], CMAP[q * 3 + 2]];
        px[o] = c[0]; px[o + 1] = c[1]; px[o + 2] = c[2]; px[o + 3] = 255;
        if (y === mark && hasRow(st.t) && x > y) { px[o] = 194; px[o + 1] = 65; px[o + 2] = 12; }
      }
      ctx.putImageData(img, 0, 0);
    }
  }

  // ---- lines for the chosen head (bertviz style), drawn for the visible rows only ----
  const RH = 16;
  const linesCanvas = $('lines'), linesScroll = $('lines-scroll');
  function linesSize() {
    const w = linesScroll.clientWidth, h = linesScroll.clientHeight, dpr = Math.min(window.devicePixelRatio || 1, 2);
    return { w, h, dpr };
  }
  function drawLinesOn(ctx, w, h, top) {
    const t = st.t, xl = Math.round(w * 0.40), xr = Math.round(w * 0.60);
    ctx.clearRect(0, 0, w, h);
    ctx.font = '12px ui-monospace, "DejaVu Sans Mono", monospace';
    ctx.textBaseline = 'middle';
    const first = Math.max(0, Math.floor(top / RH) - 1), last = Math.min(T - 1, Math.ceil((top + h) / RH));
    const y = (j) => j * RH + RH / 2 + 4 - top;
    const row = hasRow(t) ? headRow(st.cl, st.ch) : null;
    // Lines grouped by quantised weight: one path per opacity level. Tokens out
    // of view get one line to the edge whose opacity is their summed weight.
    let above = 0, below = 0, nAbove = 0, nBelow = 0;
    const ys = Math.min(Math.max(y(t), 2), h - 2);  // the source row, kept on the canvas
    if (row) {
      const byQ = new Map();
      for (let j = 0; j <= t; j++) {
        const q = row[j];
        if (q === 0) continue;
        const y1 = y(j);
        if (y1 < 0) { above += DEQ[q]; nAbove++; continue; }
        if (y1 > h) { below += DEQ[q]; nBelow++; continue; }
        (byQ.get(q) || byQ.set(q, []).get(q)).push(y1);
      }
      ctx.lineWidth = 1.6;
      for (const [q, yq] of byQ) {
        ctx.strokeStyle = `rgba(37, 99, 195, ${DEQ[q]})`;
        ctx.beginPath();
        for (const y1 of yq) { ctx.moveTo(xl + 3, ys); ctx.lineTo(xr - 3, y1); }
        ctx.stroke();
      }
      for (const [sum, n, ye] of [[above, nAbove, 1], [below, nBelow, h - 1]]) {
        if (!n) continue;
        ctx.strokeStyle = `rgba(194, 65, 12, ${Math.min(1, Math.max(sum, 0.15))})`;
        ctx.setLineDash([4, 3]); ctx.beginPath(); ctx.moveTo(xl + 3, ys); ctx.lineTo(xr - 3, ye); ctx.stroke(); ctx.setLineDash([]);
      }
    }
    for (let j = first; j <= last; j++) {
      const label = texts[j].replace(/\n/g, '\u21b5'), yy = y(j);
      const q = row && j <= t ? row[j] : 0;
      if (q > 0) { ctx.fillStyle = `rgba(37, 99, 195, ${DEQ[q]})`; ctx.fillRect(xr, yy - RH / 2 + 1, w - xr, RH - 2); }
      if (j === t) { ctx.fillStyle = '#fde4d3'; ctx.fillRect(0, yy - RH / 2 + 1, xl, RH - 2); }
      ctx.fillStyle = j < P ? '#1d232b' : '#9a4d00';
      ctx.textAlign = 'right'; ctx.fillText(label, xl - 2, yy, xl - 4);
      ctx.fillStyle = DEQ[q] > 0.45 ? '#fff' : (j < P ? '#1d232b' : '#9a4d00');
      ctx.textAlign = 'left'; ctx.fillText(label, xr + 2, yy, w - xr - 4);
    }
    for (const [sum, n, ye, arrow] of [[above, nAbove, 9, '\u2191'], [below, nBelow, h - 9, '\u2193']]) {
      if (!n) continue;
      const note = `${arrow} ${sum.toFixed(3)} on ${n} tokens out of view`;
      ctx.font = '11px sans-serif'; ctx.textAlign = 'right';
      const tw = ctx.measureText(note).width;
      ctx.fillStyle = 'rgba(255,255,255,0.92)'; ctx.fillRect(w - tw - 6, ye - 8, tw + 6, 16);
      ctx.fillStyle = '#c2410c'; ctx.fillText(note, w - 3, ye);
    }
  }
  function drawLines() {
    const { w, h, dpr } = linesSize();
    if (linesCanvas.width !== Math.round(w * dpr) || linesCanvas.height !== Math.round(h * dpr)) {
      linesCanvas.width = Math.round(w * dpr); linesCanvas.height = Math.round(h * dpr);
      linesCanvas.style.width = w + 'px'; linesCanvas.style.height = h + 'px';
    }
    const ctx = linesCanvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawLinesOn(ctx, w, h, linesScroll.scrollTop);
  }
  function scrollLinesTo(t) {
    const h = linesScroll.clientHeight, y = t * RH;
    if (y < linesScroll.scrollTop + RH || y > linesScroll.scrollTop + h - 2 * RH) linesScroll.scrollTop = Math.max(0, y - h / 2);
  }

  // ---- step (candidates, logit lens) ----
  const fmt = (x, d = 3) => (x === null || x === undefined || !isFinite(x)) ? '\u2013' : Number(x).toFixed(d);
  // A token's text with its whitespace made visible (a leading space matters).
  const showText = (s) => s.replace(/ /g, '\u2423').replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5').replace(/\r/g, '\u240d');
  function drawStep() {
    const t = st.t, s = D.steps[t], el = $('step');
    $('step-title').textContent = `#${t} \u2039${showText(texts[t])}\u203a`;
    el.textContent = '';
    const kv = document.createElement('div'); kv.className = 'kv';
    const add = (k, v) => { const b = document.createElement('b'); b.textContent = k; const d = document.createElement('span'); d.textContent = v; kv.append(b, d); };
    add('position', String(t)); add('token id', String(ids[t]));
    if (hexOf[t]) add('bytes', hexOf[t] + ' (not valid UTF-8 alone)');
    add('kind', t < P ? 'prompt' : 'generated');
    if (s) { add('log-prob', fmt(s.logprob, 4) + `  (p = ${fmt(Math.exp(s.logprob), 4)})`); add('entropy', fmt(s.entropy, 3) + ' nats'); }
    if (!hasRow(t) && A) add('attention', 'none (this token was never fed to the model)');
    el.appendChild(kv);
    if (!s) { if (t < P) el.append('A prompt token: no sampling step.'); return; }
    el.appendChild(candidateTable(s.top, s.id, 'candidates before sampling filters'));
    if (s.lens && s.lens.length) {
      const box = document.createElement('div'); box.className = 'lens';
      const tab = document.createElement('table'); const cap = tab.createCaption(); cap.textContent = 'logit lens: top tokens per layer';
      s.lens.forEach((cands, l) => {
        const tr = tab.insertRow(); tr.insertCell().textContent = 'L' + l;
        for (const [cid, ctext, p] of cands.slice(0, 4)) { const td = tr.insertCell(); td.className = 't'; td.textContent = `${showText(ctext)} ${fmt(p, 2)}`; td.title = `id ${cid}`; if (cid === s.id) td.style.color = '#c2410c'; }
      });
      box.appendChild(tab); el.appendChild(box);
    }
    if (s.dla && s.dla.heads.length) el.appendChild(dlaTable(s.dla, t));
  }
  // generate --trace --dla: the heads whose direct write raised (red) or lowered (blue)
  // the chosen token's logit most; a row picks that head for the grid and the lines.
  function dlaTable(dla, t) {
    const box = document.createElement('div'); box.className = 'lens';
    const tab = document.createElement('table');
    tab.createCaption().textContent = `direct logit attribution: heads' share of the logit of \u2039${showText(texts[t])}\u203a (${fmt(dla.logit, 3)})`;
    const vmax = Math.max(1e-9, ...dla.heads.map((x) => Math.abs(x[2])));
    for (const [l, h, v] of dla.heads) {
      const tr = tab.insertRow(); tr.title = `L${l}H${h}: click to show this head`; tr.style.cursor = 'pointer';
      if (l === st.cl && h === st.ch) tr.className = 'chosen';
      tr.addEventListener('click', () => { chooseHead(l, h); drawStep(); });
      tr.insertCell().textContent = `L${l}H${h}`;
      tr.insertCell().textContent = (v >= 0 ? '+' : '') + fmt(v, 3);
      const bar = document.createElement('div'); bar.className = 'bar';
      bar.style.width = (100 * Math.abs(v) / vmax).toFixed(1) + 'px'; bar.style.background = v >= 0 ? '#b2182b' : '#2166ac';
      tr.insertCell().appendChild(bar);
    }
    box.appendChild(tab);
    return box;
  }
  function candidateTable(cands, chosen, caption) {
    const tab = document.createElement('table'); tab.createCaption().textContent = caption;
    const pmax = Math.max(1e-9, ...cands.map((c) => c[2]));
    cands.forEach(([cid, ctext, p], r) => {
      const tr = tab.insertRow(); if (cid === chosen) tr.className = 'chosen';
      tr.insertCell().textContent = String(r + 1);
      const tt = tr.insertCell(); tt.className = 't'; tt.textContent = showText(ctext); tt.title = `id ${cid}`;
      tr.insertCell().textContent = fmt(p, 4);
      const bar = document.createElement('div'); bar.className = 'bar'; bar.style.width = (100 * p / pmax).toFixed(1) + 'px';
      tr.insertCell().appendChild(bar);
    });
    return tab;
  }

  // ---- head statistics ----
  function buildStats() {
    const S = D.stats;
    if (!S) return;
    $('stats-panel').hidden = false;
    const sel = $('stat-metric');
    S.metrics.forEach((m, i) => { const o = document.createElement('option'); o.value = i; o.textContent = m.label; sel.appendChild(o); });
    sel.addEventListener('change', drawStats);
    buildStatsTable();
    drawStats();
    if (S.notes) {
      const d = document.createElement('details'), sm = document.createElement('summary'), pre = document.createElement('pre');
      sm.textContent = 'definitions'; pre.textContent = S.notes;
      d.append(sm, pre); $('stats-panel').appendChild(d);
    }
  }
  // A heat map with axis labels. group: cells per labelled block (1 for layer x
  // head maps; n_head for the head x head similarity, labelled by layer).
  // onPick(row, col) is called on click.
  function heatCanvas(values, rows, cols, px, label, group, onPick) {
    const m = 30, top = 16, c = document.createElement('canvas');
    c.width = m + cols * px; c.height = top + rows * px;
    const ctx = c.getContext('2d');
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v !== null && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    ctx.font = '10px sans-serif'; ctx.textBaseline = 'middle';
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
      const v = values[i * cols + j], q = v === null || !isFinite(v) ? -1 : Math.round(255 * (hi > lo ? (v - lo) / (hi - lo) : 0));
      ctx.fillStyle = q < 0 ? 'rgb(232,228,222)' : rgb(q);
      ctx.fillRect(m + j * px, top + i * px, px, px);
      if (px >= 30 && q >= 0) {
        ctx.fillStyle = q > 150 ? '#fff' : '#1d232b'; ctx.textAlign = 'center';
        ctx.fillText(Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2), m + j * px + px / 2, top + i * px + px / 2);
      }
    }
    ctx.fillStyle = '#66707c';
    const colName = group > 1 ? 'L' : 'H';
    for (let i = 0; i < rows; i += group) { ctx.textAlign = 'right'; ctx.fillText('L' + i / group, m - 3, top + (i + group / 2) * px); }
    for (let j = 0; j < cols; j += group) { ctx.textAlign = 'center'; ctx.fillText(colName + j / group, m + (j + group / 2) * px, top / 2); }
    if (group > 1) {  // layer boundaries
      ctx.strokeStyle = 'rgba(255,255,255,0.8)'; ctx.lineWidth = 1; ctx.beginPath();
      for (let k = group; k < rows; k += group) { ctx.moveTo(m, top + k * px + 0.5); ctx.lineTo(m + cols * px, top + k * px + 0.5); ctx.moveTo(m + k * px + 0.5, top); ctx.lineTo(m + k * px + 0.5, top + rows * px); }
      ctx.stroke();
    }
    if (onPick) c.addEventListener('click', (e) => {
      const r = c.getBoundingClientRect(), i = Math.floor((e.clientY - r.top - top) / px), j = Math.floor((e.clientX - r.left - m) / px);
      if (i >= 0 && i < rows && j >= 0 && j < cols) onPick(i, j);
    });
    const f = document.createElement('figure'); const cap = document.createElement('figcaption');
    cap.textContent = `${label}: ${fmt(lo)} (light) \u2026 ${fmt(hi)} (dark)`;
    f.append(c, cap);
    return f;
  }
  function drawStats() {
    const S = D.stats, m = S.metrics[+$('stat-metric').value || 0], box = $('stats-maps');
    box.textContent = '';
    if (m) {
      const nl = m.values.length, nh = m.values[0].length, px = Math.max(16, Math.min(40, Math.floor(520 / nh)));
      box.appendChild(heatCanvas(m.values.flat(), nl, nh, px, m.label + ' by layer \u00d7 head', 1, chooseHead));
    }
    if (S.similarity) {
      const n = S.similarity.values.length, nh = m ? m.values[0].length : n, px = Math.max(2, Math.min(12, Math.floor(480 / n)));
      box.appendChild(heatCanvas(S.similarity.values.flat(), n, n, px, S.similarity.label, nh,
        (i, j) => chooseHead(Math.floor(j / nh), j % nh)));
    }
  }
  function buildStatsTable() {
    const S = D.stats, tab = $('stats-table'), heads = [];
    const nl = S.metrics.length ? S.metrics[0].values.length : 0, nh = nl ? S.metrics[0].values[0].length : 0;
    for (let l = 0; l < nl; l++) for (let h = 0; h < nh; h++) heads.push([l, h]);
    let sortBy = -1, desc = false;
    const render = () => {
      tab.textContent = '';
      const hr = tab.createTHead().insertRow();
      ['head', ...S.metrics.map((m) => m.label)].forEach((name, i) => {
        const th = document.createElement('th'); th.textContent = name + (sortBy === i - 1 ? (desc ? ' \u2193' : ' \u2191') : '');
        th.addEventListener('click', () => { desc = sortBy === i - 1 ? !desc : true; sortBy = i - 1; render(); });
        hr.appendChild(th);
      });
      const order = heads.slice();
      if (sortBy >= 0) { const v = S.metrics[sortBy].values; order.sort((a, b) => (desc ? -1 : 1) * ((v[a[0]][a[1]] ?? -Infinity) - (v[b[0]][b[1]] ?? -Infinity))); }
      const body = tab.createTBody();
      for (const [l, h] of order) {
        const tr = body.insertRow(); tr.dataset.head = `${l}.${h}`;
        if (l === st.cl && h === st.ch) tr.className = 'chosen';
        tr.insertCell().textContent = `L${l}H${h}`;
        for (const m of S.metrics) tr.insertCell().textContent = fmt(m.values[l][h]);
        tr.addEventListener('click', () => chooseHead(l, h));
      }
    };
    render();
  }

  // ---- selection ----
  function select(t) {
    const t0 = performance.now();
    st.t = Math.max(0, Math.min(T - 1, t));
    tokEls.forEach((e) => e.classList.remove('sel'));
    tokEls[st.t].classList.add('sel');
    if (hasRow(st.t)) rowsFor(st.t);
    drawGrid(); drawTokenShading(); scrollLinesTo(st.t); drawLines(); drawStep();
    const el = tokEls[st.t], box = $('tokens');
    if (el.offsetTop < box.scrollTop || el.offsetTop > box.scrollTop + box.clientHeight - 20) box.scrollTop = el.offsetTop - box.clientHeight / 2;
    st.lastSelectMs = performance.now() - t0;
  }
  function chooseHead(l, h) {
    if (!A) return;
    st.cl = Math.max(0, Math.min(L - 1, l)); st.ch = Math.max(0, Math.min(H - 1, h));
    cells.forEach((c, k) => c.wrap.classList.toggle('chosen', k === st.cl * H + st.ch));
    $('head-title').textContent = `L${st.cl}H${st.ch}`;
    document.querySelectorAll('#stats-table tr[data-head]').forEach((tr) => tr.classList.toggle('chosen', tr.dataset.head === `${st.cl}.${st.ch}`));
    drawTokenShading(); drawLines();
  }

  // ---- export ----
  function composeCanvas() {
    const px = cellCss(), lab = 28, gw = A ? lab + H * (px + 4) : 0, gh = A ? 40 + L * (px + 4) : 0;
    const { w: lw, h: lh } = linesSize(), dpr = 1;
    const c = document.createElement('canvas');
    c.width = (gw + lw + 20) * dpr; c.height = Math.max(gh, lh + 40) * dpr;
    const ctx = c.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
    ctx.fillStyle = '#1d232b'; ctx.font = '13px sans-serif'; ctx.textBaseline = 'top';
    ctx.fillText(`token #${st.t} \u2039${showText(texts[st.t])}\u203a  \u2014  head L${st.cl}H${st.ch}`, 4, 4);
    ctx.imageSmoothingEnabled = false;
    ctx.font = '10px sans-serif';
    for (let l = 0; l < L; l++) {
      ctx.fillText('L' + l, 2, 40 + l * (px + 4) + px / 2 - 5);
      for (let h = 0; h < H; h++) {
        if (l === 0) ctx.fillText('H' + h, lab + h * (px + 4) + px / 2 - 6, 24);
        ctx.drawImage(cells[l * H + h].canvas, lab + h * (px + 4), 40 + l * (px + 4), px, px);
      }
    }
    ctx.save(); ctx.translate(gw + 20, 40); drawLinesOn(ctx, lw, lh, linesScroll.scrollTop); ctx.restore();
    return c;
  }
  function renderPNG() { return new Promise((ok) => composeCanvas().toBlob(ok, 'image/png')); }
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  function renderSVG() {
    const px = cellCss(), lab = 28, gw = A ? lab + H * (px + 4) : 0, gh = A ? 40 + L * (px + 4) : 0;
    const t = st.t, lw = 420, xl = gw + 20 + lw * 0.4, xr = gw + 20 + lw * 0.6, y = (j) => 48 + j * RH;
    const rowsShown = T, height = Math.max(gh, 60 + rowsShown * RH);
    const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${gw + lw + 40}" height="${height}" font-family="sans-serif" font-size="10">`,
      `<rect width="100%" height="100%" fill="#fff"/>`,
      `<text x="4" y="16" font-size="13">${esc(`token #${t} \u2039${showText(texts[t])}\u203a \u2014 head L${st.cl}H${st.ch}`)}</text>`];
    for (let l = 0; l < L; l++) {
      out.push(`<text x="2" y="${40 + l * (px + 4) + px / 2 + 3}">L${l}</text>`);
      for (let h = 0; h < H; h++) {
        if (l === 0) out.push(`<text x="${lab + h * (px + 4) + px / 2 - 6}" y="34">H${h}</text>`);
        out.push(`<image x="${lab + h * (px + 4)}" y="${40 + l * (px + 4)}" width="${px}" height="${px}" style="image-rendering:pixelated" preserveAspectRatio="none" href="${cells[l * H + h].canvas.toDataURL()}"/>`);
      }
    }
    const row = hasRow(t) ? headRow(st.cl, st.ch) : null;
    if (row) {  // the attended tokens' backgrounds, opacity = weight, as on screen
      out.push('<g fill="rgb(37,99,195)">');
      for (let j = 0; j <= t; j++) if (row[j] > 0) out.push(`<rect x="${xr}" y="${y(j) - RH / 2 + 1}" width="${lw * 0.4}" height="${RH - 2}" fill-opacity="${DEQ[row[j]].toFixed(5)}"/>`);
      out.push('</g>');
    }
    out.push('<g font-family="monospace" font-size="11">');
    for (let j = 0; j < T; j++) {
      const label = esc(texts[j].replace(/\n/g, '\u21b5'));
      const fill = j < P ? '#1d232b' : '#9a4d00';
      out.push(`<text x="${xl - 2}" y="${y(j) + 4}" text-anchor="end" fill="${fill}"${j === t ? ' font-weight="bold"' : ''}>${label}</text>`);
      out.push(`<text x="${xr + 2}" y="${y(j) + 4}" fill="${fill}">${label}</text>`);
    }
    out.push('</g><g stroke="rgb(37,99,195)" stroke-width="1.6">');
    if (row) for (let j = 0; j <= t; j++) if (row[j] > 0) out.push(`<line class="w" data-j="${j}" x1="${xl + 3}" y1="${y(t)}" x2="${xr - 3}" y2="${y(j)}" stroke-opacity="${DEQ[row[j]].toFixed(5)}"/>`);
    out.push('</g></svg>');
    return out.join('\n');
  }
  function download(blob, name) {
    const a = document.createElement('a'); a.href = URL.createObjectURL(blob); a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  // ---- wiring ----
  function init() {
    $('title').textContent = D.title || 'minigpt attention viewer';
    document.title = (D.title || 'minigpt') + ' \u2014 attention viewer';
    const parts = [`${T} tokens (${P} prompt, ${T - P} generated)`];
    if (A) parts.push(`${L} layers \u00d7 ${H} heads, attention rows for ${R} positions`);
    else parts.push('no attention file');
    if (D.model) parts.unshift(D.model);
    $('summary').textContent = parts.join(' \u00b7 ');
    buildTokens(); buildGrid(); buildStats();
    $('grid-mode').addEventListener('change', (e) => { st.mode = e.target.value; legendText(); drawGrid(); });
    $('grid-scale').addEventListener('change', (e) => { st.scale = e.target.value; legendText(); drawGrid(); });
    $('export-png').addEventListener('click', () => renderPNG().then((b) => download(b, `minigpt-attention-t${st.t}.png`)));
    $('export-svg').addEventListener('click', () => download(new Blob([renderSVG()], { type: 'image/svg+xml' }), `minigpt-attention-t${st.t}.svg`));
    linesScroll.addEventListener('scroll', () => requestAnimationFrame(drawLines), { passive: true });
    $('lines-spacer').style.height = (T * RH + 16) + 'px';
    linesScroll.style.height = Math.min(560, T * RH + 16) + 'px';
    document.addEventListener('keydown', (e) => {
      if (e.target.tagName === 'SELECT' || e.altKey || e.ctrlKey || e.metaKey) return;
      const keys = { ArrowLeft: () => select(st.t - 1), ArrowRight: () => select(st.t + 1), Home: () => select(0), End: () => select(T - 1),
        ArrowUp: () => chooseHead(st.cl - 1, st.ch), ArrowDown: () => chooseHead(st.cl + 1, st.ch),
        '[': () => chooseHead(st.cl, st.ch - 1), ']': () => chooseHead(st.cl, st.ch + 1) };
      if (keys[e.key]) { keys[e.key](); e.preventDefault(); }
    });
    window.addEventListener('resize', () => drawLines());
    chooseHead(0, 0);
    select(R > P ? P : Math.max(0, Math.min(T, R || T) - 1));
  }

  init();
  // For scripts and tests: what the page shows, read back from its own state.
  window.viewer = {
    select, chooseHead, renderPNG, renderSVG,
    state: () => ({ t: st.t, layer: st.cl, head: st.ch, mode: st.mode, scale: st.scale, nTokens: T, nPrompt: P, nLayer: L, nHead: H, nRows: R }),
    setMode: (m) => { st.mode = m; $('grid-mode').value = m; legendText(); drawGrid(); },
    setScale: (s) => { st.scale = s; $('grid-scale').value = s; legendText(); drawGrid(); },
    // Dequantised weights of the selected token for head (l, h), as drawn.
    currentWeights: (l, h) => hasRow(st.t) ? Array.from(headRow(l, h), (q) => DEQ[q]) : null,
    currentQuantized: (l, h) => hasRow(st.t) ? Array.from(headRow(l, h)) : null,
    // Colour of position j in head (l, h)'s cell, read from the canvas pixels.
    cellPixel: (l, h, j) => { const c = wrapOf(st.t).cols; return Array.from(cells[l * H + h].ctx.getImageData(j % c, Math.floor(j / c), 1, 1).data.slice(0, 3)); },
    // Head (l, h)'s whole-pattern thumbnail: S*S quantised block means, row-major.
    thumbQuantized: (l, h) => { const S = A.thumb.size; return Array.from(thumbBytes().subarray((l * H + h) * S * S, (l * H + h + 1) * S * S)); },
    colormap: (q) => [CMAP[q * 3], CMAP[q * 3 + 1], CMAP[q * 3 + 2]],
    masked: MASKED,
    stepShown: () => $('step').textContent,
    timing: { parseMs: tParsed - tStart, initMs: performance.now() - tStart, lastSelectMs: () => st.lastSelectMs },
    ready: true,
  };
})();
