/* Scan review: the lightbox around the frame partial (templates/scans/partials/_frame.html).
 * htmx loads a frame into #lightbox-body; this opens the <dialog>, follows ←/→ to the
 * previous/next frame, and toggles the mask overlay. Esc closes (native <dialog>), and focus
 * goes back to the thumbnail that opened it. Plain JS, no inline script (CSP self-only). */
(function () {
  "use strict";
  var opener = null;
  var loading = false; // a frame is on its way: a key pressed meanwhile waits for it
  var queued = [];

  function dialog() { return document.getElementById("lightbox"); }

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a[data-lightbox]");
    if (link) opener = link;
    var toggle = e.target.closest && e.target.closest(".mask-toggle");
    if (toggle) {
      var mask = document.querySelector("#lightbox-body .frame-mask");
      if (!mask) return;
      mask.hidden = !mask.hidden;
      toggle.setAttribute("aria-pressed", String(!mask.hidden));
      toggle.textContent = mask.hidden ? "Show mask" : "Hide mask";
    }
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    var box = dialog();
    if (!box || e.detail.target.id !== "lightbox-body") return;
    if (!box.open) box.showModal();
    // Keep focus inside the dialog on the frame, so the arrow keys reach us at once.
    var view = box.querySelector(".frame-view");
    if (view) { view.tabIndex = -1; view.focus(); }
  });

  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.detail.target.id !== "lightbox-body") return;
    loading = false;
    if (queued.length) step(queued.shift());
  });

  document.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.target && e.detail.target.id === "lightbox-body") loading = true;
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    // A failed request swaps nothing: do not wait for it.
    if (e.detail.target && e.detail.target.id === "lightbox-body" && !e.detail.successful) {
      loading = false;
      queued = [];
    }
  });

  function step(wanted) {
    var box = dialog();
    var scope = box && box.open ? box : document;
    var link = scope.querySelector(wanted);
    // Asked of htmx directly: the link may not be wired up by htmx yet (just swapped in).
    if (link) htmx.ajax("GET", link.getAttribute("href"), { target: "#lightbox-body", swap: "innerHTML" });
  }

  document.addEventListener("close", function (e) {
    if (e.target !== dialog()) return;
    document.getElementById("lightbox-body").innerHTML = "";
    queued = [];
    if (opener && document.body.contains(opener)) opener.focus();
  }, true);

  document.addEventListener("keydown", function (e) {
    var box = dialog();
    var inLightbox = box ? box.open : !!document.querySelector(".frame-view");
    if (!inLightbox || e.altKey || e.ctrlKey || e.metaKey) return;
    var wanted = e.key === "ArrowLeft" ? "[data-prev]" : e.key === "ArrowRight" ? "[data-next]" : null;
    if (!wanted) return;
    e.preventDefault();
    if (loading) queued.push(wanted); else step(wanted);
  });
})();
