/* /reports: choose an office or unit and a period; figures from /api/v1/reports/{kind}/{code}
   (the same figures as the PDF, the XLSX and the period API); charts by reports-charts.js. */
"use strict";

(() => {
  const { getJSON, fmt, esc } = MC;
  const $ = (id) => document.getElementById(id);
  const root = document.querySelector(".reports");
  const form = $("report-form");
  const status = $("report-status");
  const QUARTERS = ["I", "II", "III", "IV"];
  const BY = { day: "theo ngày (per day)", week: "theo tuần, ghi ngày thứ Hai (per week, from Monday)",
    month: "theo tháng (per month)" };

  function fillIndex() {
    const period = $("period").value;
    const sel = $("index");
    const label = $("index-label");
    label.hidden = period === "year";
    const n = period === "month" ? 12 : 4;
    const wanted = period === "month" ? root.dataset.month : root.dataset.quarter;
    sel.innerHTML = Array.from({ length: n }, (_, i) => {
      const v = i + 1;
      const text = period === "month" ? `Tháng ${v}` : `Quý ${QUARTERS[i]}`;
      return `<option value="${v}" ${String(v) === wanted ? "selected" : ""}>${text}</option>`;
    }).join("");
  }

  function query() {
    const [kind, code] = $("scope").value.split("/");
    const q = new URLSearchParams({ period: $("period").value, year: $("year").value, index: $("index").value || "1" });
    return { base: `/api/v1/reports/${encodeURIComponent(kind)}/${encodeURIComponent(code)}`, q: q.toString() };
  }

  const minutes = (s) => (s == null ? null : s / 60);
  const fmtMin = (m) => (m == null ? "—" : `${new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 1 }).format(m)} phút`);
  const fmtPct = (x) => (x == null ? "—" : `${new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 1 }).format(x * 100)}%`);

  function tile(vi, en, value, key) {
    return `<div class="tile" data-key="${key}"><div class="v">${esc(value)}</div><div class="k">${vi} <span class="en">${en}</span></div></div>`;
  }

  function renderTotals(r) {
    const t = r.totals;
    const target = r.wait_target_s / 60;
    $("totals").innerHTML = [
      tile("Lượt khách", "Visits", fmt.num(t.visits), "visits"),
      tile("Chờ trung bình", "Avg wait", fmtMin(minutes(t.avg_wait_s)), "avg_wait"),
      tile("Chờ p90", "P90 wait", fmtMin(minutes(t.p90_wait_s)), "p90_wait"),
      tile(`Chờ quá ${fmt.num(target)} phút`, `Over ${fmt.num(target)} min`, fmtPct(t.over_target_share), "over_target"),
      tile("Tỷ lệ hài lòng", "Satisfaction", fmtPct(t.satisfaction_rate), "satisfaction"),
      tile("Lượt đánh giá", "Ratings", fmt.num(t.rated), "rated"),
      tile("Chỉ số cảm xúc ẩn danh", "Anonymous sentiment", fmt.score(t.sentiment_score), "sentiment"),
      tile("Không đến", "No-shows", fmt.num(t.no_shows), "no_shows"),
    ].join("");
  }

  function renderTrends(r) {
    const s = r.series;
    const labels = s.map((p) => p.label);
    const target = r.wait_target_s / 60;
    $("trends").innerHTML = [
      RC.bars("chart-visits", "Lượt khách <span class=\"en\">Visits</span>", labels, s.map((p) => p.visits)),
      RC.lines("chart-wait", "Thời gian chờ (phút) <span class=\"en\">Wait, min</span>", labels, [
        { name: "trung bình (average)", values: s.map((p) => minutes(p.avg_wait_s)) },
        { name: "p90", values: s.map((p) => minutes(p.p90_wait_s)) },
      ], { fmt: fmtMin, tick: (v) => fmt.num(v), target, targetName: `mục tiêu ${fmt.num(target)} phút (target)` }),
      RC.lines("chart-over", `Tỷ lệ chờ quá ${fmt.num(target)} phút <span class="en">Share over target</span>`, labels,
        [{ name: "tỷ lệ (share)", values: s.map((p) => p.over_target_share) }], { fmt: fmtPct, tick: fmtPct, max: 1 }),
      RC.lines("chart-satisfaction", "Tỷ lệ hài lòng <span class=\"en\">Satisfaction</span>", labels,
        [{ name: "hài lòng (satisfied)", values: s.map((p) => p.satisfaction_rate) }], { fmt: fmtPct, tick: fmtPct, max: 1 }),
      RC.lines("chart-sentiment", "Chỉ số cảm xúc ẩn danh, −1…1 <span class=\"en\">Anonymous sentiment (camera, k-anonymous)</span>",
        labels, [{ name: "cảm xúc (sentiment)", values: s.map((p) => p.sentiment_score) }],
        { fmt: fmt.score, tick: fmt.score, min: -1, max: 1 }),
    ].join("");
  }

  function renderCounters(r) {
    const c = r.counters;
    const labels = c.map((x) => (r.scope.kind === "unit" ? `${x.office_code}/${x.counter}` : `Quầy ${x.counter}`));
    const target = r.wait_target_s / 60;
    const rows = c.map((x, i) => `<tr data-counter="${esc(labels[i])}"><td>${esc(labels[i])}</td><td>${fmt.num(x.visits)}</td>
      <td>${fmtMin(minutes(x.avg_wait_s))}</td><td>${fmtMin(minutes(x.p90_wait_s))}</td><td>${fmtPct(x.over_target_share)}</td>
      <td>${fmt.num(x.rated)}</td><td>${fmtPct(x.satisfaction_rate)}</td><td>${fmt.score(x.sentiment_score)}</td></tr>`).join("");
    $("counters").innerHTML = [
      RC.bars("chart-counter-wait", "Chờ trung bình theo quầy (phút) <span class=\"en\">Avg wait per counter</span>", labels,
        c.map((x) => minutes(x.avg_wait_s)), { fmt: fmtMin, tick: (v) => fmt.num(v), target,
          classOf: (v) => (v > target ? "low" : ""), legend: `<span style="color:#c0392b">- - -</span> mục tiêu ${fmt.num(target)} phút` }),
      RC.bars("chart-counter-sat", "Hài lòng theo quầy <span class=\"en\">Satisfaction per counter</span>", labels,
        c.map((x) => x.satisfaction_rate), { fmt: fmtPct, tick: fmtPct, classOf: () => "alt" }),
      `<div class="rchart span-all table-wrap"><table class="figures" id="counter-table"><thead><tr><th>Quầy <span class="en">Counter</span></th><th>Lượt</th><th>Chờ TB</th><th>p90</th><th>Quá mục tiêu</th><th>Đánh giá</th><th>Hài lòng</th><th>Cảm xúc</th></tr></thead><tbody>${rows}</tbody></table></div>`,
    ].join("");
  }

  const coef = (v) => (v == null ? "—" : new Intl.NumberFormat("vi-VN", { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(v));

  /** The anonymous expression index beside the button ratings, per counter, and how well they agree. */
  function renderSentiment(r) {
    const a = r.agreement;
    const label = (x) => (r.scope.kind === "unit" ? `${x.office_code}/${x.counter}` : `Quầy ${x.counter}`);
    const rows = r.counters.map((x) => `<tr data-counter="${esc(label(x))}"><td>${esc(label(x))}</td><td>${fmt.num(x.rated)}</td>
      <td>${fmtPct(x.satisfaction_rate)}</td><td class="sentiment">${fmt.score(x.sentiment_score)}</td><td>${fmt.num(x.sentiment_windows)}</td></tr>`).join("");
    const text = a.enough_data
      ? `Tương quan hạng Spearman ρ = <b id="agreement-rho" data-value="${a.spearman}">${coef(a.spearman)}</b>
         (khoảng tin cậy ${Math.round(a.confidence * 100)} %: <span id="agreement-ci">${coef(a.spearman_low)} đến ${coef(a.spearman_high)}</span>),
         n = <b id="agreement-n">${fmt.num(a.pairs)}</b> quầy-tuần; Pearson r = ${coef(a.pearson)}.
         <span class="en">Spearman rank correlation of button satisfaction and the sentiment index over counter-weeks, with its interval and sample size.</span>`
      : `Chưa đủ dữ liệu: <b id="agreement-n">${fmt.num(a.pairs)}</b> quầy-tuần có cả hai chỉ số, cần ít nhất ${fmt.num(a.min_pairs)}.
         <span class="en">Not enough counter-weeks to measure the agreement.</span>`;
    const days = a.counter_weeks.map((d) => ({ ...d, label: `${label(d)}, tuần từ ${d.week_start}` }));
    $("sentiment").innerHTML = [
      `<p class="agreement" id="agreement" data-enough="${a.enough_data}">${text}</p>`,
      RC.scatter("chart-agreement", "Cảm xúc ẩn danh theo hài lòng, mỗi điểm một quầy-tuần <span class=\"en\">Sentiment vs satisfaction per counter-week</span>",
        days, `Quầy-tuần có ít nhất ${fmt.num(a.min_windows)} khoảng đo ẩn danh và ${fmt.num(a.min_ratings)} lượt đánh giá.`),
      `<div class="rchart table-wrap"><table class="figures" id="sentiment-table"><thead><tr><th>Quầy <span class="en">Counter</span></th><th>Đánh giá</th><th>Hài lòng (nút)</th><th>Cảm xúc ẩn danh</th><th>Khoảng đo</th></tr></thead><tbody>${rows}</tbody></table></div>`,
    ].join("");
    $("sentiment-k").textContent = fmt.num(a.min_windows);
  }

  const KINDS = { walk_in: "Vãng lai (walk-in)", priority: "Ưu tiên (priority)", appointment: "Hẹn giờ (appointment)" };

  /** Waits by ticket kind and service field; appointments' punctuality and no-show rate. */
  function renderKinds(r) {
    const rows = r.by_kind.map((k) => `<tr data-kind="${esc(k.kind)}" data-field="${esc(k.service_field || "")}" data-wait="${k.mean_wait_s}">
      <td>${esc(KINDS[k.kind] || k.kind)}${k.service_field ? ` · ${esc(k.service_field)}` : ""}</td><td>${fmt.num(k.issued)}</td>
      <td>${fmt.num(k.served)}</td><td>${fmt.num(k.no_show)}</td><td>${fmtMin(minutes(k.mean_wait_s))}</td>
      <td>${fmtMin(minutes(k.p90_wait_s))}</td><td>${k.mean_punctuality_min == null ? "—" : fmtMin(k.mean_punctuality_min)}</td></tr>`).join("");
    const a = r.appointments;
    $("kinds").innerHTML = `<div class="table-wrap"><table class="figures" id="kind-table"><thead><tr><th>Loại vé · lĩnh vực <span class="en">Kind · field</span></th>
      <th>Vé</th><th>Phục vụ</th><th>Không có mặt</th><th>Chờ TB</th><th>p90</th><th>Đúng hẹn <span class="en">Punctuality</span></th></tr></thead><tbody>${rows}</tbody></table></div>
      <p class="note" id="appointments" data-rate="${a.no_show_rate}">Đặt hẹn: ${fmt.num(a.booked)} lượt; các ngày đã qua ${fmt.num(a.booked_closed_days)} lượt đặt,
      ${fmt.num(a.redeemed_closed_days)} vé hẹn đã lấy; tỷ lệ không đến ${fmtPct(a.no_show_rate)}. <span class="en">Bookings, redeemed appointment tickets and the no-show rate (days over).</span></p>`;
  }

  /** Wide charts are drawn at the width they get (text stays 11 px on a phone and on a desktop). */
  const chartWidth = (el) => Math.round(Math.min(720, Math.max(320, el.clientWidth - 20)));

  function renderOfficers(r) {
    $("min-sample").textContent = fmt.num(r.min_sample);
    $("officers").innerHTML = RC.intervals("chart-officers",
      "Tỷ lệ hài lòng theo cán bộ, xếp hạng <span class=\"en\">Satisfaction per officer, ranked</span>", r.officers,
      chartWidth($("officers")));
  }

  function renderReasons(r) {
    $("reasons").innerHTML = RC.hbars("chart-reasons", "Số lượt theo lý do <span class=\"en\">Count per reason</span>",
      r.reasons.map((x) => ({ code: x.reason || "", label: x.label, value: x.count })), chartWidth($("reasons")));
  }

  function renderForecast(r) {
    const fc = r.forecast;
    $("forecast-section").hidden = !fc;
    if (!fc) return;
    const days = fc.next_week;
    const labels = days.map((d) => `${["", "T2", "T3", "T4", "T5", "T6", "T7", "CN"][d.weekday]} ${d.day.slice(8, 10)}/${d.day.slice(5, 7)}`);
    const peak = days.map((d) => (fc.staffing.service_s ? Math.max(0, ...d.hours.map((h) => h.counters || 0)) : null));
    const acc = fc.accuracy;
    const accLabels = acc.days.map((d) => `${d.day.slice(8, 10)}/${d.day.slice(5, 7)}`);
    const mape = acc.mape_daily == null ? "chưa đo được (not measured yet)" : fmtPct(acc.mape_daily);
    const notes = days.filter((d) => d.holiday || d.tet).map((d) => `${d.day}: ${d.holiday ? `nghỉ lễ (${esc(d.holiday)})` : "dịp Tết"}`);
    $("forecast").innerHTML = [
      RC.bars("chart-forecast", "Lượt khách dự báo 7 ngày tới <span class=\"en\">7-day forecast</span>", labels,
        days.map((d) => d.total), { classOf: () => "alt",
          legend: `Trung bình cùng thứ, cùng giờ của ${fc.weeks} tuần bình thường gần nhất; ngày lễ nghỉ; dịp Tết nhân hệ số đo được ${fc.tet_factor_measured ? fmt.score(fc.tet_factor) : "(chưa có Tết trong lịch sử: 1)"}.${notes.length ? " " + notes.join("; ") + "." : ""}` }),
      RC.bars("chart-staffing", "Số quầy cần vào giờ cao điểm <span class=\"en\">Counters needed at the peak hour</span>", labels, peak,
        { legend: fc.staffing.service_s
          ? `Hàng đợi Erlang C, thời gian phục vụ trung bình đo được ${fmtMin(fc.staffing.service_s / 60)}, để chờ trung bình không quá ${fmt.num(fc.staffing.target_s / 60)} phút và ${fmtPct(fc.staffing.service_level)} người chờ dưới mức đó.`
          : "Chưa đo được thời gian phục vụ (no service time measured)." }),
      RC.lines("chart-accuracy", "Độ chính xác của dự báo trên các tuần đã qua <span class=\"en\">Past accuracy (held-back weeks)</span>",
        accLabels, [{ name: "thực tế (actual)", values: acc.days.map((d) => d.actual) },
          { name: "dự báo (forecast)", values: acc.days.map((d) => d.forecast) }],
        { tick: (v) => fmt.num(v) }).replace("</div>", `<p class="legend" id="forecast-error">Sai số trên ${acc.weeks} tuần giữ lại: MAPE theo ngày ${mape}; sai số tuyệt đối trung bình ${acc.mae_per_hour == null ? "—" : fmt.score(acc.mae_per_hour).replace("+", "")} lượt/giờ (mean absolute error per hour).</p></div>`),
    ].join("");
  }

  /* Each change of scope, period or year starts a request; answers can arrive out of order (a year
     of a unit is slower than a month of an office). Only the latest request may render: the earlier
     ones are aborted, so the page never shows a report other than the one the form asks for. */
  let latest = null;

  async function load() {
    if (latest) latest.abort();
    const ctl = new AbortController();
    latest = ctl;
    const { base, q } = query();
    $("dl-pdf").href = `${base}/pdf?${q}`;
    $("dl-xlsx").href = `${base}/xlsx?${q}`;
    status.textContent = "Đang tải… (loading)";
    root.dataset.loaded = "";
    try {
      const r = await getJSON(`${base}?${q}`, ctl.signal);
      if (ctl !== latest) return;
      $("report-heading").textContent = `${r.scope.name} · ${r.period.label_vi} (${r.period.label_en})`;
      $("trend-by").textContent = BY[r.period.by] || "";
      $("report-source").hidden = r.source !== "hub";
      $("report-source").textContent = r.source === "hub"
        ? `Số liệu từ luồng dữ liệu tổng hợp ẩn danh theo giờ của xã (${r.hub_hours} giờ có số liệu; theo quầy, theo cán bộ và lý do không có trong luồng). Figures from the communes' hourly feed (no per-counter, per-officer or reason figures).`
        : "";
      $("report").hidden = false;  // visible first: the wide charts take the width they get
      renderTotals(r);
      renderTrends(r);
      renderCounters(r);
      renderOfficers(r);
      renderSentiment(r);
      renderKinds(r);
      renderReasons(r);
      renderForecast(r);
      $("report").hidden = false;
      status.textContent = r.totals.visits ? "" : "Không có lượt khách nào trong kỳ này. (No visits in this period.)";
      root.dataset.loaded = `${r.scope.kind}/${r.scope.code}/${r.period.slug}`;
    } catch (e) {
      if (ctl !== latest) return;  // superseded (aborted): the newer request renders
      status.textContent = `Không tải được báo cáo (could not load the report): ${e.message}`;
      root.dataset.loaded = "error";
    }
  }

  if (!$("scope").options.length) return;
  fillIndex();
  $("period").addEventListener("change", () => { fillIndex(); load(); });
  for (const id of ["scope", "year", "index"]) $(id).addEventListener("change", load);
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
})();
