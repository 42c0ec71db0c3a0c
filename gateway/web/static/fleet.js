/* /fleet: every kiosk's state, why it is offline, versions and health; commands with results. */
"use strict";

(() => {
  const { getJSON, postJSON, fmt, esc, live, debounce } = MC;
  const tbody = document.querySelector("#devices tbody");
  const summary = document.getElementById("summary");
  const flash = document.getElementById("flash");
  const offlineOnly = document.getElementById("offline-only");
  const filter = document.getElementById("filter");
  const dialog = document.getElementById("confirm-reset");
  const confirmInput = document.getElementById("confirm-input");
  const confirmOk = document.getElementById("confirm-ok");

  const quarantineList = document.getElementById("quarantine-list");
  const quarantineBox = document.getElementById("quarantine");
  const state = { devices: [], quarantine: [], sort: { key: "state", dir: 1 }, results: new Map(), offices: new Map() };
  /** "xã Tả Lèng" for "03405" (from the public /api/v1/offices), else the bare code. */
  const officeName = (code) => (state.offices.get(code) || "").replace(/^Bộ phận Một cửa\s+/i, "");
  const COMMANDS = {
    reload_config: "Nạp lại cấu hình (reload config)",
    selftest: "Tự kiểm tra (self-test)",
    reset_day: "Đặt lại ngày (reset day)",
  };
  const REASONS = {
    connection_lost: "Mất kết nối (Last Will)",
    shutdown: "Tắt máy (shutdown)",
    no_health: "Không nhận tín hiệu (no health)",
  };
  const ALERTS_VI = {
    offline: "ngoại tuyến (offline)", outbox_growing: "hàng chờ gửi tăng (outbox growing)",
    clock_unsynced: "đồng hồ chưa đồng bộ (clock unsynced)", temp_high: "nhiệt độ cao (temperature high)",
  };
  const STATE_VI = { online: "Trực tuyến", offline: "Ngoại tuyến", unknown: "Chưa kết nối" };
  const ts = (iso) => (iso ? Date.parse(iso) / 1000 : null);

  function sortValue(d, key) {
    if (key === "state") {  // what needs the operator first: held events, then offline, never seen, online
      const tier = d.quarantined ? 0 : d.state === "offline" ? 1 : d.state === "unknown" ? 2 : 3;
      return tier * 1e12 + (ts(d.since) || 0);
    }
    if (key === "last_seen") return ts(d.last_seen) || 0;
    const v = d[key];
    return v == null ? -Infinity : v;
  }

  function visible() {
    const q = filter.value.trim().toLowerCase();
    return state.devices
      .filter((d) => !offlineOnly.checked || d.state !== "online")
      .filter((d) => !q || d.device_id.toLowerCase().includes(q) || d.office_code.toLowerCase().includes(q)
        || officeName(d.office_code).toLowerCase().includes(q))
      .sort((a, b) => {
        const { key, dir } = state.sort;
        const va = sortValue(a, key), vb = sortValue(b, key);
        if (va < vb) return -dir;
        if (va > vb) return dir;
        return a.device_id.localeCompare(b.device_id);
      });
  }

  function versions(d) {
    const models = Object.entries(d.model_versions || {}).map(([k, v]) => `${esc(k)} ${esc(v)}`).join("<br>");
    return `${esc(d.sw_version || "—")}${models ? `<br><span class="muted">${models}</span>` : ""}`;
  }

  function selftest(d) {
    const s = d.last_selftest;
    if (!s) return `<span class="muted">—</span>`;
    const failed = (s.components || []).filter((c) => !c.ok).map((c) => esc(c.name));
    return `<span class="${s.passed ? "result ok" : "result failed"}">${s.passed ? "Đạt (passed)" : "Lỗi (failed)"}</span>
      ${failed.length ? `<br><span class="muted">${failed.join(", ")}</span>` : ""}
      <br><span class="muted">${esc(fmt.time(ts(s.at)))}</span>`;
  }

  function resultHtml(id) {
    const r = state.results.get(id);
    if (!r) return "";
    const msg = r.result && r.result.message ? `: ${esc(r.result.message)}` : "";
    const text = {
      sent: "đã gửi, chờ kết quả… (sent)", ok: "thành công (ok)", failed: "thất bại (failed)",
      publish_failed: "không gửi được (publish failed)", error: "lỗi (error)",
    }[r.status] || esc(r.status);
    const cls = r.status === "ok" ? "ok" : r.status === "sent" ? "pending" : "failed";
    return `<div class="result ${cls}" data-status="${esc(r.status)}" role="status">${esc(COMMANDS[r.name] || r.name)}: ${text}${msg}</div>`;
  }

  function office(d) {
    const name = officeName(d.office_code);
    return name ? `${esc(name)} <span class="code">(${esc(d.office_code)})</span>` : `điểm (office) ${esc(d.office_code)}`;
  }

  /** Office names for the codes; the page still works (with codes) if this fails. */
  async function loadOffices() {
    try {
      const offices = await getJSON("/api/v1/offices");
      state.offices = new Map(offices.map((o) => [String(o.code), String(o.name || "")]));
      render();
    } catch (e) {
      console.warn("office names", e);
    }
  }

  /** An element whose text children are text nodes (device-reported strings are never markup). */
  function node(tag, cls, ...children) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  const HELD_LABEL = "Chưa đăng ký — sự kiện bị giữ lại (Unregistered — events held)";
  const heldText = (n) => `${fmt.num(n)} sự kiện bị giữ, không tính vào số liệu (events held, not counted)`;
  const bindCommand = (deviceId, office) =>
    `motcua-gateway device bind --device ${deviceId} --office ${office} --counter N --release-held`;

  /** The quarantine badge in a device's row (first cell: the top of the card on a phone). */
  function markQuarantined() {
    const byId = new Map(state.devices.map((d) => [d.device_id, d]));
    for (const tr of tbody.querySelectorAll("tr[data-device]")) {
      const d = byId.get(tr.dataset.device);
      if (!d || !d.quarantined) continue;
      tr.classList.add("quarantined");
      tr.dataset.quarantined = "true";
      tr.dataset.held = String(d.held_events);
      tr.querySelector("th").append(node("div", "held-badge", node("b", null, HELD_LABEL), node("br"),
        node("span", "held-count", heldText(d.held_events))));
    }
  }

  /** The list of devices with held events (/api/v1/quarantine), and how an admin binds one. */
  function renderQuarantine() {
    const bound = new Set(state.devices.filter((d) => d.registered).map((d) => d.device_id));
    quarantineList.replaceChildren(...state.quarantine.map((q) => {
      const offices = (q.office_codes || []).map((c) => (officeName(c) ? `${officeName(c)} (${c})` : c)).join(", ");
      const types = Object.entries(q.by_type || {}).map(([t, n]) => `${t} ${fmt.num(n)}`).join(", ");
      const li = node("li", "held-device",
        node("b", "held-id", q.device_id), " · ", node("span", "held-count", heldText(q.held_events)),
        node("br"), `Điểm khai báo (office claimed): ${offices || "—"}`,
        node("br"), `Lần đầu (first seen): ${fmt.time(ts(q.first_received))} · `
          + `Lần cuối (last seen): ${fmt.time(ts(q.last_received))}`,
        node("br"), node("span", "muted", `Loại sự kiện (event types): ${types || "—"}`),
        node("br"), bound.has(q.device_id)
          ? node("b", "held-bound", "Đã gán, sự kiện cũ vẫn bị giữ; để tính chúng (bound, earlier events still held; to count them): ")
          : node("span", "muted", "Quản trị gán thiết bị (an admin binds it): "),
        node("code", "bind-cmd", bindCommand(q.device_id, (q.office_codes || [])[0] || "CODE")));
      li.dataset.device = q.device_id;
      li.dataset.held = String(q.held_events);
      return li;
    }));
    quarantineBox.hidden = state.quarantine.length === 0;
  }

  function render() {
    const rows = visible();
    const off = state.devices.filter((d) => d.state === "offline").length;
    const on = state.devices.filter((d) => d.state === "online").length;
    const held = state.devices.filter((d) => d.quarantined).length;
    summary.textContent = `${on} trực tuyến (online) · ${off} ngoại tuyến (offline) · ${state.devices.length} thiết bị (devices)`
      + (held ? ` · ${held} chưa đăng ký, sự kiện bị giữ (unregistered, events held)` : "");
    renderQuarantine();
    document.body.dataset.devices = String(state.devices.length);
    if (!rows.length) {
      tbody.innerHTML = `<tr><td colspan="11">Không có thiết bị nào phù hợp. (No matching devices.)</td></tr>`;
      return;
    }
    tbody.innerHTML = rows.map((d) => {
      const id = esc(d.device_id);
      const temp = d.cpu_temp_c == null ? "—" : `${d.cpu_temp_c.toFixed(1)} °C`;
      const clock = d.clock_synced == null ? "—" : d.clock_synced ? "Đã đồng bộ (synced)" : `<b class="result failed">Chưa đồng bộ (unsynced)</b>`;
      const why = d.state === "offline"
        ? `<b>${esc(REASONS[d.offline_reason] || d.offline_reason || "—")}</b><br><span class="muted">${esc(d.offline_detail || "")}</span>`
        : (d.open_alerts || []).length ? `<span class="muted">Cảnh báo (alerts): ${esc(d.open_alerts.map((a) => ALERTS_VI[a] || a).join(", "))}</span>` : "—";
      const buttons = Object.entries(COMMANDS).map(([name, label]) =>
        `<button type="button" class="btn ${name === "reset_day" ? "danger" : "secondary"}" data-cmd="${name}" data-device="${id}"
          aria-label="${esc(label)}: ${id}">${esc(label.split(" (")[0])}</button>`).join("");
      return `<tr data-device="${id}" data-state="${esc(d.state)}" class="${esc(d.state)}">
        <th scope="row">${id}<br><span class="muted">${office(d)}${d.counter ? ` · quầy (counter) ${esc(d.counter)}` : ""}</span></th>
        <td data-label="Trạng thái (state)"><span class="state ${esc(d.state)}">${esc(STATE_VI[d.state] || d.state)}</span><br><span class="muted">từ (since) ${esc(fmt.time(ts(d.since)))}<br>${esc(fmt.ago(ts(d.since)))}</span></td>
        <td data-label="Lần cuối (last seen)">${esc(fmt.ago(ts(d.last_seen)))}<br><span class="muted">${esc(fmt.time(ts(d.last_seen)))}</span></td>
        <td data-label="Lý do (why offline)">${why}</td>
        <td data-label="Phiên bản (versions)">${versions(d)}</td>
        <td data-label="Nhiệt độ (temp)">${temp}</td>
        <td data-label="Chờ gửi (outbox)">${d.outbox_depth == null ? "—" : fmt.num(d.outbox_depth)}</td>
        <td data-label="Đồng hồ (clock)">${clock}</td>
        <td data-label="Lỗi gần nhất (last error)">${d.last_error ? esc(d.last_error) : "—"}</td>
        <td data-label="Tự kiểm tra (self-test)">${selftest(d)}</td>
        <td data-label="Lệnh (commands)" class="cmd-cell"><div class="cmds">${buttons}</div>${resultHtml(d.device_id)}</td>
      </tr>`;
    }).join("");
    markQuarantined();
  }

  /* Loads overlap (live events, command results); an answer older than the one already shown is
     dropped, so the table never steps back to an earlier state. */
  let started = 0, shown = 0;

  async function load() {
    const mine = ++started;
    try {
      const quarantine = getJSON("/api/v1/quarantine").catch((e) => {  // the table still shows without it
        flash.replaceChildren(node("p", "flash error",
          `Không tải được danh sách thiết bị chưa đăng ký (could not load the quarantine): ${e.message}`));
        return [];
      });
      const answers = await Promise.all([getJSON("/api/v1/fleet"), quarantine]);
      if (mine < shown) return;
      shown = mine;
      [state.devices, state.quarantine] = answers;
      render();
    } catch (e) {
      flash.innerHTML = `<p class="flash error">Không tải được danh sách thiết bị (could not load the fleet): ${esc(e.message)}</p>`;
    }
  }

  async function pollCommand(deviceId, cmdId) {
    for (let i = 0; i < 90; i++) {
      await new Promise((r) => setTimeout(r, i < 10 ? 1000 : 3000));
      let c;
      try { c = await getJSON(`/api/v1/commands/${encodeURIComponent(cmdId)}`); } catch (e) { continue; }
      state.results.set(deviceId, c);
      render();
      if (c.status !== "sent") { load(); return; }
    }
  }

  async function send(deviceId, name, args = {}) {
    state.results.set(deviceId, { name, status: "sent" });
    render();
    let r;
    try {
      r = await postJSON(`/api/v1/devices/${encodeURIComponent(deviceId)}/commands`, { name, args });
    } catch (e) {  // the gateway did not answer at all: say so instead of "sent" forever
      state.results.set(deviceId, { name, status: "error", result: { message: `mất kết nối (network): ${e.message}` } });
      render();
      return;
    }
    if (!r.ok) {
      const detail = r.data && r.data.detail ? (typeof r.data.detail === "string" ? r.data.detail : JSON.stringify(r.data.detail)) : "";
      state.results.set(deviceId, { name, status: "error", result: { message: `HTTP ${r.status} ${detail}` } });
      render();
      return;
    }
    state.results.set(deviceId, r.data);
    render();
    if (r.data.status === "sent") pollCommand(deviceId, r.data.cmd_id);
  }

  let pending = null;
  tbody.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-cmd]");
    if (!b) return;
    const { cmd, device } = b.dataset;
    if (cmd === "reset_day") {
      pending = device;
      document.getElementById("confirm-device").textContent = device;
      confirmInput.value = "";
      confirmOk.disabled = true;
      dialog.showModal();
      confirmInput.focus();
    } else {
      send(device, cmd);
    }
  });
  confirmInput.addEventListener("input", () => { confirmOk.disabled = confirmInput.value.trim() !== pending; });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "ok" && pending && confirmInput.value.trim() === pending) send(pending, "reset_day");
    pending = null;
  });

  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      for (const o of document.querySelectorAll("th[data-sort]")) o.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", state.sort.dir > 0 ? "ascending" : "descending");
      render();
    });
  }
  offlineOnly.addEventListener("change", render);
  filter.addEventListener("input", render);

  const refresh = debounce(load, 300);
  live(document.getElementById("live-state"), (kind) => {
    if (kind === "device" || kind === "reconnected") refresh();
  });
  setInterval(render, 30000);  // keep "… ago" fresh
  load();
  loadOffices();
  window.motcuaFleet = { state, reload: load };
})();
