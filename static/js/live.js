// Live updates over /live. htmx's ws extension owns the socket and swaps the HTML out of band;
// this file adds what a page needs around it:
//
// - one socket per page: every element with `data-live-channel="thread:42"` names a channel, and
//   the smallest `data-live-last-event-id` on the page is where the first connection catches up
//   from (render it from `realtime.current_event_id()` read before the page's data);
// - the "live" htmx extension, which unwraps the server's JSON frames, drops events already seen
//   (by id), remembers the last id so a reconnect (the ws extension retries with backoff) catches
//   up, and turns an "append" of an element that is already on the page into a replacement;
// - typing pings: an input or textarea with `data-live-typing="thread:42"` tells the others
//   "someone is replying" while it is being typed in; scripts may call `kzLive.typing(channel)`.
//
// Every stored event also fires a `kz:live` DOM event (detail: {id, channel, event, html}).
(function () {
  "use strict";
  if (!window.htmx) {
    return;
  }
  var SEEN_LIMIT = 1000;
  var TYPING_EVERY_MS = 3000;
  var states = {}; // absolute socket URL -> {lastId, seen: Set, order: []}
  var sockets = []; // open socket wrappers (from htmx:wsOpen), with their element
  var lastTyping = {};

  function absolute(url) {
    if (url.indexOf("/") !== 0) {
      return url;
    }
    var host = location.hostname + (location.port ? ":" + location.port : "");
    return (location.protocol === "https:" ? "wss://" : "ws://") + host + url;
  }

  function startId(elt) {
    var value = elt ? parseInt(elt.getAttribute("data-live-last-event-id"), 10) : NaN;
    return isNaN(value) ? null : value;
  }

  function socketElements() {
    return Array.prototype.slice.call(document.querySelectorAll("[ws-connect]"));
  }

  function stateFor(url, elt) {
    var state = states[url];
    if (!state) {
      if (!elt) {
        elt = socketElements().filter(function (candidate) {
          return absolute(candidate.getAttribute("ws-connect")) === url;
        })[0];
      }
      state = states[url] = { lastId: startId(elt), seen: new Set(), order: [] };
    }
    return state;
  }

  function remember(state, id) {
    state.seen.add(id);
    state.order.push(id);
    if (state.order.length > SEEN_LIMIT) {
      state.seen.delete(state.order.shift());
    }
    if (state.lastId === null || id > state.lastId) {
      state.lastId = id;
    }
  }

  // Reconnects (and the first connection) ask for what was missed since the last event id.
  htmx.createWebSocket = function (url) {
    var state = stateFor(url, null);
    var full = url;
    if (state.lastId !== null) {
      full += (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + state.lastId;
    }
    var socket = new WebSocket(full, []);
    socket.binaryType = htmx.config.wsBinaryType;
    return socket;
  };

  // An "append" (beforeend:#list ...) of an element whose id is already on the page replaces it
  // instead, so replaying an event never shows a post twice.
  function idempotent(html) {
    if (html.indexOf("hx-swap-oob") < 0) {
      return html;
    }
    var template = document.createElement("template");
    template.innerHTML = html;
    var changed = false;
    Array.prototype.slice.call(template.content.children).forEach(function (oob) {
      var spec = oob.getAttribute("hx-swap-oob") || "";
      if (!/^(beforeend|afterbegin|beforebegin|afterend)\b/.test(spec)) {
        return;
      }
      Array.prototype.slice.call(oob.children).forEach(function (child) {
        if (child.id && document.getElementById(child.id)) {
          child.setAttribute("hx-swap-oob", "true");
          template.content.appendChild(child);
          changed = true;
        }
      });
    });
    return changed ? template.innerHTML : html;
  }

  htmx.defineExtension("live", {
    transformResponse: function (text, xhr, elt) {
      if (xhr || !elt || !elt.hasAttribute("ws-connect")) {
        return text; // an ordinary htmx response
      }
      var frame;
      try {
        frame = JSON.parse(text);
      } catch (error) {
        return text;
      }
      var state = stateFor(absolute(elt.getAttribute("ws-connect")), elt);
      if (frame.type === "hello") {
        if (state.lastId === null && typeof frame.id === "number") {
          state.lastId = frame.id;
        }
        return "";
      }
      if (frame.type === "stale") {
        elt.setAttribute("data-live-stale", "");
        elt.dispatchEvent(new CustomEvent("kz:live-stale", { bubbles: true }));
        return "";
      }
      if (frame.type !== "event") {
        return "";
      }
      if (typeof frame.id === "number") {
        if (state.seen.has(frame.id)) {
          return "";
        }
        remember(state, frame.id);
        elt.dispatchEvent(new CustomEvent("kz:live", { bubbles: true, detail: frame }));
      }
      return idempotent(frame.html || "");
    },
  });

  document.addEventListener("htmx:wsOpen", function (event) {
    var elt = event.target;
    sockets = sockets.filter(function (entry) {
      return entry.elt !== elt && document.body.contains(entry.elt);
    });
    sockets.push({ elt: elt, socket: event.detail.socketWrapper });
  });

  function socketFor(channel) {
    for (var i = 0; i < sockets.length; i++) {
      var url = sockets[i].elt.getAttribute("ws-connect") || "";
      var match = /[?&]channels=([^&]*)/.exec(url);
      if (match && decodeURIComponent(match[1]).split(",").indexOf(channel) >= 0) {
        return sockets[i].socket;
      }
    }
    return null;
  }

  function typing(channel) {
    var now = Date.now();
    if (lastTyping[channel] && now - lastTyping[channel] < TYPING_EVERY_MS) {
      return;
    }
    var socket = socketFor(channel);
    if (socket) {
      lastTyping[channel] = now;
      socket.send(JSON.stringify({ type: "typing", channel: channel }));
    }
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target instanceof Element && target.hasAttribute("data-live-typing")) {
      typing(target.getAttribute("data-live-typing"));
    }
  });

  // One socket for every channel the page names.
  function connect() {
    var channels = [];
    var lastId = null;
    document.querySelectorAll("[data-live-channel]").forEach(function (elt) {
      var channel = elt.getAttribute("data-live-channel");
      if (channel && channels.indexOf(channel) < 0) {
        channels.push(channel);
      }
      var id = startId(elt);
      if (id !== null && (lastId === null || id < lastId)) {
        lastId = id;
      }
    });
    if (!channels.length || document.getElementById("live-socket")) {
      return;
    }
    var holder = document.createElement("div");
    holder.id = "live-socket";
    holder.hidden = true;
    holder.setAttribute("hx-ext", "ws,live");
    holder.setAttribute("ws-connect", "/live?channels=" + channels.map(encodeURIComponent).join(","));
    if (lastId !== null) {
      holder.setAttribute("data-live-last-event-id", String(lastId));
    }
    document.body.appendChild(holder);
    htmx.process(holder);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", connect);
  } else {
    connect();
  }

  window.kzLive = { typing: typing };
})();
