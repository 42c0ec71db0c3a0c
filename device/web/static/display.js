// Counter display: polls /api/status (local, no CDN) and renders large Vietnamese text.
"use strict";
const $ = (id) => document.getElementById(id);
let lastVersion = -1;

// The entrance kiosk of shared lines is the hall's display: the latest call and the counter to go to,
// the earlier calls, and who waits in each service field (it serves no counter itself).
function renderHall(line) {
  const [last, ...earlier] = line.calls;
  document.body.classList.add("hall");
  $("head").textContent = "Bảng gọi số";
  $("serving-caption").textContent = last ? "Mời số" : "Chưa gọi số nào";
  $("serving").textContent = last ? last.label : "––––";
  $("to-counter").textContent = last ? `đến quầy số ${last.counter}` : "";
  $("to-counter").classList.toggle("hidden", !last);
  $("waiting-caption").textContent = "Số người đang chờ";
  $("waiting").textContent = line.fields.reduce((n, f) => n + f.waiting, 0);
  $("next").textContent = line.fields.map((f) => `${f.label}: ${f.waiting}`).join(" · ");
  $("hall").classList.toggle("hidden", !earlier.length);
  $("calls").innerHTML = "";
  for (const c of earlier) {
    const el = document.createElement("span");
    el.textContent = `${c.label} → quầy ${c.counter}`;
    $("calls").appendChild(el);
  }
}

function render(s) {
  $("office").textContent = s.office_name || s.office_code;
  $("office").title = `Mã đơn vị (office code) ${s.office_code}`;
  if (s.line && s.line.role === "entrance") renderHall(s.line);
  else {
    $("counter").textContent = s.counter;
    $("serving").textContent = s.serving || "––––";
    $("waiting").textContent = s.waiting;
    $("next").textContent = s.next_labels.length ? "Tiếp theo: " + s.next_labels.join(", ") : "";
  }
  $("message").textContent = s.message || "";
  const net = $("net");
  net.textContent = s.broker_connected ? "● trực tuyến" : "● mất kết nối (dữ liệu được lưu lại)";
  net.className = s.broker_connected ? "" : "off";
  const rating = $("rating");
  if (s.rating_prompt && !s.reason_pending) {
    rating.classList.remove("hidden");
    $("rating-label").textContent = s.rating_prompt.label;
    $("levels").innerHTML = "";
    for (const l of s.rating_levels) {
      const el = document.createElement("span");
      el.textContent = l.label;
      $("levels").appendChild(el);
    }
  } else rating.classList.add("hidden");
  const reasons = $("reasons");
  if (s.reason_pending && s.reasons.length) {
    reasons.classList.remove("hidden");
    if (s.version !== lastVersion) {
      $("reason-buttons").innerHTML = "";
      for (const r of s.reasons) {
        const b = document.createElement("button");
        b.textContent = r.text;
        b.onclick = () => fetch("/api/rating/reason/" + encodeURIComponent(r.code), {method: "POST"}).then(poll);
        $("reason-buttons").appendChild(b);
      }
    }
  } else reasons.classList.add("hidden");
  const prompt = $("prompt");
  if (s.selftest_prompt) { prompt.textContent = s.selftest_prompt; prompt.classList.remove("hidden"); }
  else prompt.classList.add("hidden");
  lastVersion = s.version;
}

async function poll() {
  try {
    const r = await fetch("/api/status", {cache: "no-store"});
    if (r.ok) render(await r.json());
  } catch (e) { $("net").textContent = "● màn hình mất kết nối với kiosk"; }
}
poll();
setInterval(poll, 500);
