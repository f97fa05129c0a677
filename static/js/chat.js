// chatsite's behaviour on top of htmx: keyboard sending, a growing composer, an immediate
// echo of what was sent, streamed replies, scrolling to the newest message, and a toast for
// failures that htmx does not swap into the page. No inline scripts; everything is
// delegated from document.
(function () {
  "use strict";

  function messageList() {
    return document.getElementById("message-list");
  }

  // At once, not smoothly: while a smooth scroll is under way the list is not yet at the
  // bottom, so a reply streaming in would seem scrolled away from and stop being followed
  // (and its error and Retry would end up below the visible area).
  function scrollToNewest() {
    var list = messageList();
    if (list) list.scrollTo({ top: list.scrollHeight, behavior: "instant" });
    syncScrollButton();
  }

  // "Scroll to the newest message" shows while the person has scrolled up from the bottom.
  function syncScrollButton() {
    var button = document.querySelector("[data-scroll-newest]");
    if (button) button.hidden = isNearBottom();
  }

  document.addEventListener("scroll", function (event) {
    if (event.target === messageList()) syncScrollButton();
  }, true);

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

  // Menus (the header's ⋯, Share and Settings, a sidebar item's ⋯) are <details>: one is open at
  // a time, and a click outside, Esc or a send closes them, so none is left covering the chat.
  var MENUS = "details.chat-settings, details.conversation-menu";
  var OPEN_MENUS = "details.chat-settings[open], details.conversation-menu[open]";

  function closeMenus(except) {
    document.querySelectorAll(MENUS).forEach(function (menu) {
      if (menu !== except && menu.open) menu.open = false;
    });
  }

  // `toggle` does not bubble: listen while it goes down. A menu swapped in already open counts too.
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (menu.open && menu.matches && menu.matches(MENUS)) closeMenus(menu);
  }, true);

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : event.target.parentElement;
    closeMenus(target && target.closest(MENUS));
  });

  // Before the other Esc handlers (stopping a reply, closing the phone's sidebar): Esc closes the menu first.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    var open = document.querySelector(OPEN_MENUS);
    if (!open) return;
    event.preventDefault();
    closeMenus(null);
    open.querySelector("summary").focus();
  }, true);

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.hasAttribute && event.detail.elt.hasAttribute("data-composer")) closeMenus(null);
  });

  // Fires on the form, which a swap may already have replaced (then beforeSwap did the work).
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt.hasAttribute("data-composer")) {
      removeEcho();
      syncEmptyState();
    }
  });

  // Older messages arrive above the ones read: keep the view where it was (no jump, and
  // the next loader stays out of sight until the person scrolls up to it).
  var fromBottom = null;
  function isOlderRequest(event) {
    var config = event.detail.requestConfig;
    return !!(config && config.elt && config.elt.hasAttribute && config.elt.hasAttribute("data-older"));
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var list = messageList();
    if (isOlderRequest(event) && list) fromBottom = list.scrollHeight - list.scrollTop;
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var list = messageList();
    if (isOlderRequest(event) && list && fromBottom !== null) {
      list.style.scrollBehavior = "auto";
      list.scrollTop = list.scrollHeight - fromBottom;
      list.style.scrollBehavior = "";
      fromBottom = null;
    }
  });

  // The sidebar, and controls that leave the list as it is ([data-keep-scroll]: feedback, the header's model).
  function inSidebar(event) {
    var config = event.detail.requestConfig;
    return !!(config && config.elt && config.elt.closest && config.elt.closest("#sidebar, [data-keep-scroll]"));
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    syncEmptyState();
    if (event.detail.xhr && event.detail.xhr.status >= 400) {
      // A refusal, shown beside the composer, changed nothing: the view stays where it is.
    } else if (event.detail.boosted) {
      // A conversation opened from the sidebar. After this event htmx scrolls a link's #message-N
      // to the top of the view: place it once htmx is done.
      requestAnimationFrame(scrollOnArrival);
    } else if (!isOlderRequest(event) && !inSidebar(event)) {
      scrollToNewest();
    }
    syncScrollButton();
    var textarea = composerTextarea();
    if (textarea && document.activeElement === document.body) textarea.focus();
  });

  // Error responses to htmx carry one readable line of plain text (chatsite/errors.py).
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var type = xhr.getResponseHeader("Content-Type") || "";
    var text = type.indexOf("text/plain") === 0 ? xhr.responseText.trim() : "";
    showToast(text || "Something went wrong on the server (HTTP " + xhr.status + "). Reload the page to see what was saved.");
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
      if (nearBottom) scrollToNewest(); else syncScrollButton();
    });
    // While a failed attempt is retried (say, after a 429), the pane says what it waits for.
    source.addEventListener("waiting", function (event) {
      if (stopOnLeave()) return;
      var label = body.closest("article").querySelector("[data-progress-label]");
      if (label) label.textContent = JSON.parse(event.data) || "Writing…";
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
      htmx.process(finished); // fires no htmx:load, so the reply is enhanced here
      enhance(finished);
      finished.dispatchEvent(new CustomEvent("chatsite:reply-done", { bubbles: true })); // for workspace.js
      syncStreaming();
      // A failed reply's error and Retry come into view too, if the person was at the bottom.
      if (nearBottom) scrollToNewest(); else syncScrollButton();
    });
    source.addEventListener("error", function () {
      // EventSource reconnects by itself; CLOSED means the server refused (signed out, deleted,
      // or too many streams open: 429).
      if (!stopOnLeave() && source.readyState === EventSource.CLOSED) explainRefusal(url);
    });
  }

  // EventSource does not show why a stream was refused: ask once more with fetch, which reads
  // the status and the reason (as plain text, like htmx's), and hang up on any stream it opens.
  function explainRefusal(url) {
    var lost = "Lost the connection to this reply. Reload the page to see what was saved.";
    fetch(url, { headers: { Accept: "text/event-stream", "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status !== 429) {
          if (response.body) response.body.cancel();
          showToast(lost);
          return;
        }
        return response.text().then(function (reason) { showToast(reason.trim() || lost); });
      })
      .catch(function () { showToast(lost); });
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

  // Copy: a message's raw Markdown (data-copy), or the code of a code block.
  function copy(button, text) {
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label); // a second click while it says "Copied" keeps the label
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { showToast("Could not copy: the browser refused."); });
    } else {
      // http:// on another host has no clipboard API: fall back to a selection.
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.append(area);
      area.select();
      var copied = document.execCommand("copy");
      area.remove();
      if (copied) done(); else showToast("Could not copy: select the text and copy it by hand.");
    }
  }

  // Rendered replies: a Copy button on each code block, and tables and code that scroll
  // sideways can take the keyboard's focus (so arrow keys scroll them).
  function enhance(root) {
    root.querySelectorAll(".code-block__head").forEach(function (head) {
      if (head.querySelector("button")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button button--small button--ghost";
      button.setAttribute("data-copy-code", "");
      button.setAttribute("aria-label", "Copy code");
      button.textContent = "Copy";
      head.append(button);
    });
    root.querySelectorAll(".markdown table, .markdown .code-block pre").forEach(function (scroller) {
      if (scroller.hasAttribute("tabindex")) return;
      scroller.setAttribute("tabindex", "0");
      scroller.setAttribute("role", "region");
      scroller.setAttribute("aria-label", scroller.tagName === "TABLE" ? "Table" : "Code");
    });
  }

  function setMenu(open) {
    var app = document.getElementById("app");
    var button = document.querySelector("[data-menu]");
    if (!app || !button) return;
    app.classList.toggle("is-menu-open", open);
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      var current = document.querySelector("#conversation-list [aria-current]") || document.querySelector("[data-search]");
      if (current) current.focus();
    }
  }

  function isMenuOpen() {
    var app = document.getElementById("app");
    return !!app && app.classList.contains("is-menu-open");
  }

  var THEMES = { system: "light", light: "dark", dark: "system" }; // what the toggle picks next

  function labelThemeToggle() {
    var button = document.querySelector("[data-theme-toggle]");
    if (!button || !window.chatsiteTheme) return;
    var current = window.chatsiteTheme.choice();
    button.textContent = "Theme: " + current.charAt(0).toUpperCase() + current.slice(1);
    button.setAttribute("aria-label", "Theme: " + current + ". Change to " + THEMES[current]);
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : event.target.parentElement;
    var button = target && target.closest("button");
    if (!button) {
      // A tap outside the open menu (on the dimmed chat), or on a conversation, closes it.
      if (isMenuOpen() && (!target.closest("#sidebar") || target.closest("#conversation-list a"))) setMenu(false);
      return;
    }
    if (button.hasAttribute("data-copy")) {
      copy(button, button.getAttribute("data-copy"));
    } else if (button.hasAttribute("data-copy-code")) {
      copy(button, button.closest(".code-block").querySelector("pre").textContent);
    } else if (button.hasAttribute("data-scroll-newest")) {
      scrollToNewest();
      var textarea = composerTextarea();
      if (textarea) textarea.focus(); // the button hides: focus goes on to where one writes
    } else if (button.hasAttribute("data-menu")) {
      setMenu(!isMenuOpen());
    } else if (button.hasAttribute("data-theme-toggle") && window.chatsiteTheme) {
      window.chatsiteTheme.set(THEMES[window.chatsiteTheme.choice()]);
      labelThemeToggle();
    }
  });

  // "/" searches, Ctrl/Cmd+Shift+O starts a new chat, Esc closes the menu (or stops a reply, above).
  document.addEventListener("keydown", function (event) {
    var typing = event.target instanceof HTMLElement && event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      var search = document.querySelector("[data-search]");
      if (search) {
        event.preventDefault();
        if (window.matchMedia("(max-width: 767px)").matches) setMenu(true);
        search.focus();
      }
    } else if ((event.ctrlKey || event.metaKey) && event.shiftKey && (event.key === "O" || event.key === "o")) {
      var newChat = document.querySelector("[data-new-chat]");
      if (newChat) {
        event.preventDefault();
        newChat.click();
      }
    } else if (event.key === "Escape" && !event.defaultPrevented && isMenuOpen()) {
      setMenu(false);
      var menuButton = document.querySelector("[data-menu]");
      if (menuButton) menuButton.focus();
    }
  });

  htmx.onLoad(function (root) {
    if (root.querySelectorAll) enhance(root);
    expireUndo(root);
    labelThemeToggle();
    var bodies = root.querySelectorAll ? Array.from(root.querySelectorAll("[data-stream-url]")) : [];
    if (root.matches && root.matches("[data-stream-url]")) bodies.push(root);
    bodies.forEach(follow);
    syncStreaming();
  });

  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var source = event.detail.elt.chatsiteSource;
    if (source) source.close();
  });

  // A link to one message (from search) shows that message; otherwise the newest, at once
  // (a smooth scroll would first reveal the older-messages loader at the top).
  function scrollOnArrival() {
    var list = messageList();
    if (!list) return;
    var target = /^#message-\d+$/.test(location.hash) && document.querySelector(location.hash);
    list.style.scrollBehavior = "auto";
    if (target) {
      target.scrollIntoView({ block: "center" });
      target.classList.add("is-target");
    } else {
      list.scrollTop = list.scrollHeight;
    }
    list.style.scrollBehavior = "";
    syncScrollButton();
  }

  // "Deleted … Undo" goes away after a few seconds; the conversation then stays in the trash.
  function expireUndo(root) {
    var notes = root.querySelectorAll ? root.querySelectorAll("[data-undo]") : [];
    notes.forEach(function (note) {
      setTimeout(function () { note.remove(); }, 10000);
    });
  }

  // The browser scrolls to a link's #message-N itself (to the top) while the page loads: centre it after.
  window.addEventListener("load", function () {
    if (/^#message-\d+$/.test(location.hash)) scrollOnArrival();
  });

  document.addEventListener("DOMContentLoaded", function () {
    scrollOnArrival();
    var textarea = composerTextarea();
    if (textarea) {
      grow(textarea);
      textarea.focus();
    }
  });
})();
