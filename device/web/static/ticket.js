// Touch ticket page: walk-in / priority tickets and appointment codes (local API only, no CDN).
"use strict";
const $ = (id) => document.getElementById(id);
const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // booking codes: no 0/O, 1/I
let code = "";

function show(text, ok) {
  const r = $("result");
  r.textContent = text;
  r.className = "panel " + (ok ? "ok" : "err");
  setTimeout(() => r.classList.add("hidden"), 8000);
}

async function post(url, body) {
  const res = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                body: body ? JSON.stringify(body) : null});
  const out = await res.json();
  show(out.message || (out.label ? "Số của bạn: " + out.label : "Không thực hiện được"), res.ok);
  return out;
}

function renderCode() { $("code").textContent = code; }

for (const ch of ALPHABET) {
  const b = document.createElement("button");
  b.textContent = ch;
  b.addEventListener("click", () => { if (code.length < 6) { code += ch; renderCode(); } });
  $("keys").appendChild(b);
}
$("back").addEventListener("click", () => { code = code.slice(0, -1); renderCode(); });
$("send").addEventListener("click", async () => {
  await post("/api/appointment", {code});
  code = ""; renderCode(); $("code-panel").classList.add("hidden");
});
$("walk-in").addEventListener("click", () => post("/api/touch/ticket/walk_in"));
$("priority").addEventListener("click", () => post("/api/touch/ticket/priority"));
$("has-appointment").addEventListener("click", () => $("code-panel").classList.toggle("hidden"));

async function poll() {
  try {
    const s = await (await fetch("/api/status")).json();
    $("office").textContent = s.office_code;
    $("policy").textContent = s.calling_policy;
    $("groups").textContent = "(" + s.priority_groups.join(", ") + ")";
    $("net").textContent = s.broker_connected ? "● trực tuyến" : "● mất kết nối (vẫn lấy số được)";
  } catch (e) {
    $("net").textContent = "● kiosk không phản hồi";
  }
}
poll();
setInterval(poll, 2000);
