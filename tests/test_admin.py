"""The admin as its users meet it: the Usage page, people and quotas, read-only conversations, sign-up."""

import csv
import io
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from conversations.models import Conversation, Message
from providers.models import ChatModel, ProviderKey
from tests.conftest import PASSWORD, CheckedClient, settle
from usage import rollups
from usage.models import Usage, UserQuota

pytestmark = pytest.mark.django_db


@pytest.fixture
def support(django_user_model):
    """Staff who may view usage and conversations, and nothing else."""
    user = django_user_model.objects.create_user(username="support", password=PASSWORD, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_usage", "view_conversation", "view_message"])
    )
    client = CheckedClient()
    client.force_login(user)
    return client


def _usage(user, tokens, *, days_ago=0, status="complete", key=None, model="mistralai/mistral-tiny"):
    """A usage row counted in the running totals, as usage.services.record does, on any day."""
    usage = Usage.objects.create(
        user=user,
        key=key,
        key_label=key.label if key else "",
        model=model,
        status=status,
        total_tokens=tokens,
        created_at=timezone.now() - timedelta(days=days_ago),
    )
    rollups.add(usage)
    return usage


def _bars(html: str, chart: str = "usage-chart") -> list[float]:
    svg = html.split(f'id="{chart}"')[1].split("</svg>")[0]
    return [float(height) for height in re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', svg)]


# --- Usage -------------------------------------------------------------------------------
def test_the_usage_page_shows_tokens_per_day_top_users_and_error_rate_per_key(support, alice, bob):
    key = ProviderKey.objects.create(label="Team key", secret_encrypted="x", last4="abcd")
    _usage(alice, 400)
    _usage(alice, 100, days_ago=3, status="error", key=key)
    _usage(bob, 50, key=key)
    _usage(bob, 999, days_ago=45)  # older than the page's 30 days

    response = support.get("/admin/usage/usage/")

    html = response.content.decode()
    assert response.status_code == 200
    bars = _bars(html)
    assert len(bars) == 30
    assert bars[-1] == 190.0  # today, the busiest day, fills the chart
    assert bars[-4] == pytest.approx(190 * 100 / 450, abs=0.1)
    assert bars.count(0) == 28
    assert "<script" not in html.split('id="content-main"')[1]  # server-rendered: no JavaScript chart
    top_users = html.split('id="usage-top-users"')[1].split("</table>")[0]
    assert top_users.index("alice") < top_users.index("bob")
    assert '<td class="number">500</td>' in top_users
    rates = html.split('id="usage-error-rates"')[1].split("</table>")[0]
    assert re.search(
        r"Team key</td><td class=\"number\">2</td><td class=\"number\">1</td><td class=\"number\">50.0 %", rates
    )
    assert "environment (AIMLAPI_API_KEY)" in rates


def test_the_usage_page_filters_by_user_key_and_model(support, alice, bob):
    key = ProviderKey.objects.create(label="Team key", secret_encrypted="x", last4="abcd")
    _usage(alice, 400)
    _usage(bob, 50, key=key, model="mistralai/mistral-small")

    by_user = support.get(f"/admin/usage/usage/?user={bob.pk}").content.decode()
    by_key = support.get("/admin/usage/usage/?key=env").content.decode()
    by_model = support.get("/admin/usage/usage/?model=mistralai/mistral-small").content.decode()

    assert "Tokens per day, last 30 days: 50 in all" in by_user
    assert "Tokens per day, last 30 days: 400 in all" in by_key
    assert "Tokens per day, last 30 days: 50 in all" in by_model


def test_the_usage_csv_export_has_a_row_per_call_and_honours_the_filters(support, alice, bob):
    _usage(alice, 400)
    _usage(bob, 50)
    Usage.objects.filter(user=bob).update(model="=HYPERLINK(evil)")

    response = support.get(f"/admin/usage/usage/export.csv?user={alice.pk}")
    everything = support.get("/admin/usage/usage/export.csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert rows[0][:5] == ["time", "user", "key", "model", "status"]
    assert [(row[1], row[2], row[8]) for row in rows[1:]] == [("alice", "environment", "400")]
    all_rows = list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))
    assert len(all_rows) == 3
    assert all_rows[2][3] == "'=HYPERLINK(evil)"  # a spreadsheet does not run it


def test_the_usage_page_and_export_are_closed_to_people_who_are_not_staff(client_alice, anon_client):
    for url in ("/admin/usage/usage/", "/admin/usage/usage/export.csv"):
        signed_in, anonymous = client_alice.get(url), anon_client.get(url)
        assert (signed_in.status_code, anonymous.status_code) == (302, 302)
        assert signed_in["Location"].startswith("/admin/login/")  # the admin's sign-in for staff
        assert anonymous["Location"].startswith(("/admin/login/", "/accounts/login/"))


def test_staff_without_the_usage_permission_are_forbidden(django_user_model):
    staff = django_user_model.objects.create_user(username="staff", password=PASSWORD, is_staff=True)
    client = CheckedClient()
    client.force_login(staff)

    assert client.get("/admin/usage/usage/").status_code == 403
    assert client.get("/admin/usage/usage/export.csv").status_code == 403


# --- People ------------------------------------------------------------------------------
def test_an_admin_sets_a_persons_quota_and_sees_their_usage(client_admin, alice, settings):
    settings.CHAT_MONTHLY_TOKEN_QUOTA = 100_000
    _usage(alice, 1234)
    page = client_admin.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert "1,234 tokens today (quota unlimited), 1,234 this month (quota 100,000)" in page

    data = {
        "username": "alice",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "chat_quota-TOTAL_FORMS": "1",
        "chat_quota-INITIAL_FORMS": "0",
        "chat_quota-MIN_NUM_FORMS": "0",
        "chat_quota-MAX_NUM_FORMS": "1",
        "chat_quota-0-daily_tokens": "5000",
        "chat_quota-0-monthly_tokens": "",
        "chat_quota-0-user": str(alice.pk),
    }
    response = client_admin.post(f"/admin/auth/user/{alice.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    quota = UserQuota.objects.get(user=alice)
    assert (quota.daily_tokens, quota.monthly_tokens) == (5000, None)
    page = client_admin.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert "(quota 5,000)" in page
    assert "AIMLAPI_API_KEY from the environment" in page


# --- Conversations: read-only for support ---------------------------------------------
def test_support_can_read_a_conversation_with_its_messages_escaped(support, alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Printer trouble")
    Message.objects.create(conversation=conversation, role="user", content="<script>alert('x')</script> help")

    listing = support.get("/admin/conversations/conversation/?q=alice").content.decode()
    by_title = support.get("/admin/conversations/conversation/?q=printer").content.decode()
    nobody = support.get("/admin/conversations/conversation/?q=zebra").content.decode()
    page = support.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()

    assert "Printer trouble" in listing
    assert "Printer trouble" in by_title
    assert "Printer trouble" not in nobody
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; help" in page
    assert "<script>alert(" not in page
    assert 'name="_save"' not in page  # read-only: nothing to save


def test_nobody_changes_or_adds_conversations_in_the_admin(support, client_admin, alice):
    conversation = Conversation.objects.create(owner=alice, model="m", title="Original")

    for client in (support, client_admin):
        changed = client.post(
            f"/admin/conversations/conversation/{conversation.pk}/change/", {"title": "Changed", "owner": alice.pk}
        )
        assert changed.status_code == 403
        assert client.get("/admin/conversations/conversation/add/").status_code == 403
    conversation.refresh_from_db()
    assert conversation.title == "Original"
    assert support.get(f"/admin/conversations/conversation/{conversation.pk}/delete/").status_code == 403


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/admin/conversations/usage/?user=7", "/admin/usage/usage/?user=7"),
        ("/admin/conversations/usage/export.csv", "/admin/usage/usage/export.csv"),
        ("/admin/conversations/providerkey/3/change/", "/admin/providers/providerkey/3/change/"),
        ("/admin/conversations/chatmodel/", "/admin/providers/chatmodel/"),
        ("/admin/conversations/userquota/", "/admin/usage/userquota/"),
    ],
)
def test_admin_addresses_from_before_the_models_moved_app_still_lead_there(client_admin, old, new):
    response = client_admin.get(old)

    assert (response.status_code, response["Location"]) == (301, new)


def test_the_conversations_admin_is_not_redirected(client_admin):
    assert client_admin.get("/admin/conversations/conversation/").status_code == 200


def test_the_model_catalogue_is_seeded_with_mistral_tiny():
    tiny = ChatModel.objects.get(model_id="mistralai/mistral-tiny")

    assert (tiny.display_name, tiny.context_window, tiny.enabled) == ("Mistral Tiny", 32000, True)


# --- Sign-up -------------------------------------------------------------------------------
def test_sign_up_does_not_exist_when_turned_off(anon_client, settings):
    settings.ALLOW_SIGNUP = False

    assert anon_client.get("/accounts/signup/").status_code == 404
    assert "Create an account" not in anon_client.get("/accounts/login/").content.decode()


def test_a_new_person_signs_up_and_starts_with_the_default_quota(anon_client, django_user_model, settings):
    settings.ALLOW_SIGNUP = True
    settings.CHAT_DAILY_TOKEN_QUOTA = 20_000
    assert 'href="/accounts/signup/"' in anon_client.get("/accounts/login/").content.decode()
    anon_client.get("/accounts/signup/")  # sets the CSRF cookie

    response = anon_client.post(
        "/accounts/signup/", {"username": "carol", "password1": PASSWORD, "password2": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
    carol = django_user_model.objects.get(username="carol")
    assert UserQuota.objects.get(user=carol).daily_tokens is None  # blank: the site default
    assert anon_client.get("/").status_code == 200  # signed in


def test_sign_up_checks_the_password_like_everywhere_else(anon_client, django_user_model, settings):
    settings.ALLOW_SIGNUP = True
    anon_client.get("/accounts/signup/")

    response = anon_client.post("/accounts/signup/", {"username": "carol", "password1": "123", "password2": "123"})

    assert response.status_code == 422
    assert "This password is too short" in response.content.decode()
    assert not django_user_model.objects.filter(username="carol").exists()


@pytest.mark.django_db(transaction=True)
def test_a_new_admin_adds_a_key_for_a_group_and_watches_the_usage_fill(client_admin, client_alice, alice, upstream):
    team = Group.objects.create(name="team")
    alice.groups.add(team)
    secret = "sk-walkthrough-secret-0000009999"
    added = client_admin.post(
        "/admin/providers/providerkey/add/",
        {"label": "Team key", "base_url": upstream.base_url, "secret": secret, "enabled": "on", "groups": [team.pk]},
    )
    key = ProviderKey.objects.get(label="Team key")
    tested = client_admin.post(
        "/admin/providers/providerkey/", {"action": "test_keys", "_selected_action": [key.pk]}, follow=True
    )

    upstream.reply("Five words in this reply")
    client_alice.post("/c/", {"content": "Hello", "client_id": str(uuid.uuid4())}, htmx=True)
    settle()
    page = client_admin.get("/admin/usage/usage/").content.decode()

    assert added.status_code == 302
    assert "“Team key” works" in tested.content.decode()
    assert upstream.completion_requests[0].headers["Authorization"] == f"Bearer {secret}"
    assert "Tokens per day, last 30 days: 14 in all" in page
    assert re.search(r"<td>alice</td><td class=\"number\">14</td>", page)
    assert re.search(r"Team key</td><td class=\"number\">1</td><td class=\"number\">0</td>", page)
    assert secret not in page


def test_one_address_can_create_only_a_few_accounts_an_hour(django_user_model, settings):
    from tests.conftest import CheckedClient

    settings.ALLOW_SIGNUP = True
    settings.SIGNUPS_PER_IP = 2
    statuses = []
    for name in ("carol", "dave", "erin"):
        client = CheckedClient(REMOTE_ADDR="203.0.113.9")
        client.get("/accounts/signup/")
        response = client.post("/accounts/signup/", {"username": name, "password1": PASSWORD, "password2": PASSWORD})
        statuses.append(response.status_code)

    assert statuses == [302, 302, 429]
    assert "Too many new accounts from your address" in response.content.decode()
    assert not django_user_model.objects.filter(username="erin").exists()
    other = CheckedClient(REMOTE_ADDR="198.51.100.7")
    other.get("/accounts/signup/")
    assert (
        other.post("/accounts/signup/", {"username": "erin", "password1": PASSWORD, "password2": PASSWORD}).status_code
        == 302
    )
