/* Shared helpers for the MotCua Edge pages (no framework, no external requests). */
"use strict";

const MC = (() => {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');

  /** GET a JSON document; `signal` (an AbortController's) lets a newer request cancel this one. */
  async function getJSON(url, signal) {
    const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", signal });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  async function postJSON(url, body) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (csrfMeta) headers["X-CSRF-Token"] = csrfMeta.content;
    const r = await fetch(url, { method: "POST", headers, credentials: "same-origin", body: JSON.stringify(body) });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { ok: r.ok, status: r.status, data };
  }

  /** First defined value among dotted paths, e.g. pick(o, "today.avg_wait_s", "avg_wait_s"). */
  function pick(obj, ...paths) {
    for (const p of paths) {
      let v = obj;
      for (const k of p.split(".")) { v = v == null ? undefined : v[k]; }
      if (v !== undefined && v !== null) return v;
    }
    return null;
  }

  const nf1 = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 1 });
  const nf0 = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 0 });
  const fmt = {
    num: (v) => (v == null ? "—" : nf0.format(v)),
    minutes: (s) => (s == null ? "—" : `${nf1.format(s / 60)} phút`),
    pct: (x) => (x == null ? "—" : `${nf0.format(x * 100)}%`),
    score: (x) => (x == null ? "—" : (x > 0 ? "+" : "") + nf1.format(x)),
    time: (t) => (t == null ? "—" : new Date(t * 1000).toLocaleString("vi-VN", { hour12: false })),
    ago: (t) => {
      if (t == null) return "—";
      const s = Math.max(0, Date.now() / 1000 - t);
      if (s < 90) return `${Math.round(s)} giây trước`;
      if (s < 5400) return `${Math.round(s / 60)} phút trước`;
      if (s < 172800) return `${nf1.format(s / 3600)} giờ trước`;
      return `${Math.round(s / 86400)} ngày trước`;
    },
  };

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  /** EventSource on /api/v1/stream with a status line; onMessage(kind, data). Reconnects by itself. */
  function live(statusEl, onMessage) {
    let es = null;
    let hellos = 0;
    const text = statusEl ? statusEl.querySelector(".text") : null;
    const set = (cls, msg) => {
      if (!statusEl) return;
      statusEl.classList.remove("on", "off");
      if (cls) statusEl.classList.add(cls);
      text.textContent = msg;
    };
    function connect() {
      es = new EventSource("/api/v1/stream");
      es.addEventListener("hello", () => {
        set("on", "Trực tiếp: tự cập nhật (live)");
        hellos += 1;
        if (hellos > 1) onMessage("reconnected", {});  // updates may have been missed meanwhile
      });
      for (const kind of ["office", "device"]) {
        es.addEventListener(kind, (ev) => {
          let data = {};
          try { data = JSON.parse(ev.data); } catch (e) { return; }
          const t = new Date().toLocaleTimeString("vi-VN", { hour12: false });
          set("on", `Trực tiếp: cập nhật lúc ${t} (live)`);
          onMessage(kind, data);
        });
      }
      es.onerror = () => set("off", "Mất kết nối, đang thử lại… (reconnecting)");
    }
    connect();
    window.addEventListener("beforeunload", () => es && es.close());
    return { close: () => es && es.close() };
  }

  /** Run fn at most once per `ms`, trailing (coalesces bursts of live messages). */
  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => { timer = null; fn(...args); }, ms);
    };
  }

  return { getJSON, postJSON, pick, fmt, esc, live, debounce };
})();
