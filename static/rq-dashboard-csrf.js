/* The RQ dashboard's actions are jQuery POSTs; the station refuses POSTs without the page's
 * CSRF token, which scanner_app/station/rq_dashboard.py puts in <meta name="csrf-token">.
 * Deferred: runs after the dashboard's scripts loaded jQuery, before anyone can click. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && window.jQuery) {
    window.jQuery.ajaxSetup({ headers: { "X-CSRFToken": meta.content } });
  }
})();
