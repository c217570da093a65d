// Header search-as-you-type: keyboard navigation of the suggestions, and analytics beacons.
(function () {
  "use strict";

  function beacon(fields) {
    window.Kizuna.beacon("/search/events", fields);
  }

  function logResults(container) {
    var token = container && container.getAttribute("data-search-log");
    if (token && !container.hasAttribute("data-logged")) {
      container.setAttribute("data-logged", "");
      beacon({ kind: "results", token: token });
    }
  }

  function logClick(link) {
    var holder = link.closest("[data-search-log]");
    if (!holder) return;
    beacon({
      kind: "click",
      token: holder.getAttribute("data-search-log"),
      type: link.getAttribute("data-hit-type"),
      id: link.getAttribute("data-hit-id"),
      position: link.getAttribute("data-hit-position") || "0",
    });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-hit-id]");
    if (link) logClick(link);
  });

  function options() {
    return Array.prototype.slice.call(document.querySelectorAll("#search-suggest [role=option]"));
  }

  function setActive(input, index) {
    var items = options();
    items.forEach(function (item, i) { item.setAttribute("aria-selected", i === index ? "true" : "false"); });
    if (index >= 0 && items[index]) {
      input.setAttribute("aria-activedescendant", items[index].id);
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function activeIndex() {
    return options().findIndex(function (item) { return item.getAttribute("aria-selected") === "true"; });
  }

  function close(input) {
    var box = document.getElementById("search-suggest");
    if (box) box.innerHTML = "";
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (!input || input.id !== "header-q") return;
    var items = options();
    var index = activeIndex();
    if (event.key === "ArrowDown" && items.length) {
      event.preventDefault();
      setActive(input, (index + 1) % items.length);
    } else if (event.key === "ArrowUp" && items.length) {
      event.preventDefault();
      setActive(input, index <= 0 ? items.length - 1 : index - 1);
    } else if (event.key === "Enter" && index >= 0) {
      event.preventDefault();
      var link = items[index].querySelector("a");
      if (link) {
        if (link.hasAttribute("data-hit-id")) logClick(link);
        window.location.assign(link.getAttribute("href"));
      }
    } else if (event.key === "Escape") {
      close(input);
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var input = document.getElementById("header-q");
    if (event.target && event.target.id === "search-suggest" && input) {
      input.setAttribute("aria-expanded", options().length ? "true" : "false");
    }
    var results = document.getElementById("search-results");
    if (results) logResults(results);
  });

  document.addEventListener("DOMContentLoaded", function () {
    logResults(document.getElementById("search-results"));
  });
})();
