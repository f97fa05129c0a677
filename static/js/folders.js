// Folders in the sidebar: each folder's open or closed state is stored (one POST per toggle, so
// a reload and another device show it the same), and on a desktop a chat can be dragged onto a
// folder (or onto the main list, to take it out). The "Move to folder" form in each chat's menu
// does the same without a mouse. No inline scripts; everything is delegated from document.
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (error) {
      return "";
    }
  }

  // `toggle` does not bubble: listen while it is captured.
  document.addEventListener("toggle", function (event) {
    var folder = event.target;
    if (!(folder instanceof HTMLDetailsElement) || !folder.matches("details[data-folder]")) return;
    // A folder rendered open fires `toggle` too: only a change from the stored state is sent.
    var open = folder.open ? "1" : "0";
    if (folder.dataset.open === open) return;
    folder.dataset.open = open;
    var body = new URLSearchParams({ collapsed: open === "1" ? "0" : "1" });
    fetch(folder.dataset.collapseUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
    });
  }, true);

  var dragged = null; // the address of the chat being dragged: "/c/<id>/"

  document.addEventListener("dragstart", function (event) {
    var link = event.target.closest && event.target.closest(".conversation-item > a");
    if (!link || !link.closest("#conversation-list")) return;
    dragged = link.getAttribute("href");
    event.dataTransfer.effectAllowed = "move";
  });

  document.addEventListener("dragend", function () {
    dragged = null;
    document.querySelectorAll(".is-drop-target").forEach(function (element) {
      element.classList.remove("is-drop-target");
    });
  });

  function dropTarget(event) {
    return dragged && event.target.closest ? event.target.closest("[data-drop-folder]") : null;
  }

  document.addEventListener("dragover", function (event) {
    var target = dropTarget(event);
    if (!target) return;
    event.preventDefault(); // allows the drop
    event.dataTransfer.dropEffect = "move";
    target.classList.add("is-drop-target");
  });

  document.addEventListener("dragleave", function (event) {
    var target = dropTarget(event);
    if (target && !target.contains(event.relatedTarget)) target.classList.remove("is-drop-target");
  });

  document.addEventListener("drop", function (event) {
    var target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    var url = dragged + "folder/";
    dragged = null;
    // As the menu's form would: htmx sends the CSRF header (hx-headers on body) and swaps the sidebar.
    window.htmx.ajax("POST", url, {
      target: "#conversation-list",
      swap: "outerHTML",
      values: { folder: target.dataset.dropFolder },
    });
  });
})();
