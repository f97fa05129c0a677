"""What the browser tests share besides their fixtures: the page's selectors, signing in and
sending, waiting for a reply to be final, and conversations stored as if they had happened."""

import re

from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from tests.conftest import PASSWORD

TIMEOUT_MS = 5_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Messages the server rendered, not the optimistic echo chat.js shows while a request is in flight.
SAVED = "#message-list article.message:not([data-optimistic])"
BODY = ".message__body"
# The body of a reply still being written: it carries the address of its stream until `done`.
WRITING = "#message-list [data-stream-url]"
COMPOSER = "#composer textarea[name=content]"
COUNT_TO_TWELVE = "one two three four five six seven eight nine ten eleven twelve"
MARKDOWN_REPLY = '''## Sorting in Python

Use **`sorted()`** for a new list, or `list.sort()` to sort in place:

| Function | Returns | Stable |
|:---------|:--------|-------:|
| `sorted(items)` | a new list | yes |
| `items.sort()` | `None` | yes |

```python
def by_length(words: list[str]) -> list[str]:
    """Shortest first; equal lengths keep their order."""
    return sorted(words, key=len)
```

> Sorting is stable: items that compare equal keep their original order.

- See [the Sorting HOW TO](https://docs.python.org/3/howto/sorting.html)
- ~~Use `cmp=`~~ (gone since Python 3)
'''


class FullLoads:
    """Records every document request of the main frame: htmx swaps and pushState make none."""

    def __init__(self, page: Page):
        self.urls: list[str] = []
        page.on("request", self._record)
        self._page = page

    def _record(self, request) -> None:
        if request.is_navigation_request() and request.frame == self._page.main_frame:
            self.urls.append(request.url)


def sign_in(page: Page, live_server, user) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/")
    # The URL changes before the page's deferred scripts have run: an Enter pressed before
    # chat.js listens adds a line instead of sending (seen once in CI on a loaded machine).
    page.wait_for_load_state("load")


def expect_htmx_idle(page: Page) -> None:
    """No htmx request, swap or settle is under way: content just swapped in is what a key reaches
    (a key pressed while htmx still swaps reaches an element about to be replaced)."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")).to_have_count(0)


def send(page: Page, text: str) -> None:
    textarea = page.locator(COMPOSER)
    textarea.fill(text)
    textarea.press("Enter")


def conversation_url(live_server, conversation: Conversation) -> str:
    return f"{live_server.url}/c/{conversation.pk}/"


def expect_finished(article, text: str, status: str = "complete") -> None:
    """The reply is final (its `done` event swapped in the server's HTML) and shows `text`."""
    expect(article).to_have_class(re.compile(rf"\bis-{status}\b"))
    expect(article.locator(BODY)).to_have_text(text)


def stored_conversation(owner, title: str, turns: list[tuple[str, str]]) -> Conversation:
    """A conversation saved as if it had happened: each turn a question and a finished reply."""
    conversation = Conversation.objects.create(owner=owner, title=title, model="mistralai/mistral-tiny")
    parent = None
    for question, answer in turns:
        parent = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=question, parent=parent
        )
        parent = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=answer,
            parent=parent,
            model=conversation.model,
        )
    conversation.current_message = parent
    conversation.save(update_fields=["current_message"])
    return conversation
