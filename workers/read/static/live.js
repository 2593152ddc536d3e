// Live updates without a reload: fetch this same page again every second and swap in
// its #live part, which the server rendered (and escaped). Stops once the page says
// it is final (an ended execution). A 401 (the projector restarted with another token)
// reloads the page, which then asks for the token.
(function () {
  "use strict";
  function refresh() {
    var live = document.getElementById("live");
    if (!live || live.dataset.final === "true") { return; }
    fetch(window.location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); }
        return response.ok ? response.text() : null;
      })
      .then(function (text) {
        if (text === null) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
        if (fresh) { live.replaceWith(fresh); }
      })
      .catch(function () { /* the projector may restart: try again next tick */ })
      .finally(function () { window.setTimeout(refresh, 1000); });
  }
  window.setTimeout(refresh, 1000);
})();
