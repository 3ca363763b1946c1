// Small SVG charts: stacked time bars with drag-to-zoom, donut, sparkline. No dependencies.
import { h, svg, clear, num, fmtShort, fmtTime, seriesColor } from "./dom.js";

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * Stacked bars over time. data: {buckets:[{ts,total,counts}], interval_seconds}; keys in stack order.
 * onBrush(fromMs, toMs) when the user drags across the chart.
 */
export function timeBars(container, data, { keys, height = 140, onBrush, label = "events" } = {}) {
  clear(container);
  container.classList.add("chart");
  const buckets = data.buckets || [];
  const allKeys = keys || [...new Set(buckets.flatMap((b) => Object.keys(b.counts || {})))];
  const draw = () => {
    clear(container);
    const W = Math.max(200, container.clientWidth || 600);
    const H = height;
    const pad = { l: 44, r: 8, t: 8, b: 20 };
    const iw = W - pad.l - pad.r;
    const ih = H - pad.t - pad.b;
    const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "tbars", role: "img", "aria-label": `${label} over time` });
    if (!buckets.length) {
      root.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis-lbl" }, "No events in this range"));
      container.appendChild(root);
      return;
    }
    const step = (data.interval_seconds || 60) * 1000;
    const t0 = new Date(buckets[0].ts).getTime();
    const t1 = new Date(buckets[buckets.length - 1].ts).getTime() + step;
    const span = Math.max(1, t1 - t0);
    const x = (t) => pad.l + ((t - t0) / span) * iw;
    const max = niceMax(Math.max(4, ...buckets.map((b) => b.total)) / 4) * 4;
    const y = (v) => pad.t + ih - (v / max) * ih;
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i;
      root.appendChild(svg("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: "grid" }));
      root.appendChild(svg("text", { x: pad.l - 6, y: y(v) + 3, "text-anchor": "end", class: "axis-lbl" }, compactAxis(v)));
    }
    const ticks = Math.max(2, Math.floor(iw / 90));
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + (span * i) / ticks;
      root.appendChild(svg("text", { x: x(t), y: H - 5, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle", class: "axis-lbl" }, fmtShort(t, span)));
    }
    const bw = Math.max(1, (iw / buckets.length) - (buckets.length > 80 ? 0.5 : 1.5));
    const bars = svg("g", { class: "bars" });
    buckets.forEach((b) => {
      const bx = x(new Date(b.ts).getTime());
      let acc = 0;
      allKeys.forEach((k, i) => {
        const v = (b.counts || {})[k] || 0;
        if (!v) return;
        const y1 = y(acc + v);
        const y0 = y(acc);
        acc += v;
        bars.appendChild(svg("rect", { x: bx, y: y1, width: bw, height: Math.max(0.5, y0 - y1), fill: seriesColor(k, i) }));
      });
      if (!allKeys.length && b.total) {
        bars.appendChild(svg("rect", { x: bx, y: y(b.total), width: bw, height: y(0) - y(b.total), fill: "var(--accent)" }));
      }
    });
    root.appendChild(bars);
    const hover = svg("rect", { class: "hover-col", y: pad.t, height: ih, width: bw, x: -100 });
    const brush = svg("rect", { class: "brush", y: pad.t, height: ih, x: 0, width: 0, visibility: "hidden" });
    root.appendChild(hover);
    root.appendChild(brush);
    const overlay = svg("rect", { x: pad.l, y: pad.t, width: iw, height: ih, fill: "transparent", class: "overlay" });
    root.appendChild(overlay);
    container.appendChild(root);
    const tip = h("div", { class: "tip", hidden: true });
    container.appendChild(tip);

    const tAt = (ev) => {
      const r = root.getBoundingClientRect();
      const px = Math.min(W - pad.r, Math.max(pad.l, ev.clientX - r.left));
      return { px, t: t0 + ((px - pad.l) / iw) * span };
    };
    let dragFrom = null;
    overlay.addEventListener("mousedown", (ev) => {
      ev.preventDefault();
      dragFrom = tAt(ev);
      brush.setAttribute("visibility", "visible");
      brush.setAttribute("x", dragFrom.px);
      brush.setAttribute("width", 0);
      // A drag may end outside the chart.
      window.addEventListener("mouseup", (e) => end(e), { once: true });
    });
    overlay.addEventListener("mousemove", (ev) => {
      const at = tAt(ev);
      const idx = Math.min(buckets.length - 1, Math.max(0, Math.floor((at.t - t0) / step)));
      const b = buckets[idx];
      hover.setAttribute("x", x(new Date(b.ts).getTime()));
      clear(tip);
      tip.appendChild(h("div", { class: "tip-h" }, fmtTime(b.ts), " · ", num(b.total), " ", label));
      allKeys.forEach((k, i) => {
        const v = (b.counts || {})[k];
        if (v) tip.appendChild(h("div", { class: "tip-r" }, h("i", { style: { background: seriesColor(k, i) } }), k === "__other__" ? "other" : k, h("b", {}, num(v))));
      });
      tip.hidden = false;
      const left = Math.min(container.clientWidth - 190, Math.max(0, at.px + 12));
      tip.style.left = `${left}px`;
      if (dragFrom) {
        const a = Math.min(dragFrom.px, at.px);
        brush.setAttribute("x", a);
        brush.setAttribute("width", Math.abs(at.px - dragFrom.px));
      }
    });
    overlay.addEventListener("mouseleave", () => { tip.hidden = true; hover.setAttribute("x", -100); });
    const end = (ev) => {
      if (!dragFrom) return;
      const at = tAt(ev);
      const from = dragFrom;
      dragFrom = null;
      brush.setAttribute("visibility", "hidden");
      if (onBrush && Math.abs(at.px - from.px) > 3) {
        onBrush(Math.min(from.t, at.t), Math.max(from.t, at.t));
      } else if (onBrush) {
        // A click zooms into the bucket under the pointer.
        const idx = Math.min(buckets.length - 1, Math.max(0, Math.floor((at.t - t0) / step)));
        const bt = new Date(buckets[idx].ts).getTime();
        onBrush(bt, bt + step);
      }
    };
    overlay.addEventListener("mouseup", end);
  };
  draw();
  const ro = new ResizeObserver(() => {
    const w = container.clientWidth;
    if (w && Math.abs(w - (container._w || 0)) > 4) { container._w = w; draw(); }
  });
  container._w = container.clientWidth;
  ro.observe(container);
  return { destroy: () => ro.disconnect() };
}

function compactAxis(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + "k";
  return String(Math.round(v));
}

/** items: [{label, value, color}] */
export function donut(items, { size = 150, thickness = 22, center = "" } = {}) {
  const total = items.reduce((a, b) => a + b.value, 0);
  const r = size / 2 - 2;
  const c = size / 2;
  const root = svg("svg", { width: size, height: size, viewBox: `0 0 ${size} ${size}`, class: "donut", role: "img" });
  root.appendChild(svg("circle", { cx: c, cy: c, r: r - thickness / 2, fill: "none", stroke: "var(--bg-3)", "stroke-width": thickness }));
  let a0 = -Math.PI / 2;
  for (const it of items) {
    if (!it.value || !total) continue;
    const frac = it.value / total;
    const a1 = a0 + frac * Math.PI * 2 - (frac < 1 ? 0.0001 : 0.0002);
    const rr = r - thickness / 2;
    const large = a1 - a0 > Math.PI ? 1 : 0;
    const p = frac >= 0.9999
      ? svg("circle", { cx: c, cy: c, r: rr, fill: "none", stroke: it.color, "stroke-width": thickness })
      : svg("path", {
        d: `M ${c + rr * Math.cos(a0)} ${c + rr * Math.sin(a0)} A ${rr} ${rr} 0 ${large} 1 ${c + rr * Math.cos(a1)} ${c + rr * Math.sin(a1)}`,
        fill: "none", stroke: it.color, "stroke-width": thickness,
      }, svg("title", {}, `${it.label}: ${num(it.value)}`));
    root.appendChild(p);
    a0 += frac * Math.PI * 2;
  }
  root.appendChild(svg("text", { x: c, y: c + 2, "text-anchor": "middle", class: "donut-c" }, center));
  root.appendChild(svg("text", { x: c, y: c + 18, "text-anchor": "middle", class: "donut-s" }, "events"));
  return root;
}

export function sparkline(values, { width = 120, height = 28, color = "var(--accent)" } = {}) {
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "spark", "aria-hidden": "true" });
  if (!values || !values.length) return root;
  const max = Math.max(1, ...values);
  const n = values.length;
  const x = (i) => (n === 1 ? width / 2 : (i / (n - 1)) * (width - 2) + 1);
  const y = (v) => height - 2 - (v / max) * (height - 4);
  const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  root.appendChild(svg("path", { d: `M ${x(0)},${height} L ${pts.join(" L ")} L ${x(n - 1)},${height} Z`, fill: color, opacity: "0.15" }));
  root.appendChild(svg("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 1.5, "stroke-linejoin": "round" }));
  return root;
}

/**
 * One lane per service over time, a dot per bucket with anomalies: its size and colour follow the
 * highest score in it. data: /api/v1/anomalies/timeline. onPick(fromMs, toMs) when a dot is clicked.
 */
export function scoreLanes(container, data, { onPick, lane = 30 } = {}) {
  clear(container);
  container.classList.add("chart");
  const series = data.series || [];
  const buckets = data.buckets || [];
  const draw = () => {
    clear(container);
    const W = Math.max(300, container.clientWidth || 600);
    const pad = { l: 130, r: 14, t: 6, b: 22 };
    const H = pad.t + pad.b + Math.max(1, series.length) * lane;
    const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "tbars lanes", role: "img", "aria-label": "anomaly scores by service over time" });
    if (!series.length || !buckets.length) {
      root.appendChild(svg("text", { x: W / 2, y: H / 2 + 3, "text-anchor": "middle", class: "axis-lbl" }, "No anomalies in this range"));
      container.appendChild(root);
      return;
    }
    const step = (data.interval_seconds || 60) * 1000;
    const t0 = new Date(buckets[0]).getTime();
    const t1 = new Date(buckets[buckets.length - 1]).getTime() + step;
    const span = Math.max(1, t1 - t0);
    const iw = W - pad.l - pad.r;
    const x = (t) => pad.l + ((t - t0) / span) * iw;
    const ticks = Math.max(2, Math.floor(iw / 110));
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + (span * i) / ticks;
      root.appendChild(svg("line", { x1: x(t), x2: x(t), y1: pad.t, y2: H - pad.b, class: "grid" }));
      root.appendChild(svg("text", { x: x(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle", class: "axis-lbl" }, fmtShort(t, span)));
    }
    const tip = h("div", { class: "tip", hidden: true });
    series.forEach((s, i) => {
      const cy = pad.t + i * lane + lane / 2;
      root.appendChild(svg("rect", { x: 0, y: pad.t + i * lane, width: W, height: lane, class: i % 2 ? "lane lane-odd" : "lane" }));
      root.appendChild(svg("circle", { cx: 10, cy, r: 4, fill: seriesColor(s.service, i) }));
      root.appendChild(svg("text", { x: 20, y: cy + 4, class: "lane-lbl" }, s.service.length > 16 ? s.service.slice(0, 15) + "…" : s.service || "(none)"));
      root.appendChild(svg("line", { x1: pad.l, x2: W - pad.r, y1: cy, y2: cy, class: "lane-line" }));
      for (const p of s.points) {
        if (!p.count) continue;
        const bt = new Date(p.ts).getTime();
        const cls = p.max_score >= 0.9 ? "sc-high" : p.max_score >= 0.8 ? "sc-mid" : "sc-low";
        const dot = svg("circle", { cx: x(bt + step / 2), cy, r: 4 + Math.min(1, p.max_score) * 5 + Math.min(3, p.count - 1), class: `dot ${cls}`, "data-service": s.service });
        dot.addEventListener("mouseenter", () => {
          clear(tip);
          tip.appendChild(h("div", { class: "tip-h" }, fmtTime(p.ts), " · ", s.service));
          tip.appendChild(h("div", { class: "tip-r" }, "highest score", h("b", {}, p.max_score.toFixed(2))));
          tip.appendChild(h("div", { class: "tip-r" }, "anomalies", h("b", {}, num(p.count))));
          tip.hidden = false;
          tip.style.left = `${Math.min(container.clientWidth - 190, Math.max(0, x(bt) + 14))}px`;
          tip.style.top = `${Math.max(0, cy - 10)}px`;
        });
        dot.addEventListener("mouseleave", () => { tip.hidden = true; });
        if (onPick) dot.addEventListener("click", () => onPick(bt - step, bt + 2 * step));
        root.appendChild(dot);
      }
    });
    container.appendChild(root);
    container.appendChild(tip);
  };
  draw();
  const ro = new ResizeObserver(() => {
    const w = container.clientWidth;
    if (w && Math.abs(w - (container._w || 0)) > 4) { container._w = w; draw(); }
  });
  container._w = container.clientWidth;
  ro.observe(container);
  return { destroy: () => ro.disconnect() };
}
