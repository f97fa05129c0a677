"""Small things a polished chat site gets right: the shared page, a revoked link, sign-up errors,
the dark theme's code, the admin's icon and the usage chart's axes."""

import colorsys
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.utils import timezone

from conversations.markdown import pygments_css
from conversations.models import Conversation, Message, ShareLink
from tests.conftest import PASSWORD
from usage.models import Usage

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parent.parent / "static"


def _shared_chat(owner) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, model="m", title="Shared chat")
    question = Message.objects.create(conversation=conversation, role="user", content="What is 2+2?")
    conversation.current_message = Message.objects.create(
        conversation=conversation, role="assistant", content="Four.", parent=question
    )
    conversation.save()
    return conversation


def _roles(html: str) -> list[str]:
    return re.findall(r'<div class="message__role">([^<]*)</div>', html)


# --- The shared page ---------------------------------------------------------------------


def test_the_shared_page_calls_the_person_user_and_never_by_their_name(alice, client_alice, anon_client):
    alice.first_name = "Alice"
    alice.save()
    conversation = _shared_chat(alice)
    client_alice.post(f"/c/{conversation.pk}/share/", htmx=True)
    link = ShareLink.objects.get(conversation=conversation)

    html = anon_client.get(link.get_absolute_url()).content.decode()

    assert _roles(html) == ["User", "Assistant"]
    assert "Person" not in html
    assert "Alice" not in html and "alice" not in html  # the share panel promises: not your name


def test_a_revoked_link_says_so_to_a_visitor_with_no_way_into_the_app(alice, client_alice, anon_client):
    conversation = _shared_chat(alice)
    client_alice.post(f"/c/{conversation.pk}/share/", htmx=True)
    url = ShareLink.objects.get(conversation=conversation).get_absolute_url()
    client_alice.post(f"/c/{conversation.pk}/share/revoke/", htmx=True)

    for response in (anon_client.get(url), anon_client.get("/s/never-a-token/")):
        html = response.content.decode()
        assert response.status_code == 404
        assert "revoked" in html and "never existed" in html
        assert "Back to your conversations" not in html
        assert 'href="/"' not in html


def test_a_revoked_link_still_leads_its_signed_in_owner_back_to_the_conversations(alice, client_alice):
    conversation = _shared_chat(alice)
    client_alice.post(f"/c/{conversation.pk}/share/", htmx=True)
    url = ShareLink.objects.get(conversation=conversation).get_absolute_url()
    client_alice.post(f"/c/{conversation.pk}/share/revoke/", htmx=True)

    html = client_alice.get(url).content.decode()

    assert "revoked" in html
    assert '<a href="/">Back to your conversations</a>' in html


# --- Sign-up ------------------------------------------------------------------------------


class _FieldErrors(HTMLParser):
    """The error texts inside each sign-up field's <div class="field">, by the field's input name."""

    def __init__(self):
        super().__init__()
        self.errors: dict[str, list[str]] = {}
        self._field = None
        self._depth = 0
        self._in_error = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div":
            if "field" in (attrs.get("class") or "").split():
                self._field, self._depth = "", 0
            elif self._field is not None:
                self._depth += 1
        if self._field == "" and tag == "input":
            self._field = attrs.get("name")
            self.errors.setdefault(self._field, [])
        self._in_error = tag == "p" and "form-error" in (attrs.get("class") or "")

    def handle_endtag(self, tag):
        if tag == "div" and self._field is not None:
            if self._depth == 0:
                self._field = None
            else:
                self._depth -= 1
        if tag == "p":
            self._in_error = False

    def handle_data(self, data):
        if self._in_error and self._field:
            self.errors[self._field].append(data.strip())


def _signup_errors(anon_client, password1: str, password2: str) -> dict[str, list[str]]:
    anon_client.get("/accounts/signup/")  # sets the CSRF cookie
    response = anon_client.post(
        "/accounts/signup/", {"username": "carol", "password1": password1, "password2": password2}
    )
    assert response.status_code == 422
    parser = _FieldErrors()
    parser.feed(response.content.decode())
    return parser.errors


def test_sign_up_shows_what_is_wrong_with_a_password_under_the_password(anon_client, settings):
    settings.ALLOW_SIGNUP = True

    errors = _signup_errors(anon_client, "abc", "abc")

    assert any("too short" in error for error in errors["password1"]), errors
    assert errors["password2"] == []


def test_sign_up_shows_passwords_that_differ_under_the_confirmation(anon_client, settings):
    settings.ALLOW_SIGNUP = True

    errors = _signup_errors(anon_client, PASSWORD, PASSWORD + "x")

    assert errors["password1"] == []
    assert any("didn’t match" in error or "didn't match" in error for error in errors["password2"]), errors


# --- The dark theme's code ------------------------------------------------------------------


def _hue(hex_colour: str) -> float:
    red, green, blue = (int(hex_colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return colorsys.rgb_to_hls(red, green, blue)[0] * 360


def test_code_in_the_dark_theme_sits_on_a_background_of_the_dark_palette():
    app_css = (STATIC / "css" / "app.css").read_text()
    code_css = (STATIC / "css" / "code.css").read_text()
    dark_palette = app_css.split(':root[data-theme="dark"]')[1].split("}")[0]
    page_background = re.search(r"--bg:\s*(#[0-9a-fA-F]{6})", dark_palette).group(1)
    code_background = re.search(
        r":root\[data-theme=dark\] \.code-block pre \{ background: (#[0-9a-fA-F]{6})", code_css
    ).group(1)

    difference = abs(_hue(code_background) - _hue(page_background))

    assert min(difference, 360 - difference) < 30, f"code {code_background} on a {page_background} page"
    assert pygments_css() in code_css, "static/css/code.css is stale: regenerate it (its first lines say how)"


# --- The admin ------------------------------------------------------------------------------


def test_the_admin_has_the_site_icon(anon_client, client_admin):
    icon = '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">'

    assert icon in anon_client.get("/admin/login/").content.decode()
    assert icon in client_admin.get("/admin/").content.decode()
    assert icon in client_admin.get("/admin/usage/usage/").content.decode()


def test_the_usage_chart_labels_its_days_and_its_token_counts(client_admin, alice):
    Usage.objects.create(user=alice, model="m", status="complete", total_tokens=1200)
    Usage.objects.create(
        user=alice, model="m", status="complete", total_tokens=300, created_at=timezone.now() - timedelta(days=7)
    )

    html = client_admin.get("/admin/usage/usage/").content.decode()

    chart = html.split('id="usage-chart"')[1].split("</svg>")[0]
    today, week_ago = timezone.localdate(), timezone.localdate() - timedelta(days=7)
    days = re.findall(r'<text class="usage-chart__day"[^>]*>([^<]+)</text>', chart)
    assert days[-1] == f"{today.day} {today:%b}" and f"{week_ago.day} {week_ago:%b}" in days
    assert len(days) == 5  # every seventh day, ending today
    counts = re.findall(r'<text class="usage-chart__count"[^>]*>([^<]+)</text>', chart)
    assert counts == ["0", "600", "1.2k"]
    assert chart.count('class="usage-chart__axis"') == 2
    assert "<title>" in chart and ": 1200 tokens</title>" in chart  # each bar's value on hover
    assert len(re.findall(r"<rect ", chart)) == 30
