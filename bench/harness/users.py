"""Simulated users: each has its own account, signs in through the login form and then does
what the chat page does, with the headers htmx and EventSource send."""

import asyncio
import json
import re
import time
from html.parser import HTMLParser
from urllib.parse import urlencode

from . import HOST
from .client import HttpConnection, Response

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) chatsite-stream-bench"
STREAM_URL = re.compile(r'data-stream-url="(/c/\d+/messages/(\d+)/stream/)"')


class ComposerForm(HTMLParser):
    """The fields htmx sends with the composer form (`<form id="composer">`) and the page's CSRF header."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.csrf_header = ""
        self._depth = 0
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body" and attrs.get("hx-headers"):
            self.csrf_header = json.loads(attrs["hx-headers"]).get("X-CSRFToken", "")
        if tag == "form" and attrs.get("id") == "composer":
            self._depth = 1
        elif tag == "form" and self._depth:
            self._depth += 1
        if not self._depth or not attrs.get("name"):
            return
        if tag == "input" and attrs.get("type") not in ("submit", "button", "checkbox", "radio"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[attrs["name"]] = ""
        elif tag == "select":
            self.fields[attrs["name"]] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "form" and self._depth:
            self._depth -= 1


class User:
    def __init__(self, index: int, port: int, password: str) -> None:
        self.index = index
        self.port = port
        self.origin = f"http://{HOST}:{port}"
        self.username = f"bench{index}"
        self.password = password
        self.cookies: dict[str, str] = {}
        self.fields: dict[str, str] = {}
        self.csrf_header = ""
        # With --follow-up: where the composer of this user's conversation posts, once it has one.
        self.follow_up = False
        self.send_path = ""

    def _headers(self, **extra) -> dict:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra)
        return headers

    def composer_headers(self) -> dict:
        """The headers of the composer's POST as htmx sends it from the home page."""
        return self._headers(
            Accept="*/*",
            Origin=self.origin,
            Referer=self.origin + "/",
            **{
                "Content-Type": "application/x-www-form-urlencoded",
                "HX-Request": "true",
                "HX-Current-URL": self.origin + "/",
                "HX-Target": "chat-pane",
                "HX-Trigger": "composer",
                "X-CSRFToken": self.csrf_header,
            },
        )

    def event_source_headers(self) -> dict:
        """The headers of the browser's EventSource GET of a reply's stream."""
        return self._headers(Accept="text/event-stream", Referer=self.origin + "/", **{"Cache-Control": "no-cache"})

    def stream_route(self, posted: Response) -> dict:
        """Extra headers of the stream's GET, given the POST's response (none: wherever it lands)."""
        return {}

    def _keep_cookies(self, response: Response) -> None:
        for name, value in response.headers:
            if name == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]

    async def sign_in(self) -> None:
        """The login form, then the chat page (as a browser does after the redirect)."""
        conn = await HttpConnection.open(HOST, self.port)
        try:
            page = await conn.request("GET", "/accounts/login/", self._headers(Accept="text/html"))
            self._keep_cookies(page)
            token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body())
            if page.status != 200 or not token:
                raise RuntimeError(f"{self.username}: login page answered {page.status}")
            form = {"csrfmiddlewaretoken": token.group(1).decode(), "username": self.username}
            form.update(password=self.password, next="")
            headers = self._headers(
                Accept="text/html",
                Origin=self.origin,
                Referer=self.origin + "/accounts/login/",
                **{"Content-Type": "application/x-www-form-urlencoded"},
            )
            if conn.closed:
                conn = await HttpConnection.open(HOST, self.port)
            login = await conn.request("POST", "/accounts/login/", headers, urlencode(form).encode())
            self._keep_cookies(login)
            if login.status != 302 or "sessionid" not in self.cookies:
                raise RuntimeError(f"{self.username}: sign-in failed with HTTP {login.status}")
            if conn.closed:
                conn = await HttpConnection.open(HOST, self.port)
            index = await conn.request("GET", "/", self._headers(Accept="text/html"))
            self._keep_cookies(index)
            parser = ComposerForm()
            parser.feed(index.body().decode())
            if index.status != 200 or "content" not in parser.fields or not parser.csrf_header:
                raise RuntimeError(f"{self.username}: the chat page answered {index.status} without a composer")
            self.fields, self.csrf_header = parser.fields, parser.csrf_header
        finally:
            conn.close()


async def sign_in_all(users: list, concurrency: int) -> None:
    """Sign every user in through the login form, `concurrency` at a time (hashing a password
    costs CPU; all at once would only queue in the server)."""
    limit = asyncio.Semaphore(concurrency)

    async def sign_in(user) -> None:
        async with limit:
            await user.sign_in()

    began = time.monotonic()
    await asyncio.gather(*(sign_in(user) for user in users))
    print(f"{len(users)} users signed in ({time.monotonic() - began:.1f} s).", flush=True)
