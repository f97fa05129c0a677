r"""The `{{variables}}` of a prompt's body: the one parser, for the pages, the picker and the system prompt.

The syntax, all of it:
- `{{name}}` is a variable; spaces inside the braces do not count (`{{ name }}` is the same one).
  A name is 1 to 32 characters of `a-z`, `0-9` and `_`.
- A name used twice is one variable: one field to fill, its value in every place.
- `\{{` is the text `{{`: `\{{name}}` shows `{{name}}` and asks for nothing. No other backslash is special.
- Any other `{{…}}` within one line (`{{First name}}`, `{{}}`) is refused when the prompt is saved,
  so that a typo is not silently kept as text. A `{{` that is never closed on its line is text.
- A value is plain text, put in as typed: it is never read for variables itself, and every page
  shows the filled text escaped, like any message.
"""

import re

NAME = re.compile(r"[a-z0-9_]{1,32}")
MAX_VARIABLES = 20
# An escaped opening first, so that `\{{name}}` is the escape and then the text `name}}`.
_TOKEN = re.compile(r"\\\{\{|\{\{([^{}\n]*)\}\}")

Part = tuple[str, str]  # ("text", what is shown as it is) or ("var", a variable's name)


class VariableError(ValueError):
    """A body that breaks the syntax, or a fill that leaves a variable without its value."""


def parts(body: str) -> list[Part]:
    """The body as text and variables in order, escapes resolved; raises VariableError on a bad `{{…}}`."""
    found: list[Part] = []
    text, start = [], 0
    for token in _TOKEN.finditer(body):
        text.append(body[start : token.start()])
        start = token.end()
        if token.group(1) is None:
            text.append("{{")
            continue
        name = token.group(1).strip()
        if not NAME.fullmatch(name):
            raise VariableError(
                f"“{token.group(0)}” is not a variable: a name is 1 to 32 of a–z, 0–9 and _ "
                "(like {{topic}}). To write two braces as text, put a backslash before them: \\{{"
            )
        if any(text):
            found.append(("text", "".join(text)))
        text = []
        found.append(("var", name))
    text.append(body[start:])
    if any(text):
        found.append(("text", "".join(text)))
    names = {name for kind, name in found if kind == "var"}
    if len(names) > MAX_VARIABLES:
        raise VariableError(f"A prompt can have at most {MAX_VARIABLES} variables; this one has {len(names)}.")
    return found


def names(body: str) -> list[str]:
    """The body's variables, each once, in the order they first appear."""
    return list(dict.fromkeys(name for kind, name in parts(body) if kind == "var"))


def fill(body: str, values: dict[str, str]) -> str:
    """The body with each variable replaced by its value; values for names it lacks are ignored."""
    missing = [name for name in names(body) if name not in values]
    if missing:
        raise VariableError("Fill in " + ", ".join(missing) + ".")
    return "".join(value if kind == "text" else values[value] for kind, value in parts(body))
