"""Model output to safe HTML: Markdown (markdown-it-py) → highlighted code (Pygments) → nh3.

Model output is untrusted. Raw HTML in it is never passed through (markdown-it's `js-default`
preset escapes it and refuses `javascript:`/`vbscript:`/`file:`/most `data:` links), and the
result is sanitised again with an allow-list, so a mistake in one layer is caught by the next:
only the tags below survive, no `style`, no event handlers, only http(s) and mailto links, no
relative URLs, and every link opens in a new tab without a referrer. Images are never loaded:
a Markdown image becomes a link to it, so a reply cannot report anything to a server through
an image address.
"""

import html

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

DARK_CODE_STYLE = "lightbulb"  # Pygments style of code in the dark theme

# Bumped when the output changes; then `manage.py rerender_messages` stores the new renderings (until
# it has, a page renders an out-of-date message for itself: see Message.html).
VERSION = 1

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
_ALIGNMENTS = {"align-left", "align-center", "align-right"}
_CLASSES = {
    "span": {cls for cls in STANDARD_TYPES.values() if cls},
    "div": {"code-block", "code-block__head", "code-block__lang"},
    "th": _ALIGNMENTS,
    "td": _ALIGNMENTS,
}


def _fence(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    code = (
        highlight(token.content, lexer, HtmlFormatter(nowrap=True))
        if lexer
        else html.escape(token.content, quote=False)
    )
    label = html.escape(language or "text")
    return (
        f'<div class="code-block"><div class="code-block__head"><div class="code-block__lang">{label}</div></div>'
        f"<pre><code>{code}</code></pre></div>\n"
    )


def _image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    source = html.escape(token.attrGet("src") or "")
    alt = html.escape(self.renderInlineAsText(token.children or [], options, env) or "image")
    return f'<a href="{source}">Image: {alt}</a>'


def _cell(self, tokens, idx, options, env) -> str:
    # markdown-it aligns table cells with style="text-align:…"; no style attribute is allowed.
    token = tokens[idx]
    style = token.attrGet("style") or ""
    if token.attrs.pop("style", None) and style.startswith("text-align:"):
        token.attrSet("class", "align-" + style.removeprefix("text-align:"))
    return self.renderToken(tokens, idx, options, env)


_markdown = MarkdownIt("js-default").enable(["table", "strikethrough"])
_markdown.add_render_rule("fence", _fence)
_markdown.add_render_rule("code_block", _fence)
_markdown.add_render_rule("image", _image)
_markdown.add_render_rule("th_open", _cell)
_markdown.add_render_rule("td_open", _cell)


def render(text: str) -> str:
    """Safe HTML for a message's Markdown text."""
    if not text:
        return ""  # a reply just stored, still pending: nothing to parse
    return nh3.clean(
        _markdown.render(text),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        allowed_classes=_CLASSES,
        url_schemes={"http", "https", "mailto"},
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def pygments_css() -> str:
    """The highlighting colours, light and dark: the source of static/css/code.css."""
    # Both styles keep every token at 4.5:1 contrast or more (WCAG AA), checked with axe-core.
    # Dark is "lightbulb": a blue-grey background like the dark theme's (monokai's was olive).
    light = HtmlFormatter(style="default").get_style_defs(".code-block pre")
    dark = HtmlFormatter(style=DARK_CODE_STYLE).get_style_defs(":root[data-theme=dark] .code-block pre")
    return light + "\n" + dark
