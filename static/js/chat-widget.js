// Kizuna's chat widget for a customer's own pages:
//   <script src="https://kizuna.example/static/js/chat-widget.js" data-kizuna-chat async></script>
// It adds a launcher button that opens the hosted chat page (/chat) in an iframe, so Kizuna's
// own CSP and cookies apply inside. Optional attributes: data-label (the button's text),
// data-lang ("en" or "ja"; default: the page's language).
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-kizuna-chat]");
  if (!script || window.KizunaChatWidget) {
    return;
  }
  var origin = new URL(script.src, location.href).origin;
  var lang = (script.getAttribute("data-lang") || document.documentElement.lang || navigator.language || "en").slice(0, 2);
  var texts = {
    en: { open: "Chat with us", close: "Close the chat", frame: "Chat with support", unread: "New message" },
    ja: { open: "チャットで問い合わせ", close: "チャットを閉じる", frame: "サポートとのチャット", unread: "新しいメッセージ" },
  }[lang === "ja" ? "ja" : "en"];
  var label = script.getAttribute("data-label") || texts.open;
  var frame = null;
  var open = false;

  function style(element, rules) {
    Object.keys(rules).forEach(function (key) {
      element.style[key] = rules[key];
    });
  }

  var button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("data-kizuna-chat-launcher", "");
  style(button, {
    position: "fixed", right: "20px", bottom: "20px", zIndex: "2147483000", padding: "12px 18px",
    border: "0", borderRadius: "24px", background: "#b4325a", color: "#fff", font: "600 15px system-ui, sans-serif",
    boxShadow: "0 4px 14px rgba(0,0,0,.25)", cursor: "pointer",
  });

  function ensureFrame() {
    if (frame) {
      return frame;
    }
    frame = document.createElement("iframe");
    frame.src = origin + "/chat?embed=1&from=" + encodeURIComponent(location.href.slice(0, 300));
    frame.title = texts.frame;
    frame.setAttribute("data-kizuna-chat-frame", "");
    style(frame, {
      position: "fixed", right: "20px", bottom: "80px", zIndex: "2147483000", width: "min(380px, calc(100vw - 40px))",
      height: "min(560px, calc(100vh - 110px))", border: "1px solid #d9dee7", borderRadius: "12px",
      boxShadow: "0 8px 30px rgba(0,0,0,.25)", background: "#fff", display: "none",
    });
    document.body.appendChild(frame);
    return frame;
  }

  function setOpen(value) {
    open = value;
    ensureFrame().style.display = open ? "block" : "none";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? texts.close : label;
    if (open) {
      frame.focus();
    }
  }

  button.addEventListener("click", function () {
    setOpen(!open);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && open) {
      setOpen(false);
      button.focus();
    }
  });
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || !event.data || typeof event.data !== "object") {
      return;
    }
    if (event.data.kizunaChat === "close") {
      setOpen(false);
      button.focus();
    } else if (event.data.kizunaChat === "message" && !open) {
      button.textContent = label + " • " + texts.unread;
    }
  });

  function mount() {
    document.body.appendChild(button);
  }
  if (document.body) {
    mount();
  } else {
    document.addEventListener("DOMContentLoaded", mount);
  }
  window.KizunaChatWidget = { open: function () { setOpen(true); }, close: function () { setOpen(false); } };
})();
