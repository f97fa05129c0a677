"""Accessibility in Chromium, checked by axe-core (vendored in tests/vendor/): no serious
violation in either theme on desktop or phone, scrollable tables and code reach the keyboard,
and highlighted code has enough contrast."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import MARKDOWN_REPLY, PHONE, conversation_url, sign_in, stored_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent.parent / "vendor" / "axe-core" / "axe.min.js"

WIDE_TABLE_REPLY = (
    "| Function | Returns | Sorts in place | Accepts any iterable | Stable | Key function | Reverse |\n"
    "|---|---|---|---|---|---|---|\n"
    "| `sorted(items)` | a new list | no | yes | yes | `key=` | `reverse=True` |\n"
    "| `items.sort()` | `None` | yes | lists only | yes | `key=` | `reverse=True` |\n\n"
    "```python\nprint(sorted(['banana', 'Apple', 'cherry'], key=str.casefold, reverse=True))  # a long line\n```\n"
)
COLOURFUL_CODE_REPLY = """```python
import os.path  # a comment

@dataclass
class Point:
    \"\"\"A point.\"\"\"
    x: int = 16
    y: float = 2.5

    def show(self) -> str:
        return f"{self.x} is {True}"
```
"""
AXE_RUN = """async options => {
    const results = await axe.run(document, options);
    const where = target => {
        const element = document.querySelector(target[0]);
        if (element && element.closest(".code-block pre")) return "code";
        return element && element.closest(".markdown") ? "reply" : "page";
    };
    return results.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
        nodes: v.nodes.map(node => ({target: node.target, where: where(node.target), summary: node.failureSummary})),
    }));
}"""


def serious_axe_violations(page: Page, *, only: list[str] | None = None) -> list[dict]:
    """axe-core's violations of impact serious or critical on the page as it is now; each node
    says `where` it is: in highlighted "code", elsewhere in a "reply", or on the "page"."""
    # Evaluated by the test driver, not added as a <script>: the Content-Security-Policy would refuse
    # an inline script, and the page must stay under the policy it is served with.
    page.evaluate(AXE.read_text())
    options = {"resultTypes": ["violations"]}
    if only:
        options["runOnly"] = {"type": "rule", "values": only}
    return page.evaluate(AXE_RUN, options)


def describe_violations(violations: list[dict]) -> str:
    return "axe-core found serious problems:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} ({v['helpUrl']})\n"
        + "\n".join(f"    {node['target']} in {node['where']}: {node['summary']}" for node in v["nodes"])
        for v in violations
    )


@pytest.mark.parametrize("device", ["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_it_has_no_serious_accessibility_violations_on_a_chat_with_markdown_replies(
    open_page, live_server, alice, scheme, device
):
    conversation = stored_conversation(
        alice,
        "Sorting in Python",
        [("How do I sort a list?", MARKDOWN_REPLY), ("Compare them in a wide table", WIDE_TABLE_REPLY)],
    )
    if device == "phone":
        page = open_page(color_scheme=scheme, viewport=PHONE, is_mobile=True, has_touch=True)
    else:
        page = open_page(color_scheme=scheme)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect(page.locator("html")).to_have_attribute("data-theme", scheme)
    expect(page.locator("[data-copy-code]")).to_have_count(2)  # chat.js has run

    violations = serious_axe_violations(page)

    assert violations == [], describe_violations(violations)


def test_it_lets_the_keyboard_scroll_wide_tables_and_code(open_page, live_server, alice):
    conversation = stored_conversation(alice, "Wide things", [("Compare them in a wide table", WIDE_TABLE_REPLY)])
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    wide = page.locator("#message-list .markdown").locator("table, pre")
    expect(wide).to_have_count(2)
    # Both really scroll sideways on a phone, so the rule has something to check.
    assert wide.evaluate_all("elements => elements.map(e => e.scrollWidth > e.clientWidth)") == [True, True]

    violations = serious_axe_violations(page, only=["scrollable-region-focusable"])

    assert violations == [], describe_violations(violations)


@pytest.mark.parametrize(
    "scheme",
    [
        "light",
        "dark",
    ],
)
def test_it_highlights_code_with_enough_contrast(open_page, live_server, alice, scheme):
    conversation = stored_conversation(alice, "Highlighting", [("Show me some Python", COLOURFUL_CODE_REPLY)])
    page = open_page(color_scheme=scheme)
    sign_in(page, live_server, alice)
    page.goto(conversation_url(live_server, conversation))
    expect(page.locator("html")).to_have_attribute("data-theme", scheme)
    for token in ("c1", "mi", "mf", "kc", "nd", "nc", "nn", "si", "sd"):  # comment, numbers, True, @, names...
        expect(page.locator(f"#message-list .code-block pre span.{token}").first).to_be_visible()

    violations = serious_axe_violations(page, only=["color-contrast"])

    assert violations == [], describe_violations(violations)
