/* /map: offices on an offline vector base layer, coloured by today's wait or satisfaction; live via SSE. */
"use strict";

(() => {
  const { getJSON, pick, fmt, esc, live, debounce } = MC;
  const mapData = document.getElementById("map").dataset;
  const WAIT_TARGET_S = Number(mapData.waitTargetS || 1200);
  const WAIT_OK_S = Number(mapData.waitWarnS || 900);
  const SAT_OK = Number(mapData.satOk || 0.9);
  const SAT_WARN = Number(mapData.satWarn || 0.75);
  const LABEL_LIMIT = 60;  // more offices than this: names on hover/focus only (a national map)
  const FULL_REFRESH_MS = 60000;
  // "20 phút"; below two minutes in seconds ("60 giây" in the compressed demo), as the legend says
  const TARGET_VI = WAIT_TARGET_S < 120 ? `${fmt.num(WAIT_TARGET_S)} giây` : fmt.minutes(WAIT_TARGET_S);
  const TARGET_EN = WAIT_TARGET_S < 120 ? `${fmt.num(WAIT_TARGET_S)} s` : `${fmt.minutes(WAIT_TARGET_S).replace(" phút", "")} min`;
  const COLOURS = { ok: "#1a7f37", warn: "#b26a00", bad: "#c62828", none: "#6b6b6b" };
  const CLASS_VI = {
    wait: { ok: "đạt", warn: "gần chỉ tiêu", bad: `vượt chỉ tiêu ${TARGET_VI}`, none: "chưa có dữ liệu" },
    satisfaction: { ok: "tốt", warn: "khá", bad: "thấp", none: "chưa có đánh giá" },
  };

  const state = { mode: "wait", offices: new Map(), markers: new Map(), selected: null, fitted: false };
  const mapEl = document.getElementById("map");
  const listEl = document.getElementById("office-list");
  const panel = document.getElementById("office-panel");
  const panelTitle = document.getElementById("panel-title");
  const panelBody = document.getElementById("panel-body");

  const map = L.map(mapEl, { attributionControl: false, zoomSnap: 0.25, minZoom: 4, maxZoom: 15 })
    .setView([22.35, 103.6], 10);
  map.createPane("base").style.zIndex = 200;
  L.control.scale({ imperial: false }).addTo(map);

  // ------------------------------------------------------------------ offline base layer
  getJSON(mapEl.dataset.basemap).then((gj) => {
    L.geoJSON(gj, {
      pane: "base",
      interactive: false,
      style: (f) => {
        const p = f.properties || {};
        if (p.kind === "context") return { color: "#555", weight: 2, dashArray: "6 6", fill: false };
        return p.home
          ? { color: "#5a5a5a", weight: 1.5, fillColor: "#fbf8ef", fillOpacity: 1 }
          : { color: "#8a8a8a", weight: 1, fillColor: "#e6e6e6", fillOpacity: 1 };
      },
    }).addTo(map);
  }).catch((e) => console.warn("base layer", e));

  // ------------------------------------------------------------------ data shapes
  /** One office from a map.geojson feature or an /api/v1/offices item, whatever nesting the API uses. */
  function normOffice(raw) {
    const p = raw.type === "Feature" ? { ...raw.properties } : raw;
    if (raw.type === "Feature" && raw.geometry && raw.geometry.coordinates) {
      p.lon = raw.geometry.coordinates[0];
      p.lat = raw.geometry.coordinates[1];
    }
    const k = (...names) => pick(p, ...names.flatMap((n) => [`kpi_today.${n}`, `today.${n}`, `kpi.${n}`, n]));
    return {
      code: String(pick(p, "code", "office_code")),
      name: pick(p, "name", "office_name") || "",
      unit: pick(p, "unit_name", "unit.name") || "",
      lat: Number(p.lat), lon: Number(p.lon),
      visits: k("visits"),
      waiting: k("waiting_now", "waiting"),
      avgWait: k("avg_wait_s", "wait_avg_s"),
      satisfaction: k("satisfaction_rate", "satisfaction"),
      rated: k("rated", "ratings_count"),
      online: k("devices_online", "online"),
      devices: k("devices_total", "devices"),
      waitClass: pick(p, "wait_class"),
      satClass: pick(p, "satisfaction_class"),
    };
  }

  function waitClass(o) {
    if (o.waitClass) return o.waitClass;  // the server's, from its [kpi] settings
    if (o.avgWait == null) return "none";
    if (o.avgWait <= WAIT_OK_S) return "ok";
    return o.avgWait <= WAIT_TARGET_S ? "warn" : "bad";
  }

  function satClass(o) {
    if (o.satClass) return o.satClass;
    if (o.satisfaction == null) return "none";
    if (o.satisfaction >= SAT_OK) return "ok";
    return o.satisfaction >= SAT_WARN ? "warn" : "bad";
  }

  const classOf = (o) => (state.mode === "wait" ? waitClass(o) : satClass(o));
  const figureOf = (o) => (state.mode === "wait" ? fmt.minutes(o.avgWait) : fmt.pct(o.satisfaction));
  const shortName = (n) => n.replace(/^Bộ phận Một cửa\s+/i, "");

  // ------------------------------------------------------------------ markers and list
  /** Leaflet treats a string tooltip as HTML: names (set by operators or the registry) go in as text. */
  function textNode(text) {
    const span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  function describe(o) {
    const cls = classOf(o);
    return `${o.name}: ${state.mode === "wait" ? "chờ trung bình" : "mức hài lòng"} ${figureOf(o)} (${CLASS_VI[state.mode][cls]})`;
  }

  function render() {
    const seen = new Set();
    for (const o of state.offices.values()) {
      if (!Number.isFinite(o.lat) || !Number.isFinite(o.lon)) continue;
      seen.add(o.code);
      const cls = classOf(o);
      let m = state.markers.get(o.code);
      if (!m) {
        m = L.circleMarker([o.lat, o.lon], { radius: 13, weight: 3, color: "#1b1b1b", fillOpacity: 0.95 });
        m.bindTooltip(textNode(shortName(o.name)), { permanent: state.offices.size <= LABEL_LIMIT, direction: "right",
                                           offset: [12, 0], className: "office-label" });
        m.on("click", () => select(o.code));
        const hover = (on) => { const t = m.getTooltip(); if (t && t.getElement()) t.getElement().classList.toggle("hover", on); };
        m.on("mouseover", () => hover(true));
        m.on("mouseout", () => hover(false));
        m.addTo(map);
        const el = m.getElement();
        el.setAttribute("tabindex", "0");
        el.setAttribute("role", "button");
        el.addEventListener("focus", () => hover(true));  // a hidden (crowded) name shows on focus too
        el.addEventListener("blur", () => hover(false));
        el.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(o.code); }
        });
        state.markers.set(o.code, m);
      }
      m.setLatLng([o.lat, o.lon]);
      m.setStyle({ fillColor: COLOURS[cls], color: state.selected === o.code ? "#000" : "#1b1b1b",
                   weight: state.selected === o.code ? 5 : 3 });
      const el = m.getElement();
      el.setAttribute("aria-label", describe(o));
      el.dataset.office = o.code;
      el.dataset.cls = cls;
    }
    for (const [code, m] of state.markers) {
      if (!seen.has(code)) { m.remove(); state.markers.delete(code); }
    }
    renderList();
    if (!state.fitted && seen.size) {
      const pts = [...state.offices.values()].filter((o) => seen.has(o.code)).map((o) => [o.lat, o.lon]);
      map.fitBounds(L.latLngBounds(pts).pad(1.2), { maxZoom: 11 });  // with some context (border, box)
      state.fitted = true;
    }
    placeLabels();
  }

  // ------------------------------------------------------------------ label placement (map-labels.js)
  const placeLabels = () => MCLabels.place(map, mapEl, state.markers, state.selected);
  map.on("zoomend", () => requestAnimationFrame(placeLabels));  // after the renderer moved the markers

  function renderList() {
    const items = [...state.offices.values()].sort((a, b) => a.name.localeCompare(b.name, "vi"));
    listEl.innerHTML = items.map((o) => {
      const cls = classOf(o);
      return `<li><button type="button" data-office="${esc(o.code)}" data-cls="${cls}"
        aria-pressed="${state.selected === o.code}" aria-label="${esc(describe(o))}">
        <span class="swatch c-${cls}" aria-hidden="true"></span><span>${esc(o.name)}</span>
        <span class="figure">${esc(figureOf(o))}</span></button></li>`;
    }).join("") || `<li class="note">Chưa có điểm một cửa nào trong danh mục. (No offices registered.)</li>`;
    listEl.setAttribute("aria-busy", "false");
  }

  listEl.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-office]");
    if (b) select(b.dataset.office);
  });

  async function loadOffices() {
    let items;
    try {
      const gj = await getJSON("/api/v1/map.geojson");
      items = (gj.features || []).map(normOffice);
    } catch (e) {
      const data = await getJSON("/api/v1/offices");
      items = (Array.isArray(data) ? data : data.offices || data.items || []).map(normOffice);
    }
    state.offices = new Map(items.map((o) => [o.code, o]));
    render();
    document.body.dataset.officesLoaded = String(items.length);
  }

  // ------------------------------------------------------------------ office panel
  function kpiTile(label, en, value, cls = "", key = "") {
    return `<div class="kpi ${cls}" data-kpi="${key}"><span class="label">${label} <span class="en">${en}</span></span>
      <span class="value">${esc(value)}</span></div>`;
  }

  const LEVELS = {
    3: { 1: "Không hài lòng", 2: "Hài lòng", 3: "Rất hài lòng" },
    5: { 1: "Rất không hài lòng", 2: "Không hài lòng", 3: "Bình thường", 4: "Hài lòng", 5: "Rất hài lòng" },
  };

  /** Full rating distribution (levels high → low) as a table with bars. */
  function distribution(kpi) {
    const dist = kpi.ratings || {};
    const scale = kpi.rating_scale || 3;
    const total = Object.values(dist).reduce((s, n) => s + n, 0);
    if (!total) return `<p class="note">Chưa có đánh giá hôm nay. (No ratings today.)</p>`;
    const levels = [];
    for (let l = scale; l >= 1; l--) levels.push(l);
    for (const l of Object.keys(dist).map(Number)) if (!levels.includes(l)) levels.push(l);
    return `<table class="dist" aria-label="Phân bố đánh giá (rating distribution)"><tbody>${levels.map((l) => {
      const n = dist[String(l)] || 0;
      const share = n / total;
      const label = (LEVELS[scale] || {})[l] || `Mức ${l}`;
      return `<tr data-level="${l}"><td>${esc(label)}</td><td class="num">${fmt.num(n)}</td>
        <td style="width:40%"><div class="bar" role="img" aria-label="${fmt.pct(share)}"><span style="width:${(share * 100).toFixed(1)}%"></span></div></td>
        <td>${fmt.pct(share)}</td></tr>`;
    }).join("")}</tbody></table>
    <p class="note">${fmt.num(total)} lượt đánh giá (rated visits), thang ${scale} mức.</p>`;
  }

  /** [{hour, arrivals}] or [n0..n23] → array of 24 (null where absent). */
  function toHours(v) {
    const out = new Array(24).fill(null);
    if (!Array.isArray(v)) return out;
    v.forEach((item, i) => {
      if (typeof item === "number") out[i] = item;
      else if (item && item.hour != null) out[Number(item.hour)] = pick(item, "arrivals", "count", "value");
    });
    return out;
  }

  const WEEKDAYS = ["", "T2", "T3", "T4", "T5", "T6", "T7", "CN"];
  /** "T7 12/12" for {day: "2026-12-12", weekday: 6} (ISO weekday, 7 = Sunday). */
  const dayLabel = (d) => `${WEEKDAYS[d.weekday] || ""} ${String(d.day).slice(8, 10)}/${String(d.day).slice(5, 7)}`.trim();

  /** The forecast's error on the past week, or why there is none (no history before that week). */
  function forecastError(fc) {
    const err = fc.error || {};
    if (err.value == null || err.history === false || err.history_days === 0) {
      return "chưa đủ lịch sử để đo sai số (not enough history to measure the error)";
    }
    const mae = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 2 }).format(err.value);
    return `sai số trung bình ±${mae} lượt/giờ trên tuần vừa qua (MAE, last week held out)`;
  }

  /** Per-hour arrivals today (bars) and the forecast for the same weekday next week (dashed line). */
  function hourlyChart(detail) {
    const arrivals = toHours(detail.hours);
    const fc = detail.forecast || {};
    const week = fc.next_week || [];
    const sameDay = week.length ? week[week.length - 1] : null;  // today + 7 days
    const forecast = toHours(sameDay ? sameDay.hours : null);
    const hours = [];
    for (let h = 0; h < 24; h++) if (arrivals[h] != null || forecast[h] != null) hours.push(h);
    if (!hours.length) return `<p class="note">Chưa có lượt đến nào. (No arrivals yet.)</p>`;
    const h0 = Math.min(7, hours[0]);
    const h1 = Math.max(17, hours[hours.length - 1]);
    const span = h1 - h0 + 1;
    const maxV = Math.max(1, ...hours.map((h) => Math.max(arrivals[h] || 0, forecast[h] || 0)));
    const W = 360, H = 170, L0 = 28, B = 22, T = 10;
    const bw = (W - L0 - 6) / span;
    const y = (v) => T + (H - T - B) * (1 - v / maxV);
    let bars = "", labels = "";
    const pts = [];
    for (let h = h0; h <= h1; h++) {
      const x = L0 + (h - h0) * bw;
      const a = arrivals[h] || 0;
      if (a > 0) bars += `<rect class="bar-a" data-hour="${h}" data-arrivals="${a}" x="${(x + 1).toFixed(1)}" y="${y(a).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(H - B - y(a)).toFixed(1)}"><title>${h}h: ${a} lượt đến</title></rect>`;
      if ((h - h0) % 2 === 0) labels += `<text x="${(x + bw / 2).toFixed(1)}" y="${H - 6}" text-anchor="middle">${h}h</text>`;
      if (forecast[h] != null) pts.push([x + bw / 2, y(forecast[h]), h, forecast[h]]);
    }
    const line = pts.length > 1 ? `<polyline class="line-f" points="${pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" ")}"/>` : "";
    const dots = pts.map((p) => `<circle class="pt-f" cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="2.5"><title>Dự báo ${p[2]}h: ${fmt.num(p[3])}</title></circle>`).join("");
    const total = hours.reduce((s, h) => s + (arrivals[h] || 0), 0);
    const peak = hours.reduce((b, h) => ((arrivals[h] || 0) > (arrivals[b] || 0) ? h : b), hours[0]);
    const errText = forecastError(fc);
    return `<div class="chart" id="hourly-chart"><svg viewBox="0 0 ${W} ${H}" role="img"
      aria-label="Lượt đến theo giờ hôm nay: tổng ${total}, cao nhất lúc ${peak}h. Đường nét đứt: dự báo cùng ngày tuần tới.">
      <line class="axis" x1="${L0}" y1="${H - B}" x2="${W - 4}" y2="${H - B}"/>
      <line class="axis" x1="${L0}" y1="${T}" x2="${L0}" y2="${H - B}"/>
      <text x="${L0 - 4}" y="${T + 8}" text-anchor="end">${maxV}</text><text x="${L0 - 4}" y="${H - B}" text-anchor="end">0</text>
      ${bars}${line}${dots}${labels}</svg>
      <p class="note"><b style="color:#0b6e4f">▮</b> Lượt đến hôm nay (arrivals today, ${fmt.num(total)}) ·
      <b style="color:#b26a00">- - -</b> Dự báo ${sameDay ? esc(dayLabel(sameDay)) : "tuần tới"} (forecast)${errText ? `; ${esc(errText)}` : ""}.</p></div>`;
  }

  /** Next 7 days' forecast as a bar chart: expected visits per day (the per-hour figures are in the API). */
  function forecastChart(detail) {
    const week = (detail.forecast || {}).next_week || [];
    if (!week.length) return `<p class="note">Chưa có dự báo. (No forecast yet.)</p>`;
    const totals = week.map((d) => (d.hours || []).reduce((s, x) => s + (Number(x.arrivals) || 0), 0));
    const maxV = Math.max(1, ...totals);
    const W = 360, H = 180, T = 22, B = 40, L0 = 6;
    const slot = (W - 2 * L0) / week.length, bw = slot * 0.62;
    const y = (v) => T + (H - T - B) * (1 - v / maxV);
    const bars = week.map((d, i) => {
      const x = L0 + i * slot + (slot - bw) / 2, v = totals[i], yv = y(v);
      const label = dayLabel(d);
      const value = v > 0 ? fmt.num(v) : "0";
      return `<g class="fc-day" data-day="${esc(d.day)}" data-total="${v.toFixed(2)}">
        <rect class="bar-f" x="${x.toFixed(1)}" y="${yv.toFixed(1)}" width="${bw.toFixed(1)}" height="${(H - B - yv).toFixed(1)}"><title>${esc(label)}: ${value} lượt dự báo</title></rect>
        <text class="val" x="${(x + bw / 2).toFixed(1)}" y="${(yv - 5).toFixed(1)}" text-anchor="middle">${value}</text>
        <text x="${(x + bw / 2).toFixed(1)}" y="${H - B + 15}" text-anchor="middle">${esc(WEEKDAYS[d.weekday] || "")}</text>
        <text class="sub" x="${(x + bw / 2).toFixed(1)}" y="${H - B + 30}" text-anchor="middle">${esc(label.slice(-5))}</text></g>`;
    }).join("");
    const sum = totals.reduce((a, b) => a + b, 0);
    const errText = forecastError(detail.forecast || {});
    return `<div class="chart" id="forecast-chart"><svg viewBox="0 0 ${W} ${H}" role="img"
      aria-label="Dự báo lượt khách 7 ngày tới: tổng ${fmt.num(sum)} lượt, nhiều nhất ${fmt.num(maxV)} lượt một ngày.">
      <line class="axis" x1="${L0}" y1="${H - B}" x2="${W - L0}" y2="${H - B}"/>${bars}</svg>
      <p class="note">Lượt khách dự kiến mỗi ngày (expected visits per day) = trung bình cùng thứ trong
        ${fmt.num((detail.forecast || {}).weeks || 4)} tuần trước; ${esc(errText)}.</p></div>`;
  }

  function renderPanel(o, detail) {
    const kpi = detail.kpi || detail.kpi_today || detail;
    const wcls = waitClass({ avgWait: kpi.avg_wait_s }), scls = satClass({ satisfaction: kpi.satisfaction_rate });
    panelTitle.textContent = o.name;
    panelBody.innerHTML = `
      <p class="note">${esc(o.unit)}${o.unit ? " · " : ""}mã (code) ${esc(o.code)} · ngày (day) ${esc(detail.day || "")}</p>
      <div class="kpis">
        ${kpiTile("Lượt đến", "Visits", fmt.num(kpi.visits), "", "visits")}
        ${kpiTile("Đang chờ", "Waiting now", fmt.num(kpi.waiting_now), "", "waiting_now")}
        ${kpiTile("Chờ trung bình", "Avg wait", fmt.minutes(kpi.avg_wait_s), wcls, "avg_wait")}
        ${kpiTile("Chờ P90", "P90 wait", fmt.minutes(kpi.p90_wait_s), "", "p90_wait")}
        ${kpiTile(`Chờ quá ${TARGET_VI}`, `Share > ${TARGET_EN}`, fmt.pct(kpi.over_target_share), "", "over_target")}
        ${kpiTile("Tỉ lệ hài lòng", "Satisfaction", fmt.pct(kpi.satisfaction_rate), scls, "satisfaction")}
        ${kpiTile("Chỉ số cảm xúc", "Sentiment −1…+1", fmt.score(kpi.sentiment_score), "", "sentiment")}
        ${kpiTile("Không đến", "No-shows", fmt.num(kpi.no_shows), "", "no_shows")}
      </div>
      <p class="note">Tỉ lệ hài lòng = (số lượt được đánh giá − số lượt "Không hài lòng") ÷ số lượt được đánh giá
        (theo tinh thần Quyết định 766/QĐ-TTg).
        ${kpi.sentiment_visits ? `Cảm xúc: tổng hợp ẩn danh trên ${fmt.num(kpi.sentiment_visits)} lượt.` : "Cảm xúc: chưa đủ dữ liệu ẩn danh."}</p>
      <h3>Đánh giá <span class="en">Ratings</span></h3>
      ${distribution(kpi)}
      <h3>Lượt đến theo giờ <span class="en">Arrivals per hour</span></h3>
      ${hourlyChart(detail)}
      <h3 id="forecast-title">Dự báo lượt khách 7 ngày tới <span class="en">7-day visitor forecast</span></h3>
      ${forecastChart(detail)}
      <h3>Theo loại vé và lĩnh vực <span class="en">By ticket kind and service field</span></h3>
      <div id="panel-kinds"><p class="note">Đang tải… (loading)</p></div>`;
    panel.dataset.office = o.code;
    panel.dataset.visits = String(kpi.visits ?? "");
  }

  const KINDS = { walk_in: "Vãng lai", priority: "Ưu tiên", appointment: "Hẹn giờ" };

  /** Today's waits by ticket kind and service field, and the appointments (/api/v1/offices/{code}/kinds). */
  function renderKinds(body) {
    const el = document.getElementById("panel-kinds");
    if (!el) return;
    const rows = body.by_kind.map((k) => `<tr data-kind="${esc(k.kind)}" data-field="${esc(k.service_field || "")}" data-issued="${k.issued}">
      <td>${esc(KINDS[k.kind] || k.kind)}${k.service_field ? ` · ${esc(k.service_field)}` : ""}</td><td>${fmt.num(k.issued)}</td>
      <td>${fmt.minutes(k.mean_wait_s)}</td><td>${fmt.minutes(k.p90_wait_s)}</td></tr>`).join("");
    const a = body.appointments;
    el.innerHTML = rows
      ? `<div class="kinds-wrap"><table class="dist kinds"><thead><tr><th>Loại vé</th><th>Vé</th><th>Chờ TB</th><th>P90</th></tr></thead><tbody>${rows}</tbody></table></div>
        <p class="note" id="panel-appointments">Hẹn giờ hôm nay: ${fmt.num(a.booked)} lượt đặt, ${fmt.num(a.redeemed)} đã lấy vé${a.no_show_rate == null ? "" : `; không đến ${fmt.pct(a.no_show_rate)}`}. <span class="en">Bookings today and tickets redeemed.</span></p>`
      : `<p class="note">Chưa có vé hôm nay. (No tickets today.)</p>`;
  }

  async function loadPanel(code) {
    const o = state.offices.get(code);
    if (!o) return;
    try {
      const k = await getJSON(`/api/v1/offices/${encodeURIComponent(code)}/kpis`);
      if (state.selected !== code) return;
      renderPanel(o, k);
      const kinds = await getJSON(`/api/v1/offices/${encodeURIComponent(code)}/kinds`);
      if (state.selected === code) renderKinds(kinds);
    } catch (e) {
      if (state.selected !== code) return;  // another office was chosen meanwhile: its answer renders
      panelTitle.textContent = o.name;
      panelBody.innerHTML = `<p class="error">Không tải được số liệu (could not load KPIs): ${esc(e.message)}</p>`;
    }
  }

  async function select(code) {
    state.selected = code;
    panel.hidden = false;
    render();
    await loadPanel(code);
    panel.focus({ preventScroll: false });
  }

  document.getElementById("panel-close").addEventListener("click", () => {
    const code = state.selected;
    state.selected = null;
    panel.hidden = true;
    render();
    const b = listEl.querySelector(`button[data-office="${CSS.escape(code || "")}"]`);
    if (b) b.focus();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !panel.hidden) document.getElementById("panel-close").click();
  });

  for (const r of document.querySelectorAll('input[name="mode"]')) {
    r.addEventListener("change", () => {
      state.mode = r.value;
      document.getElementById("legend-wait").hidden = state.mode !== "wait";
      document.getElementById("legend-satisfaction").hidden = state.mode !== "satisfaction";
      render();
    });
  }

  // ------------------------------------------------------------------ live updates
  const refreshOffices = debounce(() => loadOffices().catch((e) => console.warn(e)), 400);
  const refreshPanel = debounce(() => state.selected && loadPanel(state.selected), 400);
  /** An office message carries the office's new kpi_today: apply it in place (no refetch of every
   * office, which matters for a national map); unknown offices or bare hints trigger a refetch. */
  function applyLive(data) {
    const o = data.office_code != null ? state.offices.get(String(data.office_code)) : null;
    if (!o || !data.kpi_today) return false;
    const fresh = normOffice({ ...data, code: o.code, name: o.name, unit_name: o.unit, lat: o.lat, lon: o.lon,
                               devices_online: o.online, devices_total: o.devices });
    fresh.waitClass = null;  // recomputed from the same bands the server uses
    fresh.satClass = null;
    state.offices.set(o.code, fresh);
    return true;
  }
  const rerender = debounce(render, 150);
  live(document.getElementById("live-state"), (kind, data) => {
    if (kind === "reconnected") { refreshOffices(); refreshPanel(); return; }
    if (kind !== "office") return;
    if (applyLive(data)) rerender(); else refreshOffices();
    if (state.selected && (!data.office_code || data.office_code === state.selected)) refreshPanel();
  });
  setInterval(refreshOffices, FULL_REFRESH_MS);  // device counts and anything a hint did not carry

  loadOffices().catch((e) => {
    listEl.innerHTML = `<li class="error">Không tải được danh sách (could not load offices): ${esc(e.message)}</li>`;
  });
  window.motcuaMap = { state, map, reload: loadOffices };
})();
