/* Smart Scheduler chat widget, for any website:

     <script src="https://<our host>/widget.js" data-business="<slug>" async></script>

   adds a chat button and a panel framing https://<our host>/b/<slug>/chat/. The chat
   runs inside that frame, on our own origin, so the page embedding it needs nothing
   else. A page with <div id="chat-launcher" data-business="<slug>"> uses that element
   as the button (its content, or a default button put inside it when it is empty).
   Styles are set from script (no stylesheet, no inline <style>), so a strict Content
   Security Policy on the host page does not break the widget. */
(function () {
  "use strict";

  if (window.SmartSchedulerWidget) return;

  function findScript() {
    if (document.currentScript) return document.currentScript;
    var scripts = document.querySelectorAll("script[src]");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(scripts[i].src)) return scripts[i];
    }
    return null;
  }

  var script = findScript();
  if (!script) return;
  var origin = new URL(script.src, window.location.href).origin;
  var launcher = document.getElementById("chat-launcher");
  var slug = script.getAttribute("data-business") ||
    (launcher && launcher.getAttribute("data-business")) || "";
  if (!/^[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*$/.test(slug)) {
    if (window.console) console.warn("Smart Scheduler widget: set data-business to your business's address name.");
    return;
  }

  var BRAND = "#2f5fd0";
  var Z = "2147483000";
  var narrow = window.matchMedia("(max-width: 600px)");
  var isOpen = false;
  var panel, frame, trigger, floating;

  function css(element, styles) {
    for (var key in styles) {
      if (Object.prototype.hasOwnProperty.call(styles, key)) element.style[key] = styles[key];
    }
  }

  function icon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "28");
    svg.setAttribute("height", "28");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 5h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9l-4 3.5V17H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1z");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path);
    return svg;
  }

  function makeButton() {
    var button = document.createElement("button");
    button.type = "button";
    button.id = "smart-scheduler-chat-button";
    button.setAttribute("aria-label", "Chat with us");
    button.appendChild(icon());
    css(button, {
      width: "60px", height: "60px", borderRadius: "50%", border: "0", padding: "0",
      background: BRAND, color: "#fff", cursor: "pointer", display: "inline-flex",
      alignItems: "center", justifyContent: "center",
      boxShadow: "0 4px 16px rgba(16, 24, 40, 0.25)"
    });
    return button;
  }

  function layout() {
    if (!panel) return;
    if (narrow.matches) {
      css(panel, { top: "0", left: "0", right: "0", bottom: "0", width: "100%",
                   height: "100%", maxHeight: "none", borderRadius: "0" });
    } else {
      css(panel, { top: "auto", left: "auto", right: "20px", bottom: "96px", width: "380px",
                   height: "600px", maxHeight: "calc(100vh - 120px)", borderRadius: "14px" });
    }
    if (floating) floating.style.display = isOpen && narrow.matches ? "none" : "inline-flex";
  }

  function build() {
    panel = document.createElement("div");
    panel.id = "smart-scheduler-chat-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Chat");
    css(panel, { position: "fixed", zIndex: Z, overflow: "hidden", display: "none",
                 background: "#fff", boxShadow: "0 12px 40px rgba(16, 24, 40, 0.28)" });
    frame = document.createElement("iframe");
    frame.title = "Chat";
    frame.src = origin + "/b/" + encodeURIComponent(slug) + "/chat/";
    css(frame, { width: "100%", height: "100%", border: "0", display: "block" });
    panel.appendChild(frame);
    document.body.appendChild(panel);
    layout();
  }

  function setOpen(open) {
    if (!trigger) return; // not attached yet (the page is still loading)
    if (open && !panel) build();
    isOpen = open;
    if (panel) panel.style.display = open ? "block" : "none";
    trigger.setAttribute("aria-expanded", open ? "true" : "false");
    layout();
    if (open) frame.focus();
    else if (trigger.focus) trigger.focus();
  }

  function attach() {
    if (launcher && launcher.children.length === 0 && !launcher.textContent.trim()) {
      trigger = makeButton();
      launcher.appendChild(trigger);
    } else if (launcher) {
      trigger = launcher;
      if (!/^(BUTTON|A)$/.test(launcher.tagName)) {
        launcher.setAttribute("role", "button");
        if (!launcher.hasAttribute("tabindex")) launcher.setAttribute("tabindex", "0");
      }
      launcher.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); setOpen(!isOpen); }
      });
    } else {
      trigger = floating = makeButton();
      css(floating, { position: "fixed", right: "20px", bottom: "20px", zIndex: Z });
      document.body.appendChild(floating);
    }
    trigger.setAttribute("aria-expanded", "false");
    trigger.setAttribute("aria-controls", "smart-scheduler-chat-panel");
    trigger.addEventListener("click", function (event) {
      event.preventDefault();
      setOpen(!isOpen);
    });
  }

  window.addEventListener("message", function (event) {
    // Only our own chat frame may close the panel.
    if (event.origin !== origin || !event.data || event.data.type !== "smart-scheduler:close") return;
    setOpen(false);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isOpen) setOpen(false);
  });
  if (narrow.addEventListener) narrow.addEventListener("change", layout);

  window.SmartSchedulerWidget = {
    open: function () { setOpen(true); },
    close: function () { setOpen(false); }
  };

  if (document.body) attach();
  else document.addEventListener("DOMContentLoaded", attach);
})();
