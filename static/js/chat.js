/* The chat page (/b/<slug>/chat/): talks to /ws/chat/<slug>/ (protocol in CONTRACT.md).
   The conversation id and the transcript are kept in sessionStorage, so moving between
   pages of the business's site continues the same conversation. */
(function () {
  "use strict";

  var root = document.getElementById("chat");
  if (!root) return;
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var send = document.getElementById("chat-send");
  var statusLine = document.getElementById("chat-status");
  var typing = document.getElementById("chat-typing");
  var closeButton = document.getElementById("chat-close");

  var storageKey = "smart-scheduler-chat:" + root.getAttribute("data-business");
  var MAX_STORED = 60;
  var socket = null;
  var retryDelay = 1000;
  var stopped = false;
  var outbox = [];

  function load() {
    try {
      return JSON.parse(window.sessionStorage.getItem(storageKey)) || {};
    } catch (e) {
      return {}; // storage blocked (privacy settings): the chat still works, unsaved
    }
  }

  var saved = load();
  saved.messages = Array.isArray(saved.messages) ? saved.messages : [];

  function save() {
    try {
      saved.messages = saved.messages.slice(-MAX_STORED);
      window.sessionStorage.setItem(storageKey, JSON.stringify(saved));
    } catch (e) { /* see load() */ }
  }

  function show(who, text) {
    var item = document.createElement("li");
    item.className = "chat-message from-" + who;
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text; // never HTML: replies are plain text
    item.appendChild(bubble);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function add(who, text) {
    show(who, text);
    if (who !== "notice") {
      saved.messages.push({ who: who, text: text });
      save();
    }
  }

  function setStatus(text) { statusLine.textContent = text; }

  function setTyping(on) {
    typing.hidden = !on;
    if (on) log.scrollTop = log.scrollHeight;
  }

  function setEnabled(on) {
    input.disabled = !on;
    send.disabled = !on;
  }

  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + root.getAttribute("data-websocket");
    if (saved.conversation) url += "?conversation=" + encodeURIComponent(saved.conversation);
    return url;
  }

  function flush() {
    while (outbox.length && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message", text: outbox.shift() }));
      setTyping(true);
    }
  }

  function onFrame(event) {
    var frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    if (frame.type === "welcome") {
      var resumed = saved.conversation === frame.conversation && saved.messages.length > 0;
      if (!resumed) {
        saved = { conversation: frame.conversation, messages: [] };
        log.textContent = "";
        add("assistant", frame.text);
      }
      save();
      retryDelay = 1000;
      setStatus("Online");
      setEnabled(true);
      flush();
    } else if (frame.type === "typing") {
      setTyping(true);
    } else if (frame.type === "reply") {
      setTyping(false);
      add("assistant", frame.text);
    } else if (frame.type === "error") {
      setTyping(false);
      add("notice", frame.text);
      if (frame.code === "unavailable" && !saved.conversation) stopped = true;
    }
  }

  function connect() {
    setStatus("Connecting…");
    socket = new WebSocket(socketUrl());
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", function (event) {
      setEnabled(false);
      setTyping(false);
      // 4403: chat not offered, 4404: no such business. Nothing to retry.
      if (stopped || event.code === 4403 || event.code === 4404) {
        setStatus("Unavailable");
        return;
      }
      setStatus("Reconnecting…");
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    resize();
    add("user", text);
    outbox.push(text);
    flush();
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  function resize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }
  input.addEventListener("input", resize);

  if (window.parent !== window) {
    // Framed by the widget: its close button lives here, in the panel's header.
    closeButton.hidden = false;
    var closePanel = function () {
      window.parent.postMessage({ type: "smart-scheduler:close" }, "*");
    };
    closeButton.addEventListener("click", closePanel);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") closePanel();
    });
  }

  saved.messages.forEach(function (message) { show(message.who, message.text); });
  connect();
})();
