// The composer's "/" picker. Typing / at the start of a message lists the prompts the person may
// use (the picker's JSON: text only, never HTML), filtered by what follows as they type: Up/Down
// move, Enter or Tab chooses, Esc closes. A prompt with {{variables}} first asks for their values
// in a small form (Enter inserts, Esc cancels); then the composer is filled, never sent: the
// person reads it and presses Enter, as for any message. The server splits each body into text
// and variables, so the syntax has one parser (prompts/variables.py).
(function () {
  "use strict";

  var script = document.currentScript;
  var PICKER_URL = script.getAttribute("data-picker-url");
  var LIBRARY_URL = script.getAttribute("data-library-url");
  var QUERY = /^\/([^\n]*)$/; // the whole message: "/" and then, on one line, what filters

  var prompts = null; // the last list fetched, null until the first answer
  var fetching = null;
  var failed = false;
  var shown = [];
  var active = 0;
  var dismissed = null; // the text Esc closed the picker on: it stays closed until the text changes

  function isComposer(element) {
    return element instanceof HTMLTextAreaElement && element.hasAttribute("data-composer-input");
  }

  function composer() {
    return document.querySelector("textarea[data-composer-input]");
  }

  function picker() {
    return document.getElementById("prompt-picker");
  }

  function load() {
    if (!fetching) {
      fetching = fetch(PICKER_URL, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (data) { prompts = data.prompts; failed = false; })
        .catch(function () { failed = true; })
        .finally(function () {
          fetching = null;
          var textarea = composer();
          if (textarea && picker()) render(textarea);
        });
    }
  }

  function matching(query) {
    var wanted = query.trim().toLowerCase();
    var found = (prompts || []).filter(function (prompt) {
      return !wanted || prompt.command.indexOf(wanted) !== -1 || prompt.title.toLowerCase().indexOf(wanted) !== -1;
    });
    // Commands that start with what was typed first; otherwise the server's order (own prompts first).
    return found
      .map(function (prompt, index) { return { prompt: prompt, rank: prompt.command.indexOf(wanted) === 0 ? 0 : 1, index: index }; })
      .sort(function (a, b) { return a.rank - b.rank || a.index - b.index; })
      .map(function (item) { return item.prompt; });
  }

  function update(textarea) {
    if (textarea.value !== dismissed) dismissed = null; // any change of the text, even back to "/", reopens it
    if (!QUERY.test(textarea.value) || dismissed !== null) {
      close(textarea);
      return;
    }
    if (!picker()) {
      active = 0;
      load(); // each opening asks again: a prompt saved in another tab is there too
    }
    render(textarea);
  }

  function render(textarea) {
    var match = QUERY.exec(textarea.value);
    if (!match) return close(textarea);
    var box = picker();
    if (!box) box = build(textarea);
    var list = box.querySelector("[role=listbox]");
    var note = box.querySelector("p");
    var previous = shown[active] && shown[active].id; // the same prompt stays chosen when a fresh list arrives
    shown = matching(match[1]);
    active = Math.max(0, shown.findIndex(function (prompt) { return prompt.id === previous; }));
    list.replaceChildren.apply(list, shown.map(option));
    list.hidden = !shown.length; // a listbox without options is no listbox
    note.replaceChildren(noteText());
    if (!shown.length && prompts !== null) {
      var link = document.createElement("a");
      link.href = LIBRARY_URL;
      link.textContent = "prompt library";
      note.append(" Add one in the ", link, ".");
    }
    select(textarea, active);
  }

  function noteText() {
    if (prompts === null) return failed ? "Your prompts could not be loaded; type on to send text." : "Loading your prompts…";
    if (!shown.length) return "No prompt matches.";
    return shown.length + (shown.length === 1 ? " prompt" : " prompts") + ": ↑ ↓ to choose, Enter to use, Esc to close.";
  }

  function build(textarea) {
    var box = document.createElement("div");
    box.id = "prompt-picker";
    box.className = "prompt-picker";
    var list = document.createElement("ul");
    list.id = "prompt-picker-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Prompts");
    var note = document.createElement("p");
    note.setAttribute("role", "status");
    box.append(list, note);
    // Pressing on an option keeps the focus in the composer; the click then chooses it.
    box.addEventListener("mousedown", function (event) {
      if (event.target.closest("[role=option]")) event.preventDefault();
    });
    box.addEventListener("click", function (event) {
      var item = event.target.closest("[role=option]");
      if (item) choose(textarea, shown[Number(item.getAttribute("data-index"))]);
    });
    textarea.form.prepend(box);
    textarea.setAttribute("aria-controls", list.id);
    textarea.setAttribute("aria-autocomplete", "list");
    return box;
  }

  function option(prompt, index) {
    var item = document.createElement("li");
    item.id = "prompt-option-" + index;
    item.setAttribute("role", "option");
    item.setAttribute("data-index", String(index));
    var command = document.createElement("span");
    command.className = "prompt-picker__command";
    command.textContent = "/" + prompt.command;
    var title = document.createElement("span");
    title.textContent = prompt.title;
    var audience = document.createElement("span");
    audience.className = "prompt-picker__audience";
    audience.textContent = prompt.audience;
    item.append(command, title, audience);
    return item;
  }

  function select(textarea, index) {
    active = index;
    var box = picker();
    if (!box) return;
    box.querySelectorAll("[role=option]").forEach(function (item, i) {
      item.setAttribute("aria-selected", i === index ? "true" : "false");
      if (i === index) item.scrollIntoView({ block: "nearest" });
    });
    if (shown.length) textarea.setAttribute("aria-activedescendant", "prompt-option-" + index);
    else textarea.removeAttribute("aria-activedescendant");
  }

  function close(textarea) {
    var box = picker();
    if (box) box.remove();
    shown = [];
    if (textarea) {
      ["aria-activedescendant", "aria-controls", "aria-autocomplete"].forEach(function (name) {
        textarea.removeAttribute(name);
      });
    }
  }

  function filled(prompt, values) {
    return prompt.parts.map(function (part) { return part[0] === "text" ? part[1] : values[part[1]]; }).join("");
  }

  function put(textarea, text) {
    dismissed = text; // a body that itself starts with "/" does not reopen the picker
    textarea.value = text;
    textarea.focus();
    textarea.setSelectionRange(text.length, text.length);
    textarea.dispatchEvent(new Event("input", { bubbles: true })); // chat.js grows the composer
  }

  function choose(textarea, prompt) {
    close(textarea);
    if (!prompt.variables.length) put(textarea, filled(prompt, {}));
    else ask(textarea, prompt);
  }

  // The small form of variables, beside the composer (a form cannot sit inside another).
  function ask(textarea, prompt) {
    var old = document.getElementById("prompt-fill");
    if (old) old.remove();
    var form = document.createElement("form");
    form.id = "prompt-fill";
    form.className = "prompt-fill";
    form.setAttribute("aria-labelledby", "prompt-fill-title");
    var heading = document.createElement("h2");
    heading.id = "prompt-fill-title";
    heading.textContent = "/" + prompt.command + " · " + prompt.title;
    form.append(heading);
    var inputs = prompt.variables.map(function (name, index) {
      var field = document.createElement("div");
      var label = document.createElement("label");
      label.htmlFor = "prompt-variable-" + index;
      label.textContent = name;
      var input = document.createElement("input");
      input.type = "text";
      input.id = label.htmlFor;
      input.name = name;
      input.required = true;
      input.autocomplete = "off";
      field.append(label, input);
      form.append(field);
      return input;
    });
    var actions = document.createElement("div");
    actions.className = "prompt-fill__actions";
    var insert = document.createElement("button");
    insert.type = "submit";
    insert.className = "button button--primary button--small";
    insert.textContent = "Insert";
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "button button--small";
    cancel.textContent = "Cancel";
    var hint = document.createElement("small");
    hint.textContent = "Enter inserts · Esc cancels";
    actions.append(insert, cancel, hint);
    form.append(actions);

    function back() {
      form.remove();
      var current = composer();
      if (current) {
        dismissed = current.value;
        current.focus();
      }
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!form.reportValidity()) return;
      var values = {};
      inputs.forEach(function (input) { values[input.name] = input.value; });
      form.remove();
      var current = composer();
      if (current) put(current, filled(prompt, values));
    });
    cancel.addEventListener("click", back);
    form.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      event.preventDefault();
      event.stopPropagation(); // not also a Stop of the reply being written
      back();
    });
    textarea.form.before(form);
    inputs[0].focus();
  }

  document.addEventListener("input", function (event) {
    if (isComposer(event.target)) update(event.target);
  });

  // Before chat.js's handlers (Enter sends, Esc stops a reply): while the picker is open, these keys are its.
  document.addEventListener("keydown", function (event) {
    var textarea = event.target;
    if (!isComposer(textarea) || !picker() || event.isComposing) return;
    var key = event.key;
    if ((key === "ArrowDown" || key === "ArrowUp") && shown.length) {
      select(textarea, (active + (key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length);
    } else if ((key === "Enter" || key === "Tab") && !event.shiftKey && shown.length) {
      choose(textarea, shown[active]);
    } else if (key === "Escape") {
      dismissed = textarea.value;
      close(textarea);
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }, true);

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!event.detail.elt.hasAttribute || !event.detail.elt.hasAttribute("data-composer")) return;
    close(composer());
    var form = document.getElementById("prompt-fill");
    if (form) form.remove();
  });
})();
