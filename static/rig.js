/* The Rig page: draws the preview's framing overlay (platter centre and rim, as the worker
 * projected them with the calibration or the nominal camera model, and the object mask a
 * scan would cut out, filled see-through) on a canvas over the MJPEG
 * <img>, and says what the frame was taken with. Plain JS, no build step; no inline code
 * (the page's CSP allows only the station's own files). */
(function () {
  "use strict";

  var frame = document.getElementById("rig-frame");
  if (!frame) return;
  var canvas = document.getElementById("rig-overlay");
  var caption = document.getElementById("rig-caption");
  var toggle = document.getElementById("rig-overlay-toggle");
  var meta = null;

  function draw() {
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    if (!meta || !meta.overlay || (toggle && !toggle.checked)) return;
    var o = meta.overlay;
    // The mask a scan would cut out as the object (the worker's hal/masks.py), see-through.
    if (o.mask && o.mask.outlines && o.mask.outlines.length) {
      ctx.fillStyle = "rgba(40, 200, 255, 0.35)";
      ctx.beginPath();
      o.mask.outlines.forEach(function (poly) {
        poly.forEach(function (p, i) {
          if (i === 0) ctx.moveTo(p[0] * w, p[1] * h); else ctx.lineTo(p[0] * w, p[1] * h);
        });
        ctx.closePath();
      });
      ctx.fill();
    }
    if (!o.centre) return;
    ctx.lineWidth = 2;
    ctx.strokeStyle = "rgba(255, 200, 40, 0.9)";
    if (o.rim && o.rim.length) {
      ctx.beginPath();
      o.rim.forEach(function (p, i) {
        if (i === 0) ctx.moveTo(p[0] * w, p[1] * h); else ctx.lineTo(p[0] * w, p[1] * h);
      });
      ctx.closePath();
      ctx.stroke();
    }
    var cx = o.centre[0] * w, cy = o.centre[1] * h;
    ctx.beginPath();
    ctx.moveTo(cx - 14, cy); ctx.lineTo(cx + 14, cy);
    ctx.moveTo(cx, cy - 14); ctx.lineTo(cx, cy + 14);
    ctx.stroke();
  }

  function describe(m) {
    if (!m) return "Waiting for the camera… (a scan, when one runs, shows its last frame)";
    var parts = [];
    var e = m.exposure;
    if (e) {
      parts.push("exposure " + (e.exposure_time_us / 1000).toFixed(1) + " ms, gain " +
                 Number(e.analogue_gain).toFixed(2));
    }
    if (typeof m.angle_deg === "number") parts.push("platter at " + m.angle_deg.toFixed(1) + "°");
    parts.push(m.light_on ? "light on" : "light off");
    if (m.overlay && m.overlay.source) {
      parts.push("overlay from the " + m.overlay.source + " camera model");
    }
    if (m.overlay && m.overlay.mask) {
      parts.push(m.overlay.mask.source === "plate" ? "mask against the background plate"
                 : "mask against the backdrop (no plate yet: a scan takes one)");
    }
    return "Live: " + parts.join(" · ");
  }

  function refresh() {
    if (document.hidden) return;
    fetch(frame.getAttribute("data-meta-url"), {credentials: "same-origin",
                                                headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        var live = body && body.live ? body.meta : null;
        caption.textContent = describe(live);
        // Between two preview jobs (after a control) the overlay stays where it was.
        if (live) meta = live;
        draw();
      })
      .catch(function () { /* the stream itself shows whether the station answers */ });
  }

  if (toggle) toggle.addEventListener("change", draw);
  refresh();
  setInterval(refresh, 2000);
})();
