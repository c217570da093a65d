// The desk's keyboard shortcuts, the reply/note editor's mode, and the web form's deflection
// beacons. Every page works without this file.
(function () {
  "use strict";

  function beacon(fields) {
    window.Kizuna.beacon("/support/deflection", fields);
  }

  // Web form: suggestions shown, clicked, or the form left without sending.
  var submitted = false;
  document.addEventListener("submit", function (event) {
    if (event.target && event.target.id === "support-form") submitted = true;
  });
  document.addEventListener("htmx:afterSwap", function () {
    var box = document.getElementById("support-suggestions");
    var token = box && box.getAttribute("data-deflection-token");
    if (token && !box.hasAttribute("data-logged")) {
      box.setAttribute("data-logged", "");
      beacon({ kind: "shown", token: token });
    }
  });
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-deflection-doc]");
    if (!link) return;
    var box = link.closest("[data-deflection-token]");
    if (box) beacon({ kind: "click", token: box.getAttribute("data-deflection-token"), doc: link.getAttribute("data-deflection-doc") });
  });
  window.addEventListener("pagehide", function () {
    var form = document.getElementById("support-form");
    if (!form || submitted) return;
    var visit = form.getAttribute("data-deflection-visit");
    var typed = (form.querySelector("[name=subject]") || {}).value || (form.querySelector("[name=body]") || {}).value;
    if (visit && typed) beacon({ kind: "left", token: visit });
  });

  // Editor: an internal note looks different from a public reply.
  function syncMode() {
    var editor = document.getElementById("desk-editor");
    var note = document.getElementById("mode-note");
    if (editor && note) editor.classList.toggle("desk-editor-note", note.checked);
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.name === "internal") syncMode();
  });
  document.addEventListener("DOMContentLoaded", syncMode);

  // Keyboard shortcuts.
  var selected = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-desk-row]")); }
  function select(index) {
    var all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("is-selected", i === selected); });
    all[selected].scrollIntoView({ block: "nearest" });
    var link = all[selected].querySelector("[data-desk-link]");
    if (link) link.focus();
  }
  function mode(id) {
    var radio = document.getElementById(id);
    var body = document.getElementById("f-body");
    if (radio && body) {
      radio.checked = true;
      syncMode();
      body.focus();
      return true;
    }
    return false;
  }
  function focus(id) {
    var el = document.getElementById(id);
    if (el) { el.focus(); return true; }
    return false;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    var handled = true;
    switch (event.key) {
      case "j": select(selected + 1); break;
      case "k": select(selected - 1); break;
      case "r": handled = mode("mode-reply"); break;
      case "n": handled = mode("mode-note"); break;
      case "a": handled = focus("f-assignee"); break;
      case "/": handled = focus("desk-q"); break;
      case "?":
        var help = document.getElementById("desk-shortcuts");
        if (help && help.showModal) help.showModal(); else handled = false;
        break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });
})();
