// Entrance kiosk touch page: a ticket per service field (walk-in or priority) and appointment codes.
// Local API only (no CDN). One request at a time: a second tap while one is answered does nothing,
// and the result screen replaces the buttons, so a double tap never asks for a second ticket (the
// kiosk's human-pace rule refuses one anyway).
"use strict";
const $ = (id) => document.getElementById(id);
const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // booking codes: no 0/O, 1/I
const IDLE_MS = 20000; // back to the start screen after this long without a touch
let code = "", field = null, busy = false, idle = null, fieldKey = "", qrSeen = null;

function screen(id) {
  for (const s of document.querySelectorAll(".screen")) s.classList.toggle("hidden", s.id !== id);
  clearTimeout(idle);
  if (id !== "home") idle = setTimeout(() => screen("home"), IDLE_MS);
}

function result(ok, caption, label, text) {
  $("result").className = "screen " + (ok ? "ok" : "err");
  $("result-caption").textContent = caption;
  $("result-label").textContent = label || "";
  $("result-text").textContent = text;
  $("done").textContent = ok ? "Xong" : "Thử lại";
  screen("result");
}

function answer(ok, out) {
  const text = out.message || (typeof out.detail === "string" ? out.detail : "Không thực hiện được");
  if (ok && out.label) {
    // "Số của bạn: 1001 – Đất đai. Quầy phục vụ: 3. …": the number is shown big, the rest below
    const head = text.match(/^Số (ưu tiên |hẹn )?của bạn: [^ ,]+(, | – )/);
    let rest = head ? text.slice(head[0].length) : text;
    rest = rest.charAt(0).toUpperCase() + rest.slice(1);
    result(true, out.ticket_kind === "priority" ? "Số ưu tiên của bạn" :
                 out.ticket_kind === "appointment" ? "Số hẹn của bạn" : "Số của bạn", out.label, rest);
  } else {
    result(false, "Chưa lấy được số", "", text);
  }
}

async function ask(url, body) {
  if (busy) return; // the first tap is being answered
  busy = true;
  document.body.classList.add("busy");
  try {
    const res = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: body ? JSON.stringify(body) : null});
    answer(res.ok, await res.json());
  } catch (e) {
    result(false, "Chưa lấy được số", "", "Máy cấp số không phản hồi, vui lòng thử lại hoặc báo cán bộ.");
  } finally {
    busy = false;
    document.body.classList.remove("busy");
    poll();
  }
}

function take(kind) {
  if (field) ask("/api/line/ticket/" + encodeURIComponent(field.code) + "/" + kind);
}

function renderFields(fields) {
  const key = fields.map((f) => f.code + "=" + f.label).join("|");
  if (key !== fieldKey) { // rebuild only when the configured fields change
    fieldKey = key;
    $("fields").innerHTML = "";
    for (const f of fields) {
      const b = document.createElement("button");
      b.className = "field";
      b.dataset.code = f.code;
      const name = document.createElement("span");
      name.textContent = f.label;
      b.append(name, document.createElement("small"));
      b.addEventListener("click", () => {
        field = f;
        $("field-label").textContent = f.label;
        screen("kind");
      });
      $("fields").appendChild(b);
    }
  }
  for (const f of fields) {
    const b = $("fields").querySelector(`[data-code="${CSS.escape(f.code)}"] small`);
    const at = f.counters.length ? " · quầy " + f.counters.join(", ") : "";
    if (b) b.textContent = `Đang chờ: ${f.waiting} người${at}`;
  }
}

for (const ch of ALPHABET) {
  const b = document.createElement("button");
  b.textContent = ch;
  b.addEventListener("click", () => { if (code.length < 6) { code += ch; $("code").textContent = code; } });
  $("keys").appendChild(b);
}
$("erase").addEventListener("click", () => { code = code.slice(0, -1); $("code").textContent = code; });
$("send").addEventListener("click", () => {
  if (!code) return;
  const typed = code;
  code = ""; $("code").textContent = "";
  ask("/api/appointment", {code: typed});
});
$("walk-in").addEventListener("click", () => take("walk_in"));
$("priority").addEventListener("click", () => take("priority"));
$("has-appointment").addEventListener("click", () => screen("code-panel"));
$("done").addEventListener("click", () => screen("home"));
for (const b of document.querySelectorAll(".back")) b.addEventListener("click", () => screen("home"));

async function poll() {
  try {
    const s = await (await fetch("/api/status", {cache: "no-store"})).json();
    $("office").textContent = s.office_name || s.office_code;
    $("policy").textContent = "Thứ tự gọi số: " + s.calling_policy;
    $("groups").textContent = s.priority_groups.join(", ").toLowerCase();
    renderFields(s.line ? s.line.fields : []);
    const qr = s.qr ? s.qr.seq : 0; // a code shown to the camera: its answer, as if it had been typed
    if (qrSeen !== null && qr !== qrSeen && !busy) answer(s.qr.ok, s.qr);
    qrSeen = qr;
    $("net").textContent = s.broker_connected ? "● trực tuyến" : "● mất kết nối (vẫn lấy số được)";
  } catch (e) {
    $("net").textContent = "● máy cấp số không phản hồi";
  }
}
poll();
setInterval(poll, 1000);
