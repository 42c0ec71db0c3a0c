/* Office name labels on /map that do not hide each other.

Permanent labels must not cover another label or another office's marker (two demo offices are a few
km apart): each label takes the first free place of right, left, above, below, or slightly above or
below on either side of its marker, measured in the map's current pixels, and never past the map's
edge. The open office and then the worst-coloured offices choose first, so a red office is never the
unnamed one. With no free place (zoomed far out) a label gets the class "crowded": hidden, shown while
its marker is hovered or focused; the office list names every office. Run after markers change and
after each zoom. */
"use strict";

window.MCLabels = (() => {
  const PLACES = [["right", [12, 0]], ["left", [-12, 0]], ["top", [0, -12]], ["bottom", [0, 12]],
                  ["right", [12, -16]], ["right", [12, 16]], ["left", [-12, -16]], ["left", [-12, 16]]];
  const RANK = { bad: 1, warn: 2, ok: 3, none: 4 };
  const overlaps = (a, b, pad = 2) =>
    a.left < b.right + pad && b.left < a.right + pad && a.top < b.bottom + pad && b.top < a.bottom + pad;
  const inside = (r, f) => r.left >= f.left && r.right <= f.right && r.top >= f.top && r.bottom <= f.bottom;

  /** Labels of ``markers`` (Map code -> L.circleMarker with a permanent tooltip), most important first. */
  function candidates(markers, selected, taken) {
    const tips = [];
    for (const [code, m] of markers) {
      const el = m.getElement();
      if (el) taken.push(el.getBoundingClientRect());
      const t = m.getTooltip();
      if (t && t.options.permanent && t.getElement()) {
        t.getElement().dataset.office = code;
        const rank = code === selected ? 0 : RANK[el ? el.dataset.cls : ""] || 5;
        tips.push({ t, rank, lng: m.getLatLng().lng });
      }
    }
    return tips.sort((a, b) => a.rank - b.rank || a.lng - b.lng);  // then west first
  }

  function place(map, mapEl, markers, selected) {
    const frame = mapEl.getBoundingClientRect();
    const bounds = map.getBounds();
    const taken = [];
    for (const { t } of candidates(markers, selected, taken)) {
      const el = t.getElement();
      const onScreen = bounds.contains(t.getLatLng());
      let placed = false;
      for (const [dir, off] of PLACES) {
        t.options.direction = dir;
        t.options.offset = L.point(off);
        t.update();
        const r = el.getBoundingClientRect();
        if ((inside(r, frame) || !onScreen) && !taken.some((o) => overlaps(r, o))) { placed = true; break; }
      }
      if (!placed) {
        t.options.direction = "right";
        t.options.offset = L.point(12, 0);
        t.update();
      }
      el.classList.toggle("crowded", !placed);
      el.dataset.place = placed ? t.options.direction : "hidden";
      if (placed) taken.push(el.getBoundingClientRect());
    }
  }

  return { place };
})();
