/* Scanning station: the few behaviours htmx does not do by itself. Plain JS, no build step.
 * - Error answers (4xx/5xx) to htmx requests are shown as the sentence the station sent,
 *   next to the form or panel that asked (its .error-slot), or at the top of the page.
 * - Upload progress: htmx:xhr:progress events drive the upload form's <progress>.
 * - Forms marked data-reset-on-success are cleared after they worked. */
(function () {
  "use strict";

  function slotFor(elt) {
    var form = elt && elt.closest ? elt.closest("form") : null;
    var slot = form ? form.querySelector(".error-slot") : null;
    if (!slot && elt && elt.closest) {
      var scope = elt.closest("[data-error-slot]");
      slot = scope ? scope.querySelector(".error-slot") : null;
    }
    return slot || document.getElementById("flash");
  }

  function message(text, transient) {
    var div = document.createElement("div");
    div.className = "error";
    div.setAttribute("role", "alert");
    if (transient) div.setAttribute("data-transient", "");
    div.textContent = text;
    return div.outerHTML;
  }

  function isPolling(elt) {
    return !!(elt && elt.matches && elt.matches("[hx-trigger^='every']"));
  }

  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (!isPolling(elt)) {
      var slot = slotFor(elt);
      if (slot) slot.innerHTML = "";
    }
    var box = elt.querySelector && elt.querySelector(".upload-progress");
    if (box) {
      box.querySelector("progress").value = 0;
      box.querySelector(".upload-progress-text").textContent = "Sending…";
      box.hidden = false;
    }
  });

  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    var body = xhr.responseText || "";
    // The station's own error partial is safe, escaped HTML; anything else (a proxy's page)
    // is replaced by a sentence of ours.
    var html = /^\s*<div class="error"/.test(body) ? body : message(
      "The station answered with an error (" + xhr.status + "). Try again; if it keeps " +
      "happening, look at the station's log.");
    slotFor(e.detail.elt).innerHTML = html;
  });

  document.addEventListener("htmx:sendError", function (e) {
    slotFor(e.detail.elt).innerHTML = message(
      "The station could not be reached. Check the network connection" +
      (isPolling(e.detail.elt) ? "; this panel keeps trying by itself." : " and try again."),
      true);
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail.elt;
    if (!e.detail.successful) return;
    var slot = slotFor(elt);
    // A connection problem that went away: drop its message.
    if (slot && slot.querySelector("[data-transient]")) slot.innerHTML = "";
    var box = elt.querySelector && elt.querySelector(".upload-progress");
    if (box) box.hidden = true;
    if (elt.matches && elt.matches("form[data-reset-on-success]")) {
      elt.reset();
      var chosen = elt.querySelector("[data-chosen]");
      if (chosen) chosen.textContent = "";
    }
  });

  document.addEventListener("htmx:xhr:progress", function (e) {
    var form = e.target.closest ? e.target.closest("form") : null;
    var box = form ? form.querySelector(".upload-progress") : null;
    if (!box || !e.detail.lengthComputable || !e.detail.total) return;
    var bar = box.querySelector("progress");
    // Upload and download progress both arrive here; the bar only moves forward.
    var pct = Math.max(Number(bar.value), Math.round((e.detail.loaded * 100) / e.detail.total));
    bar.value = pct;
    box.hidden = false;
    box.querySelector(".upload-progress-text").textContent =
      pct < 100 ? "Sending… " + pct + "%" : "Sent. Saving on the station…";
  });

  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input.matches || !input.matches(".dropzone input[type=file]")) return;
    var out = input.closest(".dropzone").querySelector("[data-chosen]");
    var n = input.files.length;
    if (out) out.textContent = n === 0 ? "" : n === 1 ? input.files[0].name : n + " files chosen";
  });
})();

/* Keyboard focus stays on the scan controls. Start, Pause, Resume and Cancel swap the scan
 * panel (and the panel polls itself every second), which would drop focus to the page body:
 * after such a swap the control with the same label gets focus again, or else the panel's
 * first control (Start -> Pause, Pause -> Resume). */
(function () {
  "use strict";
  var wanted = null; // label of the control to focus after the next panel swap; "" = first

  function controls() {
    return Array.prototype.slice.call(
      document.querySelectorAll("#scan-progress .scan-actions button, #scan-progress .scan-actions a"));
  }

  function shown(elt) {
    return elt && elt !== document.body && document.contains(elt) && elt.offsetParent !== null;
  }

  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (elt.matches && elt.matches("form.start-scan, .scan-progress form")) wanted = "";
  });

  document.addEventListener("htmx:beforeSwap", function (e) {
    var active = document.activeElement;
    if (active && active.closest && active.closest(".scan-progress") &&
        e.detail.target.contains(active)) {
      wanted = active.textContent.trim();
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (wanted === null || !document.getElementById("scan-progress")) return;
    var label = wanted;
    wanted = null;
    if (shown(document.activeElement) && !document.activeElement.closest(".start-scan")) return;
    var all = controls();
    var match = all.filter(function (c) { return c.textContent.trim() === label; })[0] || all[0];
    if (match) match.focus({ preventScroll: true });
  });

  // A session picker's search box (templates/sessions/partials/_picker.html) searches as
  // you type; Enter there would send the form it sits in (Make current, Merge, Upload).
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && e.target.matches && e.target.matches("[data-picker-search]")) {
      e.preventDefault();
    }
  });
})();

/* Polling panels (marked data-poll) ask nothing while the tab is hidden. htmx's trigger
 * filters ("every 3s[!document.hidden]") need eval, which the CSP forbids (allowEval: false):
 * htmx would log evalDisallowedError and poll anyway. A panel's next tick after the tab comes
 * back asks again; one that also listens to visibilitychange asks at once. */
(function () {
  "use strict";
  document.addEventListener("htmx:confirm", function (e) {
    var elt = e.detail.elt;
    if (document.hidden && elt && elt.matches && elt.matches("[data-poll]")) e.preventDefault();
  });
})();
