// chatsite's behaviour on top of htmx: keyboard sending, a growing composer, an immediate
// echo of what was sent, streamed replies, scrolling to the newest message, and a toast for
// failures that htmx does not swap into the page. No inline scripts; everything is
// delegated from document.
(function () {
  "use strict";

  function messageList() {
    return document.getElementById("message-list");
  }

  function scrollToNewest() {
    var list = messageList();
    if (list) list.scrollTop = list.scrollHeight;
  }

  function grow(textarea) {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight, window.innerHeight * 0.4) + "px";
  }

  function composerTextarea() {
    return document.querySelector("textarea[data-composer-input]");
  }

  function showToast(text) {
    var toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(function () { toast.hidden = true; }, 8000);
  }

  function bubble(role, text, extraClass) {
    var article = document.createElement("article");
    article.className = "message message--" + role + " " + extraClass;
    article.setAttribute("data-optimistic", "");
    var label = document.createElement("div");
    label.className = "message__role";
    label.textContent = role === "user" ? "You" : "Assistant";
    var body = document.createElement("div");
    body.className = "message__body" + (role === "assistant" ? " message__body--pending" : "");
    body.textContent = text; // text only: never parsed as HTML
    article.append(label, body);
    return article;
  }

  function removeEcho() {
    document.querySelectorAll("[data-optimistic]").forEach(function (node) { node.remove(); });
  }

  // The empty state shows exactly when the list holds no message (stored or echoed).
  function syncEmptyState() {
    var list = messageList();
    var empty = list && list.querySelector(".empty-state");
    if (empty) empty.hidden = !!list.querySelector(".message");
  }

  // Enter sends, Shift+Enter makes a new line; nothing is sent while a send is in flight.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!(target instanceof HTMLTextAreaElement) || !target.hasAttribute("data-composer-input")) return;
    event.preventDefault();
    var form = target.form;
    // While a reply is written the composer offers Stop, not Send: Enter waits too.
    if (form.classList.contains("htmx-request") || form.classList.contains("is-streaming") || !target.value.trim()) {
      return;
    }
    form.requestSubmit();
  });

  document.addEventListener("input", function (event) {
    if (event.target instanceof HTMLTextAreaElement && event.target.hasAttribute("data-composer-input")) grow(event.target);
  });

  // Show the person's message and a waiting reply at once; the server's answer replaces both.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-composer")) return;
    var textarea = form.querySelector("textarea[data-composer-input]");
    var list = messageList();
    if (!textarea || !list || !textarea.value.trim()) return;
    list.append(bubble("user", textarea.value.trim(), "is-sending"));
    var waiting = bubble("assistant", " Waiting for the reply…", "is-pending");
    var dots = document.createElement("span");
    dots.className = "typing";
    dots.setAttribute("aria-hidden", "true");
    dots.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
    waiting.querySelector(".message__body").prepend(dots);
    list.append(waiting);
    syncEmptyState();
    scrollToNewest();
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.requestConfig && event.detail.requestConfig.elt.hasAttribute("data-composer")) removeEcho();
  });

  // Fires on the form, which a swap may already have replaced (then beforeSwap did the work).
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt.hasAttribute("data-composer")) {
      removeEcho();
      syncEmptyState();
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    syncEmptyState();
    scrollToNewest();
    var textarea = composerTextarea();
    if (textarea && document.activeElement === document.body) textarea.focus();
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    showToast("Something went wrong on the server (HTTP " + status + "). Reload the page to see what was saved.");
  });

  document.addEventListener("htmx:sendError", function () {
    showToast("Could not reach chatsite. Check your connection and press Send again: the message is still in the box.");
  });

  // A reply being written: follow its server-sent events. `text` events add text (set as
  // text, never parsed as HTML) and carry the length so far as their id, so the browser's own
  // reconnect (Last-Event-ID) resumes where it left off; `done` brings the finished message.
  function follow(body) {
    if (body.chatsiteSource) return;
    var url = body.getAttribute("data-stream-url") + "?offset=" + (body.getAttribute("data-stream-offset") || "0");
    var source = new EventSource(url);
    body.chatsiteSource = source;
    var stopOnLeave = function () {
      if (body.isConnected) return false;
      source.close();
      return true;
    };
    source.addEventListener("text", function (event) {
      if (stopOnLeave()) return;
      var nearBottom = isNearBottom();
      body.append(document.createTextNode(JSON.parse(event.data)));
      body.setAttribute("data-stream-offset", event.lastEventId);
      if (nearBottom) scrollToNewest();
    });
    source.addEventListener("done", function (event) {
      source.close();
      if (stopOnLeave()) return;
      var article = body.closest("article");
      var nearBottom = isNearBottom();
      var template = document.createElement("template");
      template.innerHTML = JSON.parse(event.data).html; // rendered and escaped by the server
      var finished = template.content.firstElementChild;
      article.replaceWith(finished);
      htmx.process(finished);
      syncStreaming();
      if (nearBottom) scrollToNewest();
    });
    source.addEventListener("error", function () {
      // EventSource reconnects by itself; CLOSED means the server refused (signed out, deleted).
      if (!stopOnLeave() && source.readyState === EventSource.CLOSED) {
        showToast("Lost the connection to this reply. Reload the page to see what was saved.");
      }
    });
  }

  function isNearBottom() {
    var list = messageList();
    return !list || list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  // While a reply is written, the composer offers Stop instead of Send.
  function syncStreaming() {
    var composer = document.getElementById("composer");
    if (composer) composer.classList.toggle("is-streaming", !!document.querySelector("[data-stream-url]"));
  }

  function stopStreaming() {
    var stop = document.querySelector("[data-stream-url] ~ .message__progress [data-stop]");
    if (stop) stop.click();
    return !!stop;
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-composer-stop]")) {
      event.preventDefault();
      stopStreaming();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !event.defaultPrevented && stopStreaming()) event.preventDefault();
  });

  htmx.onLoad(function (root) {
    var bodies = root.querySelectorAll ? Array.from(root.querySelectorAll("[data-stream-url]")) : [];
    if (root.matches && root.matches("[data-stream-url]")) bodies.push(root);
    bodies.forEach(follow);
    syncStreaming();
  });

  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var source = event.detail.elt.chatsiteSource;
    if (source) source.close();
  });

  document.addEventListener("DOMContentLoaded", function () {
    scrollToNewest();
    var textarea = composerTextarea();
    if (textarea) {
      grow(textarea);
      textarea.focus();
    }
  });
})();
