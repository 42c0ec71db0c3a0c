/* Inline SVG charts for /reports, drawn here (no library, no request). Every mark carries its value in
   data-* attributes and a <title>, so a test or a screen reader can read the figure it shows. */
"use strict";

const RC = (() => {
  const esc = (s) => MC.esc(s);
  const f1 = (v) => v.toFixed(1);
  const W = 360, H = 190, L = 40, R = 10, T = 14, B = 42;

  function frame(id, title, svgInner, legend, aria) {
    return `<div class="rchart" id="${esc(id)}"><h3>${title}</h3>
      <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(aria)}">${svgInner}</svg>
      ${legend ? `<p class="legend">${legend}</p>` : ""}</div>`;
  }

  function axes(maxV, fmtTick) {
    const y = (v) => T + (H - T - B) * (1 - v / maxV);
    let out = `<line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/>`;
    for (const frac of [0, 0.5, 1]) {
      const v = maxV * frac;
      out += `<line class="grid-line" x1="${L}" y1="${f1(y(v))}" x2="${W - R}" y2="${f1(y(v))}"/>`;
      out += `<text x="${L - 4}" y="${f1(y(v) + 4)}" text-anchor="end">${esc(fmtTick(v))}</text>`;
    }
    return { y, out };
  }

  function xLabels(labels, x) {
    const step = Math.max(1, Math.ceil(labels.length / 8));
    return labels.map((lab, i) => (i % step === 0
      ? `<text x="${f1(x(i))}" y="${H - B + 14}" text-anchor="end" transform="rotate(-35 ${f1(x(i))} ${H - B + 14})">${esc(lab)}</text>`
      : "")).join("");
  }

  const niceMax = (v) => {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
  };

  /** Vertical bars: values[i] for labels[i]; null = no figure (no bar, "–" in the title). */
  function bars(id, title, labels, values, opt = {}) {
    const fmt = opt.fmt || MC.fmt.num;
    const real = values.filter((v) => v != null);
    if (!real.length) return frame(id, title, "", "Chưa có số liệu (no data).", title);
    const maxV = niceMax(Math.max(...real, opt.target || 0));
    const { y, out } = axes(maxV, opt.tick || fmt);
    const slot = (W - L - R) / labels.length, bw = Math.max(2, slot * 0.7);
    const x = (i) => L + slot * i + slot / 2;
    const marks = values.map((v, i) => {
      if (v == null) return "";
      const top = y(v);
      const cls = opt.classOf ? opt.classOf(v) : "";
      return `<rect class="bar ${cls}" data-label="${esc(labels[i])}" data-value="${v}" x="${f1(x(i) - bw / 2)}" y="${f1(top)}" width="${f1(bw)}" height="${f1(H - B - top)}"><title>${esc(labels[i])}: ${esc(fmt(v))}</title></rect>`;
    }).join("");
    const target = opt.target != null
      ? `<line class="target" x1="${L}" y1="${f1(y(opt.target))}" x2="${W - R}" y2="${f1(y(opt.target))}"/>` : "";
    return frame(id, title, out + marks + target + xLabels(labels, x), opt.legend || "", `${title}: ${real.length} kỳ`);
  }

  /** Lines: series = [{name, values}], same labels; optional dashed target line. */
  function lines(id, title, labels, series, opt = {}) {
    const fmt = opt.fmt || MC.fmt.num;
    const real = series.flatMap((s) => s.values.filter((v) => v != null));
    if (!real.length) return frame(id, title, "", "Chưa có số liệu (no data).", title);
    const maxV = opt.max != null ? opt.max : niceMax(Math.max(...real, opt.target || 0));
    const minV = opt.min || 0;
    const span = maxV - minV;
    const { out } = axes(span, (v) => (opt.tick || fmt)(v + minV));
    const y = (v) => T + (H - T - B) * (1 - (v - minV) / span);
    const slot = (W - L - R) / Math.max(1, labels.length);
    const x = (i) => L + slot * i + slot / 2;
    let marks = "";
    series.forEach((s, k) => {
      let path = "";
      s.values.forEach((v, i) => {
        if (v == null) return;
        path += `${path ? "L" : "M"}${f1(x(i))},${f1(y(v))}`;
        marks += `<circle class="s${k} pt" r="2.6" cx="${f1(x(i))}" cy="${f1(y(v))}" data-series="${esc(s.name)}" data-label="${esc(labels[i])}" data-value="${v}"><title>${esc(s.name)} ${esc(labels[i])}: ${esc(fmt(v))}</title></circle>`;
      });
      marks = `<path class="line s${k}" style="fill:none" d="${path}"/>` + marks;
    });
    const target = opt.target != null
      ? `<line class="target" x1="${L}" y1="${f1(y(opt.target))}" x2="${W - R}" y2="${f1(y(opt.target))}"/>` : "";
    const legend = series.map((s, k) => `<b class="s${k}" style="color:inherit">■</b> ${esc(s.name)}`).join(" · ")
      + (opt.target != null ? ` · <span style="color:#c0392b">- - -</span> ${esc(opt.targetName || "mục tiêu")}` : "");
    return frame(id, title, out + target + marks + xLabels(labels, x), legend, title);
  }

  /** Officers: Wilson interval (bar), ranking score (dot), raw rate (ring); "chưa đủ dữ liệu" below the minimum. */
  function intervals(id, title, officers, width = 720) {
    if (!officers.length) return frame(id, title, "", "Chưa có cán bộ nào được đánh giá (no officer rated).", title);
    const w = width, rowH = 24, top = 18, left = Math.min(150, w * 0.34), right = 20;
    const h = top + rowH * officers.length + 24;
    const x = (v) => left + (w - left - right) * v;
    let out = "";
    for (const v of [0, 0.5, 0.8, 1]) {
      out += `<line class="grid-line" x1="${f1(x(v))}" y1="${top - 6}" x2="${f1(x(v))}" y2="${h - 22}"/>`;
      out += `<text x="${f1(x(v))}" y="${h - 8}" text-anchor="middle">${Math.round(v * 100)}%</text>`;
    }
    officers.forEach((o, i) => {
      const cy = top + rowH * i + rowH / 2;
      const name = `${o.rank != null && o.enough_data ? `${o.rank}. ` : ""}${o.officer_id}`;
      out += `<text x="${left - 6}" y="${f1(cy + 4)}" text-anchor="end">${esc(name)}</text>`;
      if (!o.enough_data) {
        out += `<text class="na officer-na" data-officer="${esc(o.officer_id)}" x="${left + 4}" y="${f1(cy + 4)}">chưa đủ dữ liệu (${MC.fmt.num(o.rated)} lượt)</text>`;
        return;
      }
      out += `<g class="officer" data-officer="${esc(o.officer_id)}" data-low="${o.ci_low}" data-high="${o.ci_high}" data-score="${o.score}" data-rank="${o.rank}">
        <line class="ci" x1="${f1(x(o.ci_low))}" y1="${f1(cy)}" x2="${f1(x(o.ci_high))}" y2="${f1(cy)}"/>
        <circle class="raw" r="4.5" cx="${f1(x(o.satisfaction_rate))}" cy="${f1(cy)}"/>
        <circle class="dot" r="3.2" cx="${f1(x(o.score))}" cy="${f1(cy)}"/>
        <title>${esc(o.officer_id)}: hài lòng ${MC.fmt.pct(o.satisfaction_rate)} trên ${MC.fmt.num(o.rated)} lượt; khoảng tin cậy ${MC.fmt.pct(o.ci_low)}–${MC.fmt.pct(o.ci_high)}; điểm xếp hạng ${MC.fmt.pct(o.score)}</title></g>`;
    });
    const legend = `<b style="color:#2f6db5">━</b> khoảng tin cậy 95 % (Wilson interval) · <b style="color:#2f6db5">○</b> tỷ lệ hài lòng (raw rate) · <b style="color:#b26a00">●</b> điểm xếp hạng (ranking score)`;
    return `<div class="rchart wide" id="${esc(id)}"><h3>${title}</h3><svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">${out}</svg><p class="legend">${legend}</p></div>`;
  }

  /** Horizontal bars of counts (the reasons given). */
  function hbars(id, title, items, width = 720) {
    if (!items.length) return frame(id, title, "", "Không có lượt “Không hài lòng” nào (none).", title);
    const w = width, rowH = 26, left = Math.min(200, w * 0.42), right = 50, h = rowH * items.length + 10;
    const maxV = Math.max(...items.map((it) => it.value), 1);
    const out = items.map((it, i) => {
      const y = 5 + rowH * i, bw = (w - left - right) * it.value / maxV;
      return `<g class="reason" data-reason="${esc(it.code)}" data-value="${it.value}">
        <text x="${left - 6}" y="${y + 15}" text-anchor="end">${esc(it.label)}</text>
        <rect class="bar low" x="${left}" y="${y + 3}" width="${f1(Math.max(1, bw))}" height="${rowH - 8}"/>
        <text x="${f1(left + bw + 4)}" y="${y + 15}">${MC.fmt.num(it.value)}</text></g>`;
    }).join("");
    return `<div class="rchart wide" id="${esc(id)}"><h3>${title}</h3><svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">${out}</svg></div>`;
  }

  /** Scatter of counter-weeks: satisfaction (x, 0..1) against the anonymous sentiment index (y, −1..1). */
  function scatter(id, title, points, legend) {
    if (!points.length) return frame(id, title, "", legend, title);
    const y = (v) => T + (H - T - B) * (1 - (v + 1) / 2);
    const x = (v) => L + (W - L - R) * v;
    let out = `<line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/>`;
    for (const v of [-1, 0, 1]) {
      out += `<line class="grid-line" x1="${L}" y1="${f1(y(v))}" x2="${W - R}" y2="${f1(y(v))}"/>`;
      out += `<text x="${L - 4}" y="${f1(y(v) + 4)}" text-anchor="end">${esc(MC.fmt.score(v))}</text>`;
    }
    for (const v of [0, 0.5, 1]) out += `<text x="${f1(x(v))}" y="${H - B + 14}" text-anchor="middle">${Math.round(v * 100)}%</text>`;
    out += `<text x="${f1((L + W - R) / 2)}" y="${H - 6}" text-anchor="middle">tỷ lệ hài lòng theo nút (satisfaction)</text>`;
    const marks = points.map((p) => `<circle class="pt s0" r="2.8" cx="${f1(x(p.satisfaction))}" cy="${f1(y(p.sentiment_index))}" data-x="${p.satisfaction}" data-y="${p.sentiment_index}"><title>${esc(p.label)}: hài lòng ${MC.fmt.pct(p.satisfaction)}, cảm xúc ${esc(MC.fmt.score(p.sentiment_index))}</title></circle>`).join("");
    return frame(id, title, out + marks, legend, `${title}: ${points.length}`);
  }

  return { bars, lines, intervals, hbars, scatter };
})();
