// Community forum: per-viewer controls, @mention autocomplete, live-update glue (live.js owns the socket).
// Shared fragments carry every control; this file shows each viewer only their own.
(function () {
  "use strict";

  function viewer() { return document.body.getAttribute("data-viewer-id") || ""; }

  function reveal(root) {
    var me = viewer();
    var thread = document.getElementById("thread");
    var moderator = !!(thread && thread.getAttribute("data-viewer-moderator"));
    var asker = thread ? thread.getAttribute("data-asker-id") : "";
    (root || document).querySelectorAll(".own-only").forEach(function (el) {
      var owner = el.getAttribute("data-owner-id");
      el.hidden = !(me && (moderator || owner === me));
    });
    (root || document).querySelectorAll(".asker-only").forEach(function (el) {
      el.hidden = !(me && (moderator || asker === me));
    });
  }

  // A reply appended by our own response and again by the live update: keep one.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    if (!fragment || !fragment.querySelectorAll) { return; }
    fragment.querySelectorAll("article.forum-post[id]").forEach(function (post) {
      var existing = document.getElementById(post.id);
      if (existing && event.detail.target && event.detail.target.contains(existing) && !event.detail.target.isSameNode(existing)) {
        post.remove();
      }
    });
  });

  // Form answers with field errors (409 edit conflict, 413 too long, 422 invalid) replace the form.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if ((status === 409 || status === 413 || status === 422) && event.detail.target.closest(".forum")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The viewer's own reactions: listed once on #thread ("12:like 13:heart"), marked on the
  // shared buttons, and kept up to date when the viewer toggles one.
  function myReactions() {
    var thread = document.getElementById("thread");
    var list = thread ? (thread.getAttribute("data-my-reactions") || "").split(" ") : [];
    return list.filter(Boolean);
  }

  function markReactions(root) {
    myReactions().forEach(function (entry) {
      var parts = entry.split(":");
      var form = document.getElementById("reactions-" + parts[0]);
      if (form && (root === document || root.contains(form) || form.contains(root))) {
        var button = form.querySelector('button[value="' + parts[1] + '"]');
        if (button) { button.setAttribute("aria-pressed", "true"); }
      }
    });
  }

  function rememberReactions(form) {
    var thread = document.getElementById("thread");
    if (!thread || !form.id || form.id.indexOf("reactions-") !== 0) { return; }
    var postId = form.id.slice("reactions-".length);
    var kept = myReactions().filter(function (entry) { return entry.split(":")[0] !== postId; });
    form.querySelectorAll('button[aria-pressed="true"]').forEach(function (button) {
      kept.push(postId + ":" + button.value);
    });
    thread.setAttribute("data-my-reactions", kept.join(" "));
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var form = event.detail.elt;
    if (form && form.classList && form.classList.contains("forum-reactions")) { rememberReactions(form); }
  });
  document.addEventListener("htmx:load", function (event) { reveal(event.target); markReactions(event.target); });
  document.addEventListener("DOMContentLoaded", function () { reveal(document); markReactions(document); });

  // @mention autocomplete -------------------------------------------------------------------
  var MENTION = /(^|[^\w@])@([\w.\-]{1,30})$/;
  var timer = null;

  function listFor(textarea) {
    var list = textarea.parentElement.querySelector(".mention-list");
    return list;
  }

  function lookup(textarea) {
    var before = textarea.value.slice(0, textarea.selectionStart);
    var match = MENTION.exec(before);
    var list = listFor(textarea);
    if (!list) { return; }
    if (!match || !window.htmx) { list.innerHTML = ""; return; }
    var thread = textarea.getAttribute("data-mention-thread") || "";
    var url = "/community/mentions?q=" + encodeURIComponent(match[2]) + (thread ? "&thread=" + thread : "");
    window.htmx.ajax("GET", url, { target: list, swap: "innerHTML" });
  }

  document.addEventListener("input", function (event) {
    var el = event.target;
    if (!(el instanceof HTMLTextAreaElement) || !el.classList.contains("forum-editor")) { return; }
    clearTimeout(timer);
    timer = setTimeout(function () { lookup(el); }, 200);
  });

  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest(".mention-option");
    if (!option) { return; }
    var list = option.closest(".mention-list");
    var textarea = list && list.parentElement.querySelector("textarea");
    if (!textarea) { return; }
    var caret = textarea.selectionStart;
    var before = textarea.value.slice(0, caret).replace(/@[\w.\-]{0,30}$/, "@" + option.getAttribute("data-handle") + " ");
    textarea.value = before + textarea.value.slice(caret);
    textarea.focus();
    textarea.setSelectionRange(before.length, before.length);
    list.innerHTML = "";
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && event.target instanceof HTMLTextAreaElement) {
      var list = listFor(event.target);
      if (list) { list.innerHTML = ""; }
    }
  });
})();
