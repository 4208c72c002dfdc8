// A crop box over an image, as a Streamlit component (components v1 protocol, no libraries, no network).
//
// The box is held in whole image pixels, so what is drawn is exactly what is cropped. Every handle and the
// box itself answer the first touch; a press on the image outside the box draws a new one. The box is
// redrawn from Python's arguments only when their `revision` changes (the box was typed or reset there),
// never because Python echoes back a box this frame sent, so a drag is never undone by the rerun it causes.
"use strict";

(function () {
  const PAD = 8; // #stage's padding in CSS pixels, which keeps the handles whole at the image's edge
  const stage = document.getElementById("stage");
  const frame = document.getElementById("frame");
  const img = document.getElementById("image");
  const shade = document.getElementById("shade");
  const boxEl = document.getElementById("box");

  let size = { w: 1, h: 1 }; // the image's own size, in image pixels
  let box = null; // {x, y, w, h} in whole image pixels
  let revision = null; // the revision of the arguments the box was last set from
  let drag = null; // the drag in progress
  let lastHeight = -1;
  let keyTimer = null;

  function post(type, data) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
  }

  function scale() {
    const width = img.getBoundingClientRect().width;
    return width > 0 ? width / size.w : 0;
  }

  function minSide() {
    // About 10 screen pixels, so a box never shrinks under its own handles; at least one image pixel.
    const s = scale();
    return Math.max(1, Math.min(size.w, size.h, Math.ceil(10 / (s || 1))));
  }

  function clamp(v, lo, hi) {
    return Math.min(Math.max(v, lo), hi);
  }

  function layout() {
    const s = scale();
    if (!box || s === 0) return;
    const left = box.x * s, top = box.y * s, width = box.w * s, height = box.h * s;
    Object.assign(shade.style, { left: left + "px", top: top + "px", width: width + "px", height: height + "px" });
    Object.assign(boxEl.style, {
      left: PAD + left + "px", top: PAD + top + "px", width: width + "px", height: height + "px",
    });
    boxEl.dataset.box = [box.x, box.y, box.w, box.h].join(",");
    const height_ = Math.ceil(stage.getBoundingClientRect().height);
    if (height_ !== lastHeight) {
      lastHeight = height_;
      post("streamlit:setFrameHeight", { height: height_ });
    }
  }

  function send() {
    post("streamlit:setComponentValue", {
      value: { box: [box.x, box.y, box.w, box.h], revision: revision },
      dataType: "json",
    });
  }

  function point(event) {
    // The pointer in image pixels (fractional), measured from the image's top-left corner.
    const r = img.getBoundingClientRect();
    const s = scale();
    return { x: (event.clientX - r.left) / s, y: (event.clientY - r.top) / s };
  }

  function resized(start, edge, dx, dy) {
    const m = minSide();
    let x0 = start.x, y0 = start.y, x1 = start.x + start.w, y1 = start.y + start.h;
    if (edge.includes("w")) x0 = clamp(Math.round(x0 + dx), 0, x1 - m);
    if (edge.includes("e")) x1 = clamp(Math.round(x1 + dx), x0 + m, size.w);
    if (edge.includes("n")) y0 = clamp(Math.round(y0 + dy), 0, y1 - m);
    if (edge.includes("s")) y1 = clamp(Math.round(y1 + dy), y0 + m, size.h);
    return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
  }

  function moved(start, dx, dy) {
    const x = clamp(Math.round(start.x + dx), 0, size.w - start.w);
    const y = clamp(Math.round(start.y + dy), 0, size.h - start.h);
    return { x: x, y: y, w: start.w, h: start.h };
  }

  function span(anchor, p, limit, m) {
    // The interval from the press to the pointer on one axis, at least m long, inside [0, limit].
    let lo = Math.min(anchor, p), hi = Math.max(anchor, p);
    if (hi - lo < m) {
      if (p < anchor) lo = hi - m;
      else hi = lo + m;
    }
    if (lo < 0) [lo, hi] = [0, m];
    if (hi > limit) [lo, hi] = [limit - m, limit];
    return [lo, hi];
  }

  function drawn(anchor, p) {
    // A new box from the press to the pointer, at least minSide() a side, inside the image.
    const m = minSide();
    const round = (v, limit) => clamp(Math.round(v), 0, limit);
    const [x0, x1] = span(round(anchor.x, size.w), round(p.x, size.w), size.w, m);
    const [y0, y1] = span(round(anchor.y, size.h), round(p.y, size.h), size.h, m);
    return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
  }

  function same(a, b) {
    return a.x === b.x && a.y === b.y && a.w === b.w && a.h === b.h;
  }

  stage.addEventListener("pointerdown", (event) => {
    if (!box || event.button !== 0 || scale() === 0) return;
    const handle = event.target.closest(".handle");
    const kind = handle ? handle.dataset.edge : event.target.closest("#box") ? "move" : "new";
    if (kind === "new" && !event.target.closest("#frame")) return; // the padding around the image
    drag = { kind: kind, start: Object.assign({}, box), p0: point(event), x0: event.clientX, y0: event.clientY };
    stage.setPointerCapture(event.pointerId);
    boxEl.focus({ preventScroll: true });
    event.preventDefault();
  });

  stage.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const p = point(event);
    const dx = p.x - drag.p0.x, dy = p.y - drag.p0.y;
    if (drag.kind === "move") box = moved(drag.start, dx, dy);
    else if (drag.kind === "new") {
      if (Math.hypot(event.clientX - drag.x0, event.clientY - drag.y0) < 4) return; // a click, not a drag
      box = drawn(drag.p0, p);
    } else box = resized(drag.start, drag.kind, dx, dy);
    layout();
  });

  function finish(event) {
    if (!drag) return;
    const start = drag.start;
    drag = null;
    if (stage.hasPointerCapture(event.pointerId)) stage.releasePointerCapture(event.pointerId);
    if (!same(start, box)) send();
  }
  stage.addEventListener("pointerup", finish);
  stage.addEventListener("pointercancel", finish);

  boxEl.addEventListener("keydown", (event) => {
    const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
    if (!steps || !box) return;
    const [dx, dy] = steps.map((v) => v * (event.altKey ? 10 : 1));
    box = event.shiftKey ? resized(box, (dx ? "e" : "") + (dy ? "s" : ""), dx, dy) : moved(box, dx, dy);
    layout();
    clearTimeout(keyTimer);
    keyTimer = setTimeout(send, 400); // one rerun after the keys stop, not one per key
    event.preventDefault();
  });

  function render(args, disabled) {
    stage.style.setProperty("--colour", args.colour);
    stage.className = (["erase", "object"].includes(args.mode) ? args.mode : "crop") + (disabled ? " disabled" : "");
    size = { w: args.width, h: args.height };
    img.width = args.display_width;
    if (img.getAttribute("src") !== args.image) img.setAttribute("src", args.image);
    if (revision === null || args.revision !== revision) {
      const [x, y, w, h] = args.box;
      box = { x: x, y: y, w: w, h: h };
      revision = args.revision;
      drag = null;
    }
    layout();
  }

  img.addEventListener("load", layout);
  new ResizeObserver(layout).observe(document.body);
  window.addEventListener("message", (event) => {
    if (event.data && event.data.type === "streamlit:render") render(event.data.args, event.data.disabled);
  });
  post("streamlit:componentReady", { apiVersion: 1 });
})();
