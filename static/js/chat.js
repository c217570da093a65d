// Live chat pages (the hosted /chat and the agent's console). live.js carries the messages in
// over /live; this file sends them out:
// - a message appears at once as "Sent", is posted with a client reference (a retry after a
//   dropped connection posts the same reference, so the server stores it once) and becomes the
//   server's own rendering ("Delivered") when stored, or when its live copy arrives first;
// - typing is posted at most every 3 s; the other side's indicator clears itself after 6 s;
// - on the agent's page, customer messages shown while the page is visible are reported "seen";
// - inside the widget's iframe, the close button and new messages are told to the host page.
(function () {
  "use strict";
  var TYPING_EVERY_MS = 3000;
  var TYPING_SHOWN_MS = 6000;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (error) {
      return "";
    }
  }

  function post(url, fields) {
    var data = new FormData();
    Object.keys(fields).forEach(function (key) {
      data.append(key, fields[key]);
    });
    var headers = { "X-Kizuna-Chat": "1" };
    var token = csrfToken();
    if (token) {
      headers["x-csrftoken"] = token;
    }
    return fetch(url, { method: "POST", body: data, headers: headers, credentials: "same-origin" });
  }

  function newRef() {
    if (window.crypto && crypto.randomUUID) {
      return crypto.randomUUID();
    }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (element) {
      if (element.hasAttribute("data-local")) {
        return;
      }
      var moment = new Date(element.getAttribute("datetime"));
      if (!isNaN(moment.getTime())) {
        element.textContent = moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        element.setAttribute("data-local", "");
      }
    });
  }

  function tellHost(what) {
    if (window.parent !== window) {
      window.parent.postMessage({ kizunaChat: what }, "*");
    }
  }

  function setUp(section) {
    var base = section.getAttribute("data-chat-base");
    var group = section.getAttribute("data-chat-group");
    var sessionId = section.getAttribute("data-chat-session");
    var log = document.getElementById("chat-log-" + sessionId);
    var typingBox = document.getElementById("chat-typing-" + sessionId);
    var label = function (name) {
      return section.getAttribute("data-label-" + name) || name;
    };
    var lastTyping = 0;
    var seenSent = parseInt(section.getAttribute("data-chat-seen"), 10) || 0;
    var typingTimer = null;

    function scrollDown() {
      log.scrollTop = log.scrollHeight;
    }

    function pendingBubble(ref, text) {
      var item = document.createElement("li");
      item.className = "chat-msg chat-msg-" + group + " chat-msg-mine chat-msg-pending";
      item.setAttribute("data-client-ref", ref);
      item.setAttribute("data-pending", "");
      var meta = document.createElement("p");
      meta.className = "chat-meta";
      meta.textContent = label("you");
      var body = document.createElement("div");
      body.className = "chat-body";
      var paragraph = document.createElement("p");
      paragraph.textContent = text;
      body.appendChild(paragraph);
      var state = document.createElement("p");
      state.className = "chat-state";
      state.textContent = label("sent");
      item.appendChild(meta);
      item.appendChild(body);
      item.appendChild(state);
      log.appendChild(item);
      scrollDown();
      return item;
    }

    function settle(item, html) {
      var template = document.createElement("template");
      template.innerHTML = html.trim();
      var real = template.content.firstElementChild;
      if (!real || !item.parentNode) {
        return;
      }
      if (real.id && document.getElementById(real.id)) {
        item.remove(); // its live copy came first
      } else {
        item.replaceWith(real);
        htmx.process(real);
        localTimes(real);
      }
    }

    function send(item, ref, text, attempt) {
      post(base + "/messages", { body: text, client_ref: ref })
        .then(function (response) {
          return response.text().then(function (body) {
            if (response.ok) {
              settle(item, body);
              return;
            }
            var message = label("failed");
            try {
              var parsed = JSON.parse(body);
              message = (parsed.errors && (parsed.errors.body || Object.values(parsed.errors)[0])) || parsed.detail || message;
            } catch (error) {
              // keep the generic text
            }
            fail(item, message);
          });
        })
        .catch(function () {
          // The connection dropped: keep the message, retry with the same reference.
          var state = item.querySelector(".chat-state");
          if (state) {
            state.textContent = label("retrying");
          }
          var delay = Math.min(15000, 1000 * Math.pow(2, attempt));
          setTimeout(function () {
            send(item, ref, text, attempt + 1);
          }, delay);
        });
    }

    function fail(item, message) {
      item.classList.add("chat-msg-failed");
      var state = item.querySelector(".chat-state");
      if (state) {
        state.textContent = label("failed");
      }
      var error = section.querySelector(".chat-error");
      if (error) {
        error.textContent = message;
        error.hidden = false;
      }
    }

    function reportSeen() {
      if (group !== "agent" || document.visibilityState !== "visible") {
        return;
      }
      var newest = 0;
      log.querySelectorAll(".chat-msg-customer[data-id]").forEach(function (item) {
        newest = Math.max(newest, parseInt(item.getAttribute("data-id"), 10) || 0);
      });
      if (newest > seenSent) {
        seenSent = newest;
        post(base + "/seen", { up_to: String(newest) });
      }
    }

    section.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.hasAttribute("data-chat-form")) {
        return;
      }
      event.preventDefault();
      var field = form.querySelector("textarea");
      var text = field.value.trim();
      if (!text) {
        return;
      }
      var error = form.querySelector(".chat-error");
      if (error) {
        error.hidden = true;
      }
      field.value = "";
      var ref = newRef();
      send(pendingBubble(ref, text), ref, text, 0);
    });

    section.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.key === "Enter" && !event.shiftKey && target.closest && target.closest("[data-chat-form]")) {
        event.preventDefault();
        target.closest("form").requestSubmit();
      }
    });

    section.addEventListener("input", function (event) {
      if (!event.target.closest || !event.target.closest("[data-chat-form]")) {
        return;
      }
      var now = Date.now();
      if (now - lastTyping > TYPING_EVERY_MS) {
        lastTyping = now;
        post(base + "/typing", {}).catch(function () {});
      }
    });

    // Live messages: drop the pending bubble they stand for, keep the view at the newest line.
    new MutationObserver(function (changes) {
      var arrived = false;
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1 || node.hasAttribute("data-pending")) {
            return;
          }
          var ref = node.getAttribute("data-client-ref");
          if (ref) {
            log.querySelectorAll('[data-pending][data-client-ref="' + ref.replace(/"/g, "") + '"]').forEach(function (pending) {
              pending.remove();
            });
          }
          if (node.getAttribute("data-side") && node.getAttribute("data-side") !== group) {
            arrived = true;
          }
          localTimes(node);
        });
      });
      scrollDown();
      if (arrived) {
        reportSeen();
        if (group === "customer") {
          tellHost("message");
        }
      }
    }).observe(log, { childList: true });

    // The other side's typing indicator clears itself when no new ping comes.
    function watchTyping() {
      var box = document.getElementById("chat-typing-" + sessionId);
      if (!box) {
        return;
      }
      clearTimeout(typingTimer);
      if (box.textContent.trim()) {
        typingTimer = setTimeout(function () {
          var current = document.getElementById("chat-typing-" + sessionId);
          if (current) {
            current.textContent = "";
          }
        }, TYPING_SHOWN_MS);
      }
    }
    if (typingBox) {
      new MutationObserver(watchTyping).observe(section, { childList: true, subtree: true, characterData: true });
    }

    document.addEventListener("visibilitychange", reportSeen);
    localTimes(section);
    scrollDown();
    reportSeen();
  }

  function start() {
    document.querySelectorAll("[data-chat-session]").forEach(setUp);
    document.querySelectorAll("[data-chat-close]").forEach(function (button) {
      button.addEventListener("click", function () {
        tellHost("close");
      });
    });
    // Forms rendered into a shared live fragment carry no CSRF token: add this page's.
    document.addEventListener("submit", function (event) {
      var input = event.target.querySelector && event.target.querySelector("[data-chat-csrf]");
      if (input && !input.value) {
        input.value = csrfToken();
      }
    }, true);
    if (document.querySelector('[data-chat-role="agent"]')) {
      setInterval(function () {
        post("/desk/chats/heartbeat", {}).catch(function () {});
      }, 60000);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
