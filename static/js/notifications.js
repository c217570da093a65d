// The header bell's dropdown closes on a click elsewhere or on Escape (it is a <details>, so it
// opens and shows its "Open your notifications" link without this file).
(function () {
  "use strict";
  function closeBells(except) {
    document.querySelectorAll("details.bell[open]").forEach(function (bell) {
      if (bell !== except) {
        bell.removeAttribute("open");
      }
    });
  }
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target.closest("details.bell") : null;
    closeBells(target);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      closeBells(null);
    }
  });
})();
