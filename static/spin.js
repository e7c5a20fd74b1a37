/* A drag-to-turn 360° spin of a scan's frames (the station's own, see README "3D model and
   spin"). Markup: an element with data-spin holding img.spin-view, ol.spin-row elements
   (one per ring, lowest first) of li[data-src] (each frame's image) and .spin-status.
   Drag sideways to turn, up and down to change ring; arrow keys do the same; Home goes back
   to the first frame. No inline style or script, no eval: it only swaps the image's src.
   Works on the station's pages (htmx:load) and in the web-embed page (DOMContentLoaded). */
(function () {
  "use strict";

  function setUp(root) {
    if (root.dataset.spinReady) return;
    var view = root.querySelector("img.spin-view");
    var status = root.querySelector(".spin-status");
    var rows = Array.prototype.map.call(root.querySelectorAll("ol.spin-row"), function (ol) {
      return {
        label: ol.dataset.label || "",
        frames: Array.prototype.map.call(ol.querySelectorAll("li[data-src]"), function (li) {
          return { src: li.dataset.src, angle: li.dataset.angle || "" };
        })
      };
    }).filter(function (row) { return row.frames.length > 0; });
    if (!view || rows.length === 0) return;
    root.dataset.spinReady = "1";

    var state = { row: 0, frame: 0 };
    var cache = {};
    function preload(src) {
      if (!cache[src]) { cache[src] = new Image(); cache[src].src = src; }
    }
    rows.forEach(function (row) { row.frames.forEach(function (f) { preload(f.src); }); });

    function show(rowIndex, frameIndex) {
      var rowCount = rows.length;
      state.row = Math.max(0, Math.min(rowCount - 1, rowIndex));
      var frames = rows[state.row].frames;
      // The same angle on another ring: keep the fraction of the turn.
      state.frame = ((frameIndex % frames.length) + frames.length) % frames.length;
      var frame = frames[state.frame];
      if (view.getAttribute("src") !== frame.src) view.setAttribute("src", frame.src);
      root.dataset.row = String(state.row);
      root.dataset.frame = String(state.frame);
      if (status) {
        status.textContent = (rowCount > 1 ? rows[state.row].label + " · " : "") +
          "frame " + (state.frame + 1) + " of " + frames.length +
          (frame.angle ? " · " + frame.angle + "°" : "");
      }
    }

    function changeRow(delta) {
      var before = rows[state.row].frames.length;
      var target = Math.max(0, Math.min(rows.length - 1, state.row + delta));
      var after = rows[target].frames.length;
      show(target, Math.round(state.frame * after / before));
    }

    var drag = null;
    root.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      drag = { x: event.clientX, y: event.clientY, row: state.row, frame: state.frame };
      root.focus({ preventScroll: true });  // the arrow keys then turn it too
      root.setPointerCapture(event.pointerId);
      root.classList.add("is-dragging");
      event.preventDefault();
    });
    root.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var frames = rows[drag.row].frames.length;
      // One full turn per width of the viewer, at least 4 px a frame.
      var perFrame = Math.max(4, view.clientWidth / frames);
      var steps = Math.round((drag.x - event.clientX) / perFrame);
      var rowSteps = Math.round((event.clientY - drag.y) / 60);
      var targetRow = Math.max(0, Math.min(rows.length - 1, drag.row - rowSteps));
      var scaled = Math.round(drag.frame * rows[targetRow].frames.length / frames);
      show(targetRow, scaled + steps);
    });
    function endDrag(event) {
      if (!drag) return;
      drag = null;
      root.classList.remove("is-dragging");
      if (root.hasPointerCapture(event.pointerId)) root.releasePointerCapture(event.pointerId);
    }
    root.addEventListener("pointerup", endDrag);
    root.addEventListener("pointercancel", endDrag);
    root.addEventListener("keydown", function (event) {
      var handled = true;
      if (event.key === "ArrowRight") show(state.row, state.frame + 1);
      else if (event.key === "ArrowLeft") show(state.row, state.frame - 1);
      else if (event.key === "ArrowUp") changeRow(1);
      else if (event.key === "ArrowDown") changeRow(-1);
      else if (event.key === "Home") show(state.row, 0);
      else handled = false;
      if (handled) event.preventDefault();
    });
    show(0, 0);
  }

  function setUpAll(scope) {
    var found = scope.querySelectorAll ? scope.querySelectorAll("[data-spin]") : [];
    if (scope.matches && scope.matches("[data-spin]")) setUp(scope);
    Array.prototype.forEach.call(found, setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { setUpAll(document); });
  } else {
    setUpAll(document);
  }
  document.addEventListener("htmx:load", function (event) { setUpAll(event.detail.elt); });
})();
