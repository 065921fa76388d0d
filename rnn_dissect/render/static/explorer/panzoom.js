// Pan (drag) and zoom (wheel, or zoomBy) of an SVG's viewport <g>; a press that does not
// move is a click, reported with the element it started on (pointer capture hides it later).
export function createPanZoom(svg, viewport, onClick) {
  const view = { x: 0, y: 0, k: 1 };
  let drag = null;
  function apply() {
    viewport.setAttribute("transform", `translate(${view.x.toFixed(1)},${view.y.toFixed(1)}) scale(${view.k.toFixed(4)})`);
    svg.dataset.zoom = view.k.toFixed(3);
  }
  function zoomAt(px, py, factor) {
    const k = Math.min(3, Math.max(0.08, view.k * factor));
    view.x = px - ((px - view.x) * k) / view.k;
    view.y = py - ((py - view.y) * k) / view.k;
    view.k = k;
    apply();
  }
  svg.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false, target: e.target };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
    if (drag.moved) {
      view.x = drag.vx + dx;
      view.y = drag.vy + dy;
      apply();
      svg.classList.add("dragging");
    }
  });
  svg.addEventListener("pointerup", () => {
    const d = drag;
    drag = null;
    svg.classList.remove("dragging");
    if (d && !d.moved) onClick(d.target);
  });
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * 0.0015));
  }, { passive: false });
  return {
    view,
    apply,
    zoomAt,
    zoomBy(f) {
      const r = svg.getBoundingClientRect();
      zoomAt(r.width / 2, r.height / 2, f);
    },
    set(x, y, k) {
      Object.assign(view, { x, y, k });
      apply();
    },
  };
}
