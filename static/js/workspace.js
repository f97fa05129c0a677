// The chat page's workspace behaviour beside chat.js: message times in the browser's own time
// zone, the keyboard shortcut help (? or Ctrl+/), the tab's title when a model-made title arrives,
// focus kept on a reply's feedback when its controls are swapped, and the header's Settings loaded
// when first opened. Delegated from document; no inline script.
(function () {
  "use strict";

  // --- Message times --------------------------------------------------------------------
  var sameDay = function (a, b) { return a.toDateString() === b.toDateString(); };

  function localiseTimes(root) {
    if (!root.querySelectorAll) return;
    var times = Array.from(root.querySelectorAll("time[data-local-time]"));
    if (root.matches && root.matches("time[data-local-time]")) times.push(root);
    var now = new Date();
    times.forEach(function (time) {
      var moment = new Date(time.getAttribute("datetime"));
      if (isNaN(moment.getTime())) return;
      var clock = moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      time.textContent = sameDay(moment, now) ? clock : moment.toLocaleDateString([], { day: "numeric", month: "short" }) + ", " + clock;
      time.title = moment.toLocaleString([], { dateStyle: "full", timeStyle: "short" });
    });
  }

  // htmx:load, not htmx.onLoad: this file may run before htmx itself (both are deferred).
  document.addEventListener("htmx:load", function (event) { localiseTimes(event.target); });
  // A finished reply is swapped in by chat.js, which fires this instead of htmx:load.
  document.addEventListener("chatsite:reply-done", function (event) { localiseTimes(event.target); });

  // --- Shortcut help ----------------------------------------------------------------------
  var returnFocus = null;

  function dialog() {
    return document.getElementById("shortcuts");
  }

  function openHelp() {
    var help = dialog();
    if (!help || help.open) return;
    returnFocus = document.activeElement;
    help.showModal();
    help.querySelector("[data-shortcuts-close]").focus();
  }

  function closeHelp() {
    var help = dialog();
    if (help && help.open) help.close(); // the close event gives the focus back
  }

  function focusables(root) {
    return Array.from(root.querySelectorAll("a[href], button:not([disabled]), input, select, textarea, [tabindex]:not([tabindex='-1'])"));
  }

  document.addEventListener("close", function (event) {
    if (event.target !== dialog()) return;
    if (returnFocus && returnFocus.isConnected && returnFocus !== document.body) returnFocus.focus();
    returnFocus = null;
  }, true);

  // In the capture phase, before chat.js: while the help is open, Esc closes it and nothing else
  // (no reply is stopped), and Tab goes round its own controls only.
  document.addEventListener("keydown", function (event) {
    var help = dialog();
    if (!help || !help.open) return;
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopImmediatePropagation();
      closeHelp();
    } else if (event.key === "Tab") {
      var items = focusables(help);
      if (!items.length) return;
      var index = items.indexOf(document.activeElement);
      var next = event.shiftKey ? index - 1 : index + 1;
      if (index === -1 || next < 0 || next >= items.length) {
        event.preventDefault();
        items[event.shiftKey ? items.length - 1 : 0].focus();
      }
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey) return;
    var typing = event.target instanceof HTMLElement && event.target.closest("input, textarea, select, [contenteditable]");
    var question = event.key === "?" && !typing && !event.ctrlKey && !event.metaKey;
    var ctrlSlash = event.key === "/" && (event.ctrlKey || event.metaKey) && !event.shiftKey;
    if (question || ctrlSlash) {
      event.preventDefault();
      openHelp();
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : event.target.parentElement;
    if (!target) return;
    if (target.closest("[data-shortcuts-open]")) {
      openHelp();
    } else if (target.closest("[data-shortcuts-close]") || target === dialog()) {
      closeHelp(); // the close button, or a click on the backdrop (the dialog's body covers the rest)
    }
  });

  // --- A header panel whose content loads when it is first opened (the Settings) ----------
  function lazyPanel(event) {
    var elt = event.detail.elt;
    return elt && elt.hasAttribute && elt.hasAttribute("data-lazy-panel") ? elt : null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var panel = lazyPanel(event);
    if (panel) panel.setAttribute("aria-busy", "true");
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var panel = lazyPanel(event);
    if (panel) panel.removeAttribute("aria-busy");
  });

  // The focus was on the link the form replaced (or nowhere): it goes to the form's first field,
  // not back to the composer.
  document.addEventListener("htmx:afterSwap", function (event) {
    var panel = lazyPanel(event);
    if (!panel || (document.activeElement && document.activeElement !== document.body)) return;
    var first = panel.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  });

  // --- The title a model made, and feedback's focus -------------------------------------
  document.addEventListener("htmx:afterSettle", function (event) {
    var config = event.detail.requestConfig;
    var elt = config && config.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-title-watch")) {
      var title = document.getElementById("chat-title");
      if (title) document.title = title.textContent.trim() + " · chatsite";
    }
  });

  // Removing a rating takes away the button that had the focus: it goes to the reply's 👍.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.classList || !target.classList.contains("feedback")) return;
    if (document.activeElement && document.activeElement !== document.body) return;
    var swapped = target.isConnected ? target : document.getElementById(target.id);
    var first = swapped && swapped.querySelector(".feedback__button");
    if (first) first.focus();
  });
})();
