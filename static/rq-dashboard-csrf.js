/* Runs in the RQ dashboard's pages (scanner_app/station/rq_dashboard.py adds it).
 * - The dashboard's actions are jQuery POSTs; the station refuses POSTs without the page's
 *   CSRF token, which rq_dashboard.py puts in <meta name="csrf-token">.
 * - The dashboard is a separate app with no way back to the station: a "Back to the
 *   station" bar is added at the top (styled through the DOM: its pages load no station CSS).
 * Deferred: runs after the dashboard's scripts loaded jQuery, before anyone can click. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && window.jQuery) {
    window.jQuery.ajaxSetup({ headers: { "X-CSRFToken": meta.content } });
  }

  var bar = document.createElement("nav");
  bar.setAttribute("aria-label", "Station");
  bar.className = "station-back";
  bar.style.padding = "0.6rem 1rem";
  bar.style.background = "#0f6e5f";
  bar.style.fontSize = "1rem";
  var link = document.createElement("a");
  link.href = "/";
  link.textContent = "← Back to the station";
  link.style.color = "#fff";
  link.style.fontWeight = "600";
  link.style.display = "inline-block";
  link.style.minHeight = "44px";
  link.style.lineHeight = "44px";
  bar.appendChild(link);
  document.body.insertBefore(bar, document.body.firstChild);
})();
