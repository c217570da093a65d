// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The CSRF token the page carries for htmx (body hx-headers), for scripts' own requests.
  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (e) {
      return "";
    }
  }

  // A fire-and-forget form POST that survives leaving the page (analytics, deflection).
  function beacon(url, fields) {
    var data = new FormData();
    data.append("_csrf_token", csrfToken());
    Object.keys(fields).forEach(function (key) { data.append(key, fields[key]); });
    if (navigator.sendBeacon) {
      navigator.sendBeacon(url, data);
    } else {
      fetch(url, { method: "POST", body: data, keepalive: true, credentials: "same-origin" });
    }
  }

  window.Kizuna = { csrfToken: csrfToken, beacon: beacon };
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.requestSubmit();
    }
  });
})();
