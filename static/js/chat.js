// chatsite's behaviour on top of htmx: keyboard sending, a growing composer, an immediate
// echo of what was sent, scrolling to the newest message, and a toast for failures that
// htmx does not swap into the page. No inline scripts; everything is delegated from document.
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
    if (form.classList.contains("htmx-request") || !target.value.trim()) return;
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

  document.addEventListener("DOMContentLoaded", function () {
    scrollToNewest();
    var textarea = composerTextarea();
    if (textarea) {
      grow(textarea);
      textarea.focus();
    }
  });
})();
