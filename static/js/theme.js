// Runs before the page is drawn: light or dark, from the person's choice (remembered in this
// browser) or else the system setting. The toggle in the sidebar (chat.js) changes the choice.
(function () {
  "use strict";
  var KEY = "chatsite-theme";
  var system = window.matchMedia("(prefers-color-scheme: dark)");

  function choice() {
    try {
      return localStorage.getItem(KEY) || "system";
    } catch (error) {
      return "system"; // storage can be off (private mode, policies)
    }
  }

  function apply() {
    var wanted = choice();
    var theme = wanted === "system" ? (system.matches ? "dark" : "light") : wanted;
    document.documentElement.setAttribute("data-theme", theme);
    document.documentElement.setAttribute("data-theme-choice", wanted);
  }

  window.chatsiteTheme = {
    choice: choice,
    set: function (value) {
      try {
        localStorage.setItem(KEY, value);
      } catch (error) { /* the choice then lasts for this page only */ }
      apply();
    },
  };
  system.addEventListener("change", apply);
  apply();
})();
