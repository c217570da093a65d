// The desk's live parts around static/js/live.js (which owns the socket and swaps fragments):
//
// - ticket page: a presence heartbeat (who else has the ticket open; the reader's own entry is
//   hidden), the "fields changed since you opened the ticket" notice, and a warning when someone
//   else's public reply arrives while the reply box holds text;
// - desk lists: when the queue changes (`desk.queue`), refetch the list and the view counts,
//   keeping the ticked rows; bulk actions (x ticks the selected row, the action picks its field).
//
// Every page works without this file.
(function () {
  "use strict";
  var HEARTBEAT_MS = 20000;
  var REFRESH_DELAY_MS = 1200;

  function viewerId() {
    return document.body.getAttribute("data-viewer-id") || "";
  }

  function csrfToken() {
    return window.Kizuna.csrfToken();
  }

  // Presence -----------------------------------------------------------------------------------

  function agentTicket() {
    var viewers = document.querySelector(".desk-viewers[id^='desk-viewers-']");
    return viewers ? viewers.id.replace("desk-viewers-", "") : null;
  }

  function heartbeat() {
    var id = agentTicket();
    if (!id || document.visibilityState === "hidden") return;
    fetch("/desk/tickets/" + id + "/presence", {
      method: "POST",
      credentials: "same-origin",
      headers: { "x-csrftoken": csrfToken() },
    }).catch(function () {});
  }

  function leave() {
    var id = agentTicket();
    if (!id) return;
    var data = new FormData();
    data.append("_csrf_token", csrfToken());
    if (navigator.sendBeacon) {
      navigator.sendBeacon("/desk/tickets/" + id + "/presence/leave", data);
    }
  }

  // Fragments arrived: tidy what depends on the reader -------------------------------------------

  function syncViewers() {
    document.querySelectorAll(".desk-viewers").forEach(function (box) {
      var others = 0;
      box.querySelectorAll("[data-user-id]").forEach(function (item) {
        var mine = item.getAttribute("data-user-id") === viewerId();
        item.hidden = mine;
        if (!mine) others += 1;
      });
      box.classList.toggle("is-empty", others === 0);
    });
  }

  function syncStale() {
    var form = document.getElementById("desk-fields-form");
    var version = form && form.querySelector("[name=version]");
    document.querySelectorAll(".desk-live-summary").forEach(function (summary) {
      var stale = summary.querySelector("[data-desk-stale]");
      if (stale && version) {
        stale.hidden = parseInt(summary.getAttribute("data-version"), 10) <= parseInt(version.value, 10);
      }
    });
  }

  function sync() {
    syncViewers();
    syncStale();
    syncBulk();
  }

  var syncQueued = false;
  function queueSync() {
    if (syncQueued) return;
    syncQueued = true;
    setTimeout(function () {
      syncQueued = false;
      sync();
    }, 0);
  }

  // Someone else's public reply while the reader is typing one
  function warnIfTyping(html) {
    var body = document.getElementById("f-body");
    var warning = document.getElementById("desk-reply-warning");
    if (!body || !warning || !body.value.trim()) return;
    var template = document.createElement("template");
    template.innerHTML = html;
    var message = template.content.querySelector(".ticket-message-public");
    if (message && message.getAttribute("data-author-id") !== viewerId()) {
      warning.hidden = false;
    }
  }

  // The queue changed: refetch the list and the counts -------------------------------------------

  var refreshTimer = null;

  function selectedIds() {
    var ids = {};
    document.querySelectorAll("[data-desk-select]:checked").forEach(function (box) {
      ids[box.value.split(":")[0]] = true;
    });
    return ids;
  }

  function refreshQueue() {
    refreshTimer = null;
    if (!window.htmx) return;
    var list = document.getElementById("desk-list");
    if (list) {
      var keep = selectedIds();
      var url = list.getAttribute("data-desk-refresh") || location.pathname + location.search;
      htmx.ajax("GET", url, { target: "#desk-list", swap: "outerHTML" }).then(function () {
        document.querySelectorAll("[data-desk-select]").forEach(function (box) {
          if (keep[box.value.split(":")[0]]) box.checked = true;
        });
        syncBulk();
      });
    }
    var nav = document.getElementById("desk-views");
    if (nav && !nav.contains(document.activeElement)) {
      var current = nav.querySelector("a[aria-current=page]");
      var href = current ? current.getAttribute("href") : "";
      var params = "";
      var view = /[?&]view=([a-z_]+)/.exec(href);
      var saved = /^\/desk\/views\/(\d+)/.exec(href);
      if (view) params = "?view=" + view[1];
      if (saved) params = "?saved=" + saved[1];
      htmx.ajax("GET", "/desk/nav" + params, { target: "#desk-views", swap: "outerHTML" });
    }
  }

  document.addEventListener("kz:live", function (event) {
    var frame = event.detail || {};
    if (frame.event === "desk.queue") {
      if (refreshTimer) clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refreshQueue, REFRESH_DELAY_MS);
    } else if (frame.event === "ticket.message.created") {
      warnIfTyping(frame.html || "");
    }
    queueSync();
  });
  ["htmx:oobAfterSwap", "htmx:afterSwap", "htmx:wsAfterMessage"].forEach(function (name) {
    document.addEventListener(name, queueSync);
  });

  // Bulk actions -------------------------------------------------------------------------------

  function syncBulk() {
    var form = document.getElementById("desk-bulk-form");
    if (!form) return;
    var action = form.querySelector("[data-desk-bulk-action]");
    form.querySelectorAll("[data-desk-bulk-value]").forEach(function (field) {
      field.hidden = action && field.getAttribute("data-desk-bulk-value") !== action.value;
    });
    var count = document.querySelectorAll("[data-desk-select]:checked").length;
    var label = form.querySelector("[data-desk-selected-count]");
    if (label) label.textContent = count ? "✓ " + count : "";
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && (target.hasAttribute("data-desk-bulk-action") || target.hasAttribute("data-desk-select"))) {
      syncBulk();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "x" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var row = document.querySelector("[data-desk-row].is-selected") ||
      (target && target.closest && target.closest("[data-desk-row]"));
    var box = row && row.querySelector("[data-desk-select]");
    if (box) {
      box.checked = !box.checked;
      syncBulk();
      event.preventDefault();
    }
  });

  function start() {
    sync();
    if (agentTicket()) {
      heartbeat();
      setInterval(heartbeat, HEARTBEAT_MS);
      document.addEventListener("visibilitychange", heartbeat);
      window.addEventListener("pagehide", leave);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
