// The attention viewer: a heatmap that fits its column, linked to a token-lines view, with export.
//
// Runs as the js_on_load of a gr.HTML whose value is the JSON from
// demo_core/serving/attention_view.py (payload). Everything here is client-side: layout for the
// width available, hover and tap (a tap pins what a hover shows), the link between the heatmap and
// the token lines, CSV/JSON/SVG/PNG downloads. The server is asked for nothing; a new value
// (another hypothesis, layer or head) redraws the view. Figures are built as SVG strings, so the
// page and the exported files are drawn by the same code.
const SCALES = __SCALES__;
const FAMILY = "Inter, 'Explorer CJK', system-ui, -apple-system, 'Segoe UI', sans-serif, 'Noto Sans CJK SC'";
const MIN_CELL = 12;      // px: below this a cell cannot be pointed at; the matrix scrolls instead
const ACTUAL_CELL = 30;   // px per column in "actual size"
const MAX_LABEL = 150;    // px: longer column labels are cut with an ellipsis (the tooltip shows them whole)
const LINE_GAP = 22;      // px between tokens in the token-lines view
const st = {sel: null, pinned: false, fit: true, numbers: false, lines: true, step: null,
            lab: false, node: null, alpha: null, expanded: new Set(), word: ""};  // word: typed, kept across redraws  // lab: the step-through panel is open
let doc = null;           // the parsed value
let geo = null;           // the main heatmap's layout, for pointer hit tests
const measure = document.createElement("canvas").getContext("2d");

function parse() {
  try { return props.value ? JSON.parse(props.value) : null; } catch (e) { return null; }
}
function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
function textWidth(s, size) {
  measure.font = `${size}px ${FAMILY}`;
  return measure.measureText(String(s)).width;
}
function clip(s, size, max) {
  if (textWidth(s, size) <= max) return String(s);
  let t = String(s);
  while (t.length > 1 && textWidth(t + "…", size) > max) t = t.slice(0, -1);
  return t + "…";
}
function dark() {
  return !!(element.closest(".dark") || document.body.classList.contains("dark") ||
            document.documentElement.classList.contains("dark"));
}
function hex(c) { return [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16)); }
function colour(w, theme) {
  const stops = SCALES[theme];
  w = Math.min(Math.max(Number(w) || 0, 0), 1);
  for (let i = 1; i < stops.length; i++) {
    const [w0, c0] = stops[i - 1], [w1, c1] = stops[i];
    if (w <= w1) {
      const f = w1 === w0 ? 0 : (w - w0) / (w1 - w0), a = hex(c0), b = hex(c1);
      return "#" + a.map((v, k) => Math.round(v + (b[k] - v) * f).toString(16).padStart(2, "0")).join("");
    }
  }
  return stops[stops.length - 1][1];
}
function inkOn(c) {  // black or white text, whichever reads better on colour c
  const [r, g, b] = hex(c).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.2 ? "#111111" : "#ffffff";
}
function confidence(p) { return p >= 0.66 ? "#16a34a" : p >= 0.33 ? "#d97706" : "#dc2626"; }
function fmt(w) { return Number(w).toFixed(2); }

// ---- layout -------------------------------------------------------------------------------------
function layoutHeat(d, avail) {
  const R = d.rows.length, C = d.cols.length;
  const left = Math.ceil(Math.max(24, ...d.rows.map(r => textWidth(r, 12)))) + 12;
  const narrow = avail < 480;  // a phone: the side strip gives up what it can
  const prob = d.probs ? (narrow ? 30 : 46) : 0, bar = narrow ? 44 : 58;
  let cw = st.fit ? Math.floor((avail - left - prob - bar - 6) / Math.max(C, 1)) : ACTUAL_CELL;
  cw = Math.max(st.fit ? MIN_CELL : ACTUAL_CELL, Math.min(cw, 48));
  const ch = Math.max(18, Math.min(cw, 30));
  const colSize = cw < 18 ? 10 : 12;
  const longest = Math.max(8, ...d.cols.map(c => textWidth(c, colSize)));
  const upright = longest <= cw - 4;
  const top = upright ? colSize + 12 : Math.min(longest, MAX_LABEL) + 12;
  return {R, C, cw, ch, left, prob, bar, top, upright, colSize, width: C * cw, height: top + R * ch};
}

// ---- SVG pieces (strings) ------------------------------------------------------------------------
function rowLabels(d, g, ink, x0 = 0) {
  let s = "";
  d.rows.forEach((r, t) => {
    const y = g.top + t * g.ch + g.ch / 2;
    if (t < (d.forced || 0)) s += `<rect class="av-forced" x="${x0}" y="${y - g.ch / 2 + 2}" width="4" height="${g.ch - 4}" fill="#f97316"><title>forced by the prefix</title></rect>`;
    s += `<text class="av-row" data-r="${t}" x="${x0 + g.left - 6}" y="${y}" text-anchor="end" dominant-baseline="central" ` +
         `font-size="12" fill="${ink}">${esc(r)}</text>`;
  });
  return s;
}
function matrix(d, weights, g, theme, ink, x0 = 0) {
  let s = "";
  d.cols.forEach((c, i) => {
    const x = x0 + i * g.cw + g.cw / 2, label = esc(clip(c, g.colSize, MAX_LABEL));
    s += g.upright
      ? `<text class="av-col" data-c="${i}" x="${x}" y="${g.top - 6}" text-anchor="middle" font-size="${g.colSize}" fill="${ink}">${label}</text>`
      : `<text class="av-col" data-c="${i}" transform="translate(${x + g.colSize / 3},${g.top - 6}) rotate(-90)" ` +
        `font-size="${g.colSize}" fill="${ink}">${label}</text>`;
  });
  const numbers = st.numbers && g.cw >= 24 && g.ch >= 16;
  weights.forEach((row, t) => row.forEach((w, i) => {
    const fill = colour(w, theme), x = x0 + i * g.cw, y = g.top + t * g.ch;
    s += `<rect x="${x + 0.5}" y="${y + 0.5}" width="${g.cw - 1}" height="${g.ch - 1}" fill="${fill}"/>`;
    if (numbers) s += `<text x="${x + g.cw / 2}" y="${y + g.ch / 2}" text-anchor="middle" dominant-baseline="central" ` +
                      `font-size="${g.cw >= 32 ? 11 : 9}" fill="${inkOn(fill)}">${fmt(w).replace(/^0/, "")}</text>`;
  }));
  return s;
}
function side(d, g, theme, ink, x0 = 0) {
  let s = "";
  if (d.probs) {
    s += `<text x="${x0 + 4}" y="${g.top - 6}" font-size="11" fill="${ink}">${g.prob < 40 ? "p" : "p(token)"}</text>`;
    d.probs.forEach((p, t) => {
      const y = g.top + t * g.ch;
      s += `<rect class="av-p" data-r="${t}" x="${x0 + 4}" y="${y + 3}" width="${Math.max(1, p * (g.prob - 8))}" height="${g.ch - 6}" ` +
           `rx="2" fill="${confidence(p)}"><title>p = ${fmt(p)}</title></rect>`;
    });
  }
  const bx = x0 + g.prob + 8, bh = Math.max(60, Math.min(g.R * g.ch, 220)), by = g.top;
  const id = `avgrad-${theme}`;
  s += `<defs><linearGradient id="${id}" x1="0" y1="1" x2="0" y2="0">` +
       SCALES[theme].map(([w, c]) => `<stop offset="${w}" stop-color="${c}"/>`).join("") + `</linearGradient></defs>`;
  s += `<rect x="${bx}" y="${by}" width="12" height="${bh}" fill="url(#${id})" stroke="${ink}" stroke-opacity="0.3"/>`;
  [0, 0.25, 0.5, 0.75, 1].forEach(v => {
    const y = by + bh - v * bh;
    s += `<text x="${bx + 16}" y="${y}" dominant-baseline="central" font-size="10" fill="${ink}">${v}</text>`;
  });
  s += `<text x="${bx}" y="${by - 6}" font-size="11" fill="${ink}">${g.bar < 50 ? "α" : "weight"}</text>`;
  return s;
}
function linesView(d, weights, width, theme, ink) {
  const R = d.rows.length, C = d.cols.length, n = Math.max(R, C), top = 24;
  const height = top + n * LINE_GAP + 6;
  const lw = Math.min(width * 0.32, Math.max(30, ...d.rows.map(r => textWidth(r, 12))) + 10);
  const rw = Math.min(width * 0.32, Math.max(30, ...d.cols.map(c => textWidth(c, 12))) + 10);
  const xl = lw, xr = width - rw, yl = t => top + (t + 0.5) * (n / R) * LINE_GAP, yr = i => top + (i + 0.5) * (n / C) * LINE_GAP;
  const stroke = theme === "dark" ? "#fbbf24" : "#4338ca";
  let s = `<text x="${xl - 6}" y="12" text-anchor="end" font-size="11" font-weight="600" fill="${ink}">${esc(d.rowName)}</text>` +
          `<text x="${xr + 6}" y="12" font-size="11" font-weight="600" fill="${ink}">${esc(d.colName)}</text>`;
  weights.forEach((row, t) => row.forEach((w, i) => {
    if (w < 0.02) return;
    s += `<line class="av-line" data-r="${t}" data-c="${i}" x1="${xl}" y1="${yl(t)}" x2="${xr}" y2="${yr(i)}" stroke="${stroke}" ` +
         `stroke-width="2" stroke-opacity="${w}" data-w="${w}"/>`;
  }));
  d.rows.forEach((r, t) => {
    s += `<text class="av-row" data-r="${t}" x="${xl - 6}" y="${yl(t)}" text-anchor="end" dominant-baseline="central" font-size="12" ` +
         `fill="${ink}">${esc(clip(r, 12, lw - 8))}</text>`;
  });
  d.cols.forEach((c, i) => {
    s += `<text class="av-col" data-c="${i}" x="${xr + 6}" y="${yr(i)}" dominant-baseline="central" font-size="12" ` +
         `fill="${ink}">${esc(clip(c, 12, rw - 8))}</text>`;
  });
  return {svg: s, height};
}

// ---- rendering ----------------------------------------------------------------------------------
function host() {
  let h = element.querySelector(".av-host");
  if (!h) { h = document.createElement("div"); h.className = "av-host"; element.appendChild(h); }
  return h;
}
function toolbar(d) {
  const single = d.panels.length === 1;
  return `<div class="av-bar" role="toolbar" aria-label="Attention view">` +
    `<span class="av-title">${esc(d.title)}</span>` +
    `<span class="av-tools">` +
    `<button type="button" class="av-btn av-fit" aria-pressed="${st.fit}" title="Fit the columns to the width, or draw each at full size and scroll">${st.fit ? "Fit width" : "Actual size"}</button>` +
    `<label class="av-check"><input type="checkbox" class="av-numbers" ${st.numbers ? "checked" : ""}> numbers</label>` +
    (single ? `<label class="av-check"><input type="checkbox" class="av-lines-on" ${st.lines ? "checked" : ""}> token lines</label>` : "") +
    (d.view === "cross" && single && d.labAvailable && (d.probs || d.lab) ? `<button type="button" class="av-btn av-lab-toggle" aria-pressed="${st.lab}" ` +
      `title="Step through the decode: each step's attention, next-token distribution and (beam search) the tree">` +
      `${st.lab ? "▾ Step through" : "▸ Step through"}</button>` : "") +
    `<span class="av-export">Download <button type="button" class="av-btn" data-export="csv">CSV</button>` +
    `<button type="button" class="av-btn" data-export="json">JSON</button>` +
    `<button type="button" class="av-btn" data-export="svg">SVG</button>` +
    `<button type="button" class="av-btn" data-export="png">PNG</button></span></span></div>`;
}
let memo = {key: null, cubes: null};  // every hypothesis/layer/head of the shown result, kept across redraws
function keyOf(d) { return d && d.meta ? JSON.stringify([d.meta.model, d.meta.source, d.meta.settings]) : null; }
function load() {  // the component's new value becomes the document drawn
  doc = parse();
  if (doc && doc.cubes) memo = {key: keyOf(doc), cubes: doc.cubes};
  else if (doc && keyOf(doc) === memo.key) doc.cubes = memo.cubes;
}
function viewTitle(L, H, layer, head) {  // as demo_core.figures.view_title
  const parts = ["Cross-attention"];
  if (L > 1) parts.push(`layer ${layer + 1} of ${L}`);
  if (head === -2) parts.push(`all ${H} heads`);
  else if (H > 1) parts.push(head < 0 ? `average of ${H} heads` : `head ${head + 1} of ${H}`);
  return parts.join(" · ");
}
// Another hypothesis, layer or head drawn from the kept cubes, without asking the server (the page's menus call
// this before their own server event, whose answer then redraws the same picture). False: not possible here.
function pick(index, layer, head) {
  if (!doc || doc.view !== "cross" || !doc.cubes || doc.meta.node != null) return false;
  const i = Number.isInteger(+index) && doc.cubes[+index] ? +index : 0, c = doc.cubes[i];
  const L = c.w.length, H = c.w[0].length;
  const l = Number.isInteger(+layer) && +layer >= 0 && +layer < L ? +layer : L - 1;
  let hd = Number.isInteger(+head) ? +head : -1;
  if (hd >= H || hd < -2 || (hd === -2 && H === 1)) hd = -1;
  const heads = c.w[l];
  const average = heads[0].map((row, t) => row.map((_, s) => heads.reduce((a, m) => a + m[t][s], 0) / H));
  const panels = hd === -2 ? heads.map((m, k) => ({label: `head ${k + 1}`, weights: m})) :
    [{label: "", weights: hd === -1 ? average : heads[hd]}];
  const sameHyp = doc.meta.hypothesis === i + 1;
  doc = {...doc, rows: c.rows, probs: c.probs, alternatives: c.alternatives, panels, title: viewTitle(L, H, l, hd),
         lab: sameHyp ? doc.lab : null,
         meta: {...doc.meta, hypothesis: i + 1, output: c.output, layer: l + 1, head: hd === -1 ? "average" : hd === -2 ? "all" : hd + 1}};
  if (!sameHyp) { st.step = null; st.sel = null; st.pinned = false; }
  render();
  return true;
}
(function expose() {  // the page's menus find this viewer by its component's elem_id
  let k = element;
  while (k && !(k.id && !k.id.startsWith("html-"))) k = k.parentElement;
  if (k) (window.__attentionViews = window.__attentionViews || {})[k.id] = {pick};
})();
function render() {
  const h = host();
  const typing = document.activeElement && document.activeElement.classList.contains("av-word") && h.contains(document.activeElement);
  if (!doc || !doc.panels || !doc.panels.length) { h.innerHTML = ""; geo = null; return; }
  const theme = dark() ? "dark" : "light", ink = "currentColor";
  if (st.sel && (st.sel.r >= doc.rows.length || st.sel.c >= doc.cols.length)) { st.sel = null; st.pinned = false; }
  const avail = Math.max(260, (h.clientWidth || element.clientWidth || 700));
  let body = "";
  if (doc.panels.length === 1) {
    const g = geo = layoutHeat(doc, avail);
    const overflow = g.left + g.width + g.prob + g.bar > avail + 1;
    body += `<div class="av-heat" style="grid-template-columns:${g.left}px minmax(0,max-content) ${g.prob + g.bar}px">` +
      `<svg class="av-rows" width="${g.left}" height="${g.height}">${rowLabels(doc, g, ink)}</svg>` +
      `<div class="av-scroll" tabindex="0" aria-label="attention matrix${overflow ? ", scrolls sideways" : ""}">` +
      `<svg class="av-matrix" width="${g.width}" height="${g.height}">${matrix(doc, doc.panels[0].weights, g, theme, ink)}` +
      `<g class="av-hl"></g></svg></div>` +
      `<svg class="av-side" width="${g.prob + g.bar}" height="${Math.max(g.height, g.top + 230)}">${side(doc, g, theme, ink)}</svg></div>`;
    if (st.lab) body += `<div class="av-lab" tabindex="-1">${labHTML()}</div>`;
    body += `<div class="av-hint">${overflow ? `⟷ ${doc.cols.length} columns: scroll sideways, or ` : ""}` +
      `hover or tap a cell or token; tap again to let go.${doc.note ? " " + esc(doc.note) : ""}</div>`;
    if (st.lines) {
      const lv = linesView(doc, doc.panels[0].weights, Math.min(avail, 720), theme, ink);
      body += `<div class="av-lines-box"><svg class="av-lines" width="${Math.min(avail, 720)}" height="${lv.height}">${lv.svg}</svg></div>`;
    }
  } else {
    geo = null;
    const C = doc.cols.length, per = Math.min(4, doc.panels.length);
    const cw = Math.max(6, Math.min(20, Math.floor((avail - per * 14) / (per * C))));
    const ch = Math.max(6, Math.min(20, cw));
    body += `<div class="av-grid">` + doc.panels.map((p, k) => {
      const g = {R: doc.rows.length, C, cw, ch, top: 0, upright: true, colSize: 10, width: C * cw, height: doc.rows.length * ch};
      const saved = st.numbers; st.numbers = false;
      const m = matrix({...doc, cols: []}, p.weights, g, theme, ink); st.numbers = saved;
      return `<figure class="av-panel"><figcaption>${esc(p.label)}</figcaption>` +
        `<svg class="av-cells" data-k="${k}" width="${g.width}" height="${g.height}" data-cw="${cw}" data-ch="${ch}">${m}</svg></figure>`;
    }).join("") + `</div><div class="av-hint">Every head of the layer on one colour scale: hover or tap a cell for its tokens; ` +
      `choose one head to read the labels.</div>`;
  }
  h.innerHTML = branchHTML(doc) + toolbar(doc) + `<div class="av-body">${body}</div><div class="av-tip" role="status" aria-live="polite" hidden></div>`;
  h.dataset.rows = doc.rows.length;
  h.dataset.cols = doc.cols.length;
  highlight();
  const word = typing && h.querySelector(".av-word");
  if (word) { word.focus(); word.setSelectionRange(word.value.length, word.value.length); }  // a redraw never eats typing
}

// ---- selection: one state for the heatmap, the token lines and the tooltip -----------------------
function describe(sel) {
  const d = doc, W = d.panels[sel.k || 0].weights;
  const rowName = d.rowName, colName = d.colName;
  if (sel.r != null && sel.c != null) {
    return `<b>${esc(rowName)} ${sel.r + 1}</b> ${esc(d.rows[sel.r])} ← <b>${esc(colName)} ${sel.c + 1}</b> ${esc(d.cols[sel.c])}` +
      `: weight <b>${fmt(W[sel.r][sel.c])}</b>` + (d.panels.length > 1 ? ` (${esc(d.panels[sel.k].label)})` : "");
  }
  if (sel.r != null) {
    const top = W[sel.r].map((w, i) => [w, i]).sort((a, b) => b[0] - a[0]).slice(0, 3);
    let s = `<b>${esc(rowName)} ${sel.r + 1}</b> ${esc(d.rows[sel.r])}`;
    if (d.probs) s += ` (p = ${fmt(d.probs[sel.r])})`;
    s += ` looks at ` + top.map(([w, i]) => `${esc(d.cols[i])} ${fmt(w)}`).join(", ");
    const alts = d.alternatives && d.alternatives[sel.r];
    if (alts && alts.length) s += `<br>candidates: ` + alts.slice(0, 5).map(([p, q]) => `${esc(p)} ${fmt(q)}`).join(", ");
    return s;
  }
  const top = W.map((row, t) => [row[sel.c], t]).sort((a, b) => b[0] - a[0]).slice(0, 3);
  return `<b>${esc(colName)} ${sel.c + 1}</b> ${esc(d.cols[sel.c])} is looked at most by ` +
    top.map(([w, t]) => `${esc(d.rows[t])} ${fmt(w)}`).join(", ");
}
function highlight() {
  const h = host(), tip = h.querySelector(".av-tip");
  const sel = st.sel || (st.lab && lab() && st.step != null ? {r: st.step, c: null} : null);
  h.querySelectorAll(".av-on").forEach(n => n.classList.remove("av-on"));
  const hl = h.querySelector(".av-hl");
  if (hl && geo) {
    let s = "";
    const g = geo;
    if (st.step != null && st.step < g.R) s += `<rect class="av-step-row" x="0.5" y="${g.top + st.step * g.ch + 0.5}" width="${g.width - 1}" height="${g.ch - 1}"/>`;
    if (sel && sel.r != null) s += `<rect class="av-hl-row" x="0.5" y="${g.top + sel.r * g.ch + 0.5}" width="${g.width - 1}" height="${g.ch - 1}"/>`;
    if (sel && sel.c != null) s += `<rect class="av-hl-col" x="${sel.c * g.cw + 0.5}" y="${g.top + 0.5}" width="${g.cw - 1}" height="${g.R * g.ch - 1}"/>`;
    hl.innerHTML = s;
  }
  const lines = h.querySelectorAll(".av-line");
  lines.forEach(l => {
    const r = +l.dataset.r, c = +l.dataset.c, w = +l.dataset.w;
    const on = !sel || (sel.r == null || sel.r === r) && (sel.c == null || sel.c === c);
    l.setAttribute("stroke-opacity", on ? (sel ? Math.max(w, 0.15) : w) : 0);
    l.setAttribute("stroke-width", sel && on ? 3 : 2);
  });
  if (sel) {
    if (sel.r != null) h.querySelectorAll(`[data-r="${sel.r}"]:not(.av-line)`).forEach(n => n.classList.add("av-on"));
    if (sel.c != null) h.querySelectorAll(`[data-c="${sel.c}"]:not(.av-line)`).forEach(n => n.classList.add("av-on"));
  }
  if (!tip) return;
  if (!sel) { tip.hidden = true; return; }
  tip.innerHTML = describe(sel) + (st.pinned ? ` <span class="av-pin">· pinned (tap again to let go)</span>` :
    !st.sel ? ` <span class="av-pin">· step ${st.step + 1}</span>` : "");
  tip.hidden = false;
}
function choose(sel, pin) {
  if (pin) {
    const same = st.pinned && st.sel && st.sel.r === sel.r && st.sel.c === sel.c;
    st.sel = same ? null : sel; st.pinned = !same;
  } else if (!st.pinned) {
    st.sel = sel;
  }
  highlight();
}
function target(ev) {
  const n = ev.target.closest("[data-r],[data-c]");
  if (n && n.classList.contains("av-line")) return {r: +n.dataset.r, c: +n.dataset.c};
  if (n && !n.closest(".av-matrix")) {
    return {r: n.dataset.r != null ? +n.dataset.r : null, c: n.dataset.c != null ? +n.dataset.c : null};
  }
  const m = ev.target.closest(".av-matrix");
  if (m && geo) {
    const box = m.getBoundingClientRect(), x = ev.clientX - box.left, y = ev.clientY - box.top;
    const c = Math.floor(x / geo.cw), r = Math.floor((y - geo.top) / geo.ch);
    if (c >= 0 && c < geo.C && y < geo.top) return {r: null, c};
    if (c >= 0 && c < geo.C && r >= 0 && r < geo.R) return {r, c};
  }
  const cells = ev.target.closest(".av-cells");
  if (cells) {
    const box = cells.getBoundingClientRect();
    const c = Math.floor((ev.clientX - box.left) / +cells.dataset.cw), r = Math.floor((ev.clientY - box.top) / +cells.dataset.ch);
    if (r >= 0 && r < doc.rows.length && c >= 0 && c < doc.cols.length) return {r, c, k: +cells.dataset.k};
  }
  return null;
}

// ---- the decoding lab: step through, the strategy's distribution, the beam tree, branching ------------
function lab() { return doc && doc.lab; }
function stepCount() { return lab() ? lab().steps.length : doc ? doc.rows.length : 0; }
function bar(p, cls) { return `<span class="av-bar-track"><span class="av-bar-fill ${cls}" style="width:${(Math.max(0, p) * 100).toFixed(1)}%"></span></span>`; }
function labHTML() {
  const L = lab();
  if (!L) return `<div class="av-lab-wait">Reading the decode step by step…</div>`;
  const T = L.steps.length;
  if (st.step == null || st.step >= T) st.step = 0;
  const t = st.step, item = L.steps[t], W = doc.panels[0].weights[t] || [];
  let h = `<div class="av-stepbar"><button type="button" class="av-btn av-prev" aria-label="previous step">◀</button>` +
    `<input type="range" class="av-step-range" min="1" max="${T}" value="${t + 1}" aria-label="output step">` +
    `<button type="button" class="av-btn av-next" aria-label="next step">▶</button>` +
    `<span class="av-step-label">step <b>${t + 1}</b> of ${T} <small>(← → keys)</small></span></div>`;
  h += `<div class="av-sofar">Output so far: ` + L.steps.slice(0, t + 1).map((s, i) =>
    `<span class="av-tok${i === t ? " av-cur" : ""}${s.forced ? " av-tok-forced" : ""}" data-step="${i}">${esc(s.piece)}</span>`).join(" ") + `</div>`;
  // α_t as bars over the source words, and the context vector it builds
  const top = W.map((w, i) => [w, i]).sort((a, b) => b[0] - a[0]);
  h += `<div class="av-alpha" aria-label="attention of step ${t + 1} over the source">` + doc.cols.map((c, i) =>
    `<span class="av-alpha-col" data-c="${i}" title="α = ${fmt(W[i] || 0)}"><span class="av-alpha-bar" style="height:${Math.round((W[i] || 0) * 44) + 1}px;` +
    `background:${colour(W[i] || 0, dark() ? "dark" : "light")}"></span><span class="av-alpha-w">${fmt(W[i] || 0).replace(/^0/, "")}</span>` +
    `<span class="av-alpha-tok">${esc(c)}</span></span>`).join("") + `</div>`;
  const shown = top.slice(0, 3), rest = top.slice(3).reduce((a, [w]) => a + w, 0);
  h += `<div class="av-formula">a<sub>${t + 1}</sub> = Σ<sub>i</sub> α<sub>${t + 1},i</sub> h<sub>i</sub> = ` +
    shown.map(([w, i]) => `${fmt(w)}·h<sub>${i + 1}</sub> <small>(${esc(doc.cols[i])})</small>`).join(" + ") +
    (top.length > 3 ? ` + ${fmt(rest)} <small>spread over the other ${top.length - 3}</small>` : "") + `</div>`;
  // the next-token distribution: the model's, and the one the strategy chose from
  const strat = L.strategy, note = strat === "sample" ? "after temperature, top-k, top-p and the repetition options" :
    strat === "beam" ? "after the repetition options; beam search ranks by the running score" : "after the repetition options; greedy takes the most likely";
  h += `<div class="av-dist-head">Next-token distribution at step ${t + 1}: the model's, and ${note}` +
    `${item.forced ? " · <b>forced by the prefix</b>" : ""} · ${item.kept} token${item.kept === 1 ? "" : "s"} left in the running ` +
    `(${(item.keptMass * 100).toFixed(1)}% of the model's probability)</div>`;
  h += `<div class="av-dist-box"><table class="av-dist"><thead><tr><th>token</th><th>model</th><th>strategy</th><th></th><th></th></tr></thead><tbody>` +
    item.top.map(([piece, raw, adj, cut, chosen, id]) => `<tr class="${chosen ? "av-chosen" : ""}${cut ? " av-cut" : ""}">` +
      `<td class="av-dist-tok">${esc(piece)}</td><td>${bar(raw, "av-raw")} ${fmt(raw)}</td><td>${bar(adj, "av-adj")} ${fmt(adj)}</td>` +
      `<td class="av-dist-note">${chosen ? "✓ written" : cut ? `cut by ${esc(cut)}` : ""}</td>` +
      `<td><button type="button" class="av-btn av-branch" data-token="${id}" title="force this token at step ${t + 1} and decode the rest again">↪ branch</button></td></tr>`).join("") +
    `</tbody></table></div>`;
  h += `<div class="av-branch-word"><label>Or force a word at step ${t + 1}: <input type="text" class="av-word" maxlength="60" ` +
    `placeholder="a word in the output language" value="${esc(st.word)}"></label> <button type="button" class="av-btn av-branch-go">↪ branch</button></div>`;
  if (L.beams && L.beams[t]) h += beamsHTML(L.beams[t], t);
  if (L.tree) h += treeHTML(L.tree);
  return h;
}
function beamsHTML(b, t) {
  let h = `<div class="av-beams"><div class="av-dist-head">Beam search at step ${t + 1}: every live beam's best candidates and their fate` +
    (b.kth != null ? ` (the last kept score is ${b.kth.toFixed(2)})` : "") + (b.ended ? ` · ${esc(b.ended)}` : "") + `</div>`;
  b.beams.forEach((beam, k) => {
    h += `<div class="av-beam"><span class="av-beam-head">beam ${k + 1} <small>score ${beam.score.toFixed(2)}</small>: ${esc(beam.text || "⟨start⟩")}</span> → ` +
      beam.cands.map(([piece, score, status, reason, node]) => `<span class="av-cand av-${status.replace(/ /g, "-")}" title="${esc(reason)}"` +
        `${node != null ? ` data-node="${node}"` : ""}>${esc(piece)} <small>${score.toFixed(2)} ${status}</small></span>`).join(" ") + `</div>`;
  });
  return h + `</div>`;
}
function penalty(len, a) { return Math.pow((5 + len) / 6, a); }
function treeHTML(tree) {
  const alpha = st.alpha == null ? tree.alpha : st.alpha;
  const nodes = new Map(tree.nodes.map(n => [n[0], {id: n[0], parent: n[1], piece: n[2], score: n[3], step: n[4], status: n[5], hyp: n[6], kids: []}]));
  nodes.forEach(n => { if (n.parent != null && nodes.has(n.parent)) nodes.get(n.parent).kids.push(n); });
  const root = nodes.get(0);
  const pruned = n => n.kids.filter(k => k.status === "pruned");
  const shownKids = n => n.kids.filter(k => k.status !== "pruned" || st.expanded.has(n.id));
  let slot = 0;
  const place = n => {  // leaves take the next row; a parent sits at its children's middle
    const kids = shownKids(n);
    if (!kids.length) { n.y = slot++; return n.y; }
    const ys = kids.map(place);
    n.y = (Math.min(...ys) + Math.max(...ys)) / 2;
    return n.y;
  };
  if (!root) return "";
  place(root);
  const steps = Math.max(...[...nodes.values()].map(n => n.step));
  const colW = Math.max(56, Math.min(110, Math.max(...[...nodes.values()].map(n => textWidth(n.piece, 10))) + 26));
  const rowH = 28, width = 30 + (steps + 1) * colW, height = slot * rowH + 24;
  const onPath = new Set();
  for (let n = nodes.get(st.node == null ? -1 : st.node); n; n = nodes.get(n.parent)) onPath.add(n.id);
  const X = n => 14 + n.step * colW, Y = n => 14 + n.y * rowH;
  let svg = "", labels = "";
  const draw = n => {
    shownKids(n).forEach(k => {
      svg += `<line x1="${X(n)}" y1="${Y(n)}" x2="${X(k)}" y2="${Y(k)}" class="av-edge${onPath.has(k.id) ? " av-edge-on" : ""}${k.status === "pruned" ? " av-edge-pruned" : ""}"/>`;
      draw(k);
    });
    const folded = (tree.folded[String(n.id)] || 0) + (st.expanded.has(n.id) ? 0 : pruned(n).length);
    labels += `<g class="av-node av-node-${n.status}${onPath.has(n.id) ? " av-node-on" : ""}" data-node="${n.id}" tabindex="0" role="button" ` +
      `aria-label="${esc(n.piece)}, score ${n.score.toFixed(2)}, ${n.status}"><circle cx="${X(n)}" cy="${Y(n)}" r="${n.status === "finished" ? 5 : 4}"/>` +
      `<text x="${X(n) + 7}" y="${Y(n) - 3}" font-size="10">${esc(n.piece)}</text>` +
      `<text x="${X(n) + 7}" y="${Y(n) + 8}" font-size="8" class="av-node-score">${n.score.toFixed(1)}</text>` +
      (folded ? `<text x="${X(n) + 7 + textWidth(n.score.toFixed(1), 8) + 4}" y="${Y(n) + 8}" font-size="8" class="av-fold" ` +
        `data-expand="${n.id}">+${folded} pruned</text>` : "") +
      `<title>${esc(n.piece)} · log-prob so far ${n.score.toFixed(3)} · ${n.status}${n.hyp != null ? ` · hypothesis #${n.hyp + 1}` : ""}</title></g>`;
  };
  draw(root);
  const ranked = tree.finished.map(([node, len, score, text]) => ({node, len, score, text, norm: score / penalty(len, alpha)}))
    .sort((a, b) => b.norm - a.norm);
  return `<div class="av-tree-head">Beam tree: ● kept, ◉ finished, ○ pruned (folded as “+n pruned”; click one to unfold). ` +
    `Click a node to see its path's attention.</div><div class="av-tree-box"><svg class="av-tree" width="${width}" height="${height}">${svg}${labels}</svg></div>` +
    `<div class="av-rank"><label>Length penalty α <input type="range" class="av-alpha-range" min="0" max="2" step="0.1" value="${alpha}"> ` +
    `<b>${Number(alpha).toFixed(1)}</b></label> <small>(the search used ${Number(tree.alpha).toFixed(1)}; score ÷ ((5 + length) / 6)^α)</small>` +
    `<ol>` + ranked.map(r => `<li data-node="${r.node}" class="av-rank-item${onPath.has(r.node) ? " av-node-on" : ""}">${esc(r.text)} ` +
      `<small>score ${r.score.toFixed(2)}, ${r.len} tokens → ${r.norm.toFixed(3)}</small></li>`).join("") + `</ol></div>`;
}
function branchHTML(d) {  // a branch's picture opens with both outputs, the difference marked
  const b = d.branch;
  if (!b) return "";
  const line = (pieces, marks) => pieces.map((p, i) => `<span class="${marks(i)}">${esc(p)}</span>`).join(" ");
  return `<div class="av-branch-box"><div class="av-dist-head">Branch at step ${b.step}: ${b.forced} token${b.forced === 1 ? "" : "s"} forced ` +
    `(wavy underline), then ${esc(d.meta.strategy)} again${b.same ? " · the same output as before" : " · changed tokens marked"}</div>` +
    `<div class="av-diff">before: ${line(b.original, () => "")}</div>` +
    `<div class="av-diff">branch: ${line(b.new, i => (i < b.forced ? "av-forced-tok " : "") + (b.changed[i] ? "av-changed" : ""))}</div></div>`;
}
function renderLab() {  // a new step: the panel and the highlights only, not the whole picture
  const box = host().querySelector(".av-lab");
  if (!box) return render();
  const focus = document.activeElement && [...document.activeElement.classList].find(c => c === "av-step-range" || c === "av-word");
  box.innerHTML = labHTML();
  if (focus) box.querySelector("." + focus).focus();
  highlight();
}
function goTo(t) {
  const T = stepCount();
  if (!T) return;
  st.step = Math.max(0, Math.min(T - 1, t));
  renderLab();
}

// ---- downloads ----------------------------------------------------------------------------------
function fileStem() {
  const m = doc.meta || {};
  return `attention-${m.model || "model"}-${doc.view}-h${m.hypothesis || 1}-L${m.layer || 1}-${m.head === "average" ? "avg" : "head" + m.head}`
    .replace(/[^A-Za-z0-9._-]+/g, "_");
}
function save(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
function csvCell(s) { s = String(s); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; }
function toCSV() {
  let out = "";
  doc.panels.forEach(p => {
    if (p.label) out += csvCell(p.label) + "\n";
    out += [`${doc.rowName} \\ ${doc.colName}`, ...doc.cols].map(csvCell).join(",") + "\n";
    p.weights.forEach((row, t) => { out += [doc.rows[t], ...row].map(csvCell).join(",") + "\n"; });
  });
  return out;
}
function standaloneSVG() {  // the light-theme picture at actual size, every column, with its title
  const saved = st.fit; st.fit = false;
  const ink = "#111111", pad = 10;
  let body = "", width = 0, height = 0;
  if (doc.panels.length === 1) {
    const g = layoutHeat(doc, 0);
    body = rowLabels(doc, g, ink, pad) + matrix(doc, doc.panels[0].weights, g, "light", ink, pad + g.left) +
           side(doc, g, "light", ink, pad + g.left + g.width);
    width = pad * 2 + g.left + g.width + g.prob + g.bar; height = Math.max(g.height, g.top + 230) + pad;
  } else {
    const g = layoutHeat(doc, 0), per = Math.min(4, doc.panels.length);
    const pw = g.left + g.width + 16, ph = g.height + 24;
    doc.panels.forEach((p, k) => {
      const x = pad + (k % per) * pw, y = Math.floor(k / per) * ph + 20;
      body += `<g transform="translate(0,${y})"><text x="${x + g.left}" y="-4" font-size="12" fill="${ink}">${esc(p.label)}</text>` +
              rowLabels(doc, g, ink, x) + matrix(doc, p.weights, g, "light", ink, x + g.left) + `</g>`;
    });
    width = pad * 2 + per * pw; height = Math.ceil(doc.panels.length / per) * ph + 30;
  }
  st.fit = saved;
  const title = `<text x="${pad}" y="18" font-size="13" font-weight="600" fill="${ink}">${esc(doc.title)} · ${esc((doc.meta || {}).model || "")}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height + 26}" font-family="${esc(FAMILY)}">` +
    `<rect width="100%" height="100%" fill="#ffffff"/>${title}<g transform="translate(0,26)">${body}</g></svg>`;
}
function download(kind) {
  if (!doc) return;
  const stem = fileStem();
  if (kind === "csv") return save(stem + ".csv", new Blob([toCSV()], {type: "text/csv"}));
  if (kind === "json") {
    const out = {...doc.meta, view: doc.view, title: doc.title, rows: doc.rows, columns: doc.cols,
                 row_name: doc.rowName, column_name: doc.colName, token_probs: doc.probs,
                 panels: doc.panels.map(p => ({label: p.label, weights: p.weights}))};
    return save(stem + ".json", new Blob([JSON.stringify(out, null, 1)], {type: "application/json"}));
  }
  const svg = standaloneSVG();
  if (kind === "svg") return save(stem + ".svg", new Blob([svg], {type: "image/svg+xml"}));
  const img = new Image(), scale = 2;
  img.onload = () => {
    const canvas = document.createElement("canvas");
    canvas.width = img.width * scale; canvas.height = img.height * scale;
    const ctx = canvas.getContext("2d");
    ctx.scale(scale, scale); ctx.drawImage(img, 0, 0);
    canvas.toBlob(b => save(stem + ".png", b), "image/png");
  };
  img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
}

// ---- events (delegated: they survive every redraw) ------------------------------------------------
element.addEventListener("pointermove", ev => {
  if (ev.pointerType === "touch") return;
  const t = target(ev);
  if (t || !st.pinned) choose(t, false);
});
element.addEventListener("pointerleave", () => { if (!st.pinned) { st.sel = null; highlight(); } });
element.addEventListener("click", ev => {
  const exp = ev.target.closest("[data-export]");
  if (exp) { download(exp.dataset.export); return; }
  if (ev.target.closest(".av-fit")) { st.fit = !st.fit; render(); return; }
  if (ev.target.closest(".av-lab-toggle")) {
    st.lab = !st.lab; st.node = null;
    trigger("lab", {open: st.lab});
    render(); return;
  }
  if (ev.target.closest(".av-prev")) return goTo(st.step - 1);
  if (ev.target.closest(".av-next")) return goTo(st.step + 1);
  const tok = ev.target.closest("[data-step]");
  if (tok) return goTo(+tok.dataset.step);
  const expand = ev.target.closest("[data-expand]");
  if (expand) { const id = +expand.dataset.expand; st.expanded.has(id) ? st.expanded.delete(id) : st.expanded.add(id); return renderLab(); }
  const node = ev.target.closest("[data-node]");
  if (node) { st.node = +node.dataset.node; trigger("node", {node: st.node}); return; }
  const br = ev.target.closest(".av-branch");
  if (br) { trigger("branch", {step: st.step + 1, token: +br.dataset.token}); return; }
  if (ev.target.closest(".av-branch-go")) {
    const word = st.word = host().querySelector(".av-word").value;
    trigger("branch", {step: st.step + 1, word}); return;
  }
  if (ev.target.closest(".av-lab")) return;
  if (ev.target.closest(".av-bar")) return;
  const t = target(ev);
  if (t) choose(t, true);
});
element.addEventListener("input", ev => {
  if (ev.target.classList.contains("av-word")) st.word = ev.target.value;
  if (ev.target.classList.contains("av-step-range")) goTo(+ev.target.value - 1);
  if (ev.target.classList.contains("av-alpha-range")) { st.alpha = +ev.target.value; renderLab(); }
});
element.addEventListener("keydown", ev => {
  if (!st.lab || !lab() || ev.target.matches("input[type=text], textarea")) return;
  if (ev.target.classList.contains("av-step-range")) return;  // the slider moves itself
  if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
    ev.preventDefault();
    goTo(st.step + (ev.key === "ArrowRight" ? 1 : -1));
  }
  if (ev.key === "Enter" && ev.target.closest("[data-node]")) { st.node = +ev.target.closest("[data-node]").dataset.node; trigger("node", {node: st.node}); }
  if (ev.key === "Enter" && ev.target.classList.contains("av-word")) trigger("branch", {step: st.step + 1, word: ev.target.value});
});
element.addEventListener("change", ev => {
  if (ev.target.classList.contains("av-numbers")) { st.numbers = ev.target.checked; render(); }
  if (ev.target.classList.contains("av-lines-on")) { st.lines = ev.target.checked; render(); }
});
let width = 0;
new ResizeObserver(() => {
  const w = host().clientWidth;
  if (doc && Math.abs(w - width) > 8) { width = w; render(); }
}).observe(element);
load();
render();
if (document.fonts) document.fonts.addEventListener("loadingdone", () => { if (doc) render(); });
watch("value", () => {
  const before = doc;
  st.pinned = false; st.sel = null;
  load();
  const next = doc;
  const same = before && next && before.meta && next.meta && before.meta.source === next.meta.source &&
    before.meta.model === next.meta.model && JSON.stringify(before.meta.settings) === JSON.stringify(next.meta.settings);
  if (!same) { st.step = null; st.node = null; st.alpha = null; st.expanded = new Set(); }
  if (next && next.meta && next.meta.node != null) st.step = next.rows.length - 1;  // a tree node: its step
  render();
  if (st.lab && doc && !doc.lab && doc.view === "cross" && doc.probs) trigger("lab", {open: true});
  // A phone has room for one thing at a time: after a run, bring the answer into view.
  const top = element.closest("#text-panel") && document.querySelector("#summary");
  if (top && window.innerWidth <= 760 && top.getBoundingClientRect().top > window.innerHeight * 0.5) {
    top.scrollIntoView({block: "start", behavior: "instant"});
  }
});
