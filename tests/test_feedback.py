"""Feedback on replies: 👍/👎 with a reason, given, changed and removed by the conversation's owner
only; the admin's counts per model and the CSV for staff with the export permission."""

import csv
import io
import re

import pytest
from django.contrib.auth.models import Permission

from conversations.models import Conversation, Message
from feedback.models import Feedback
from tests.conftest import CheckedClient

pytestmark = pytest.mark.django_db


def _turn(owner, question="What is 2+2?", answer="4", *, model="acme/large", status=Message.Status.COMPLETE):
    conversation = Conversation.objects.create(owner=owner, model=model, title="Sums")
    asked = Message.objects.create(conversation=conversation, role="user", content=question)
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content=answer, parent=asked, model=model, status=status
    )
    conversation.current_message = reply
    conversation.save(update_fields=["current_message"])
    return conversation, asked, reply


def _url(reply, action=""):
    return f"/c/{reply.conversation_id}/messages/{reply.pk}/feedback/{action}"


def _rows():
    return list(Feedback.objects.values_list("message_id", "user__username", "rating", "categories", "reason"))


def test_it_stores_a_thumbs_up_and_shows_it_pressed(client_alice, alice):
    _, _, reply = _turn(alice)

    response = client_alice.post(_url(reply), {"rating": "up"}, htmx=True)

    assert response.status_code == 200
    assert _rows() == [(reply.pk, "alice", "up", "", "")]
    html = response.content.decode()
    assert f'id="feedback-{reply.pk}-up"' in html and 'aria-pressed="true" aria-label="Good reply"' in html
    assert 'aria-pressed="false" aria-label="Bad reply"' in html
    # Pressing 👍 again takes it back.
    assert f'formaction="{_url(reply, "remove/")}"' in html


def test_it_changes_the_rating_and_keeps_one_per_person(client_alice, alice):
    _, _, reply = _turn(alice)
    client_alice.post(_url(reply), {"rating": "up", "reason": "Clear"}, htmx=True)

    response = client_alice.post(
        _url(reply), {"rating": "down", "categories": ["wrong", "length"], "reason": "  Off by one  "}, htmx=True
    )

    assert response.status_code == 200
    assert _rows() == [(reply.pk, "alice", "down", "wrong,length", "Off by one")]
    html = response.content.decode()
    assert 'value="wrong" checked' in html and 'value="harmful">' in html
    assert '<details class="feedback__details" open>' in html  # a fresh 👎 opens its reason


def test_categories_belong_to_a_thumbs_down_only(client_alice, alice):
    _, _, reply = _turn(alice)

    client_alice.post(_url(reply), {"rating": "up", "categories": ["wrong"]}, htmx=True)

    assert _rows() == [(reply.pk, "alice", "up", "", "")]


def test_it_removes_a_rating(client_alice, alice):
    _, _, reply = _turn(alice)
    client_alice.post(_url(reply), {"rating": "down", "reason": "Wrong"}, htmx=True)

    response = client_alice.post(_url(reply, "remove/"), htmx=True)

    assert response.status_code == 200
    assert _rows() == []
    assert response.content.decode().count('aria-pressed="false"') == 2


def test_without_htmx_it_rates_and_goes_back_to_the_reply(client_alice, alice):
    conversation, _, reply = _turn(alice)

    response = client_alice.post(_url(reply), {"rating": "down"})

    assert response.status_code == 302
    assert response["Location"] == f"/c/{conversation.pk}/#message-{reply.pk}"
    assert _rows() == [(reply.pk, "alice", "down", "", "")]


def test_the_chat_page_shows_the_persons_own_rating(client_alice, alice, bob):
    conversation, _, reply = _turn(alice)
    Feedback.objects.create(message=reply, user=alice, rating="down", reason="Too terse")

    html = client_alice.get(f"/c/{conversation.pk}/").content.decode()

    assert f'id="feedback-{reply.pk}-down"' in html
    assert 'aria-pressed="true" aria-label="Bad reply"' in html
    assert 'value="Too terse"' in html


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "Choose 👍 or 👎."),
        ({"rating": "sideways"}, "Select a valid choice"),
        ({"rating": "down", "categories": ["rude"]}, "Select a valid choice"),
        ({"rating": "up", "reason": "x" * 501}, "at most 500 characters"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_changes_nothing(client_alice, alice, data, error):
    _, _, reply = _turn(alice)
    Feedback.objects.create(message=reply, user=alice, rating="up", reason="Kept")

    response = client_alice.post(_url(reply), data, htmx=True)

    assert response.status_code == 422
    assert error in response.content.decode()
    assert _rows() == [(reply.pk, "alice", "up", "", "Kept")]
    assert 'aria-pressed="true" aria-label="Good reply"' in response.content.decode()  # still shown as it is


def test_a_reply_still_being_written_cannot_be_rated(client_alice, alice):
    _, _, reply = _turn(alice, answer="", status=Message.Status.STREAMING)

    response = client_alice.post(_url(reply), {"rating": "up"}, htmx=True)

    assert response.status_code == 409
    assert "Only a finished reply can be rated." in response.content.decode()
    assert _rows() == []


def test_a_persons_own_message_has_no_feedback(client_alice, alice):
    conversation, asked, _ = _turn(alice)

    response = client_alice.post(f"/c/{conversation.pk}/messages/{asked.pk}/feedback/", {"rating": "up"}, htmx=True)

    assert response.status_code == 404
    assert _rows() == []


def test_another_persons_reply_is_404_and_keeps_its_feedback(client_bob, alice, bob):
    _, _, reply = _turn(alice)
    bobs, _, _ = _turn(bob)
    Feedback.objects.create(message=reply, user=alice, rating="up")

    attempts = [
        client_bob.post(_url(reply), {"rating": "down"}, htmx=True),
        client_bob.post(_url(reply, "remove/"), htmx=True),
        # bob's own conversation with alice's message in the address
        client_bob.post(f"/c/{bobs.pk}/messages/{reply.pk}/feedback/", {"rating": "down"}, htmx=True),
        client_bob.post(f"/c/{bobs.pk}/messages/{reply.pk}/feedback/remove/"),
    ]

    assert [response.status_code for response in attempts] == [404, 404, 404, 404]
    assert _rows() == [(reply.pk, "alice", "up", "", "")]


def test_a_get_is_refused(client_alice, alice):
    _, _, reply = _turn(alice)

    assert client_alice.get(_url(reply)).status_code == 405


# --- The admin -------------------------------------------------------------------------


@pytest.fixture
def rated(alice, bob):
    """Feedback of two people on replies of two models, one reason written as a formula."""
    _, _, first = _turn(alice, "Add 2 and 2", "5", model="acme/large")
    _, _, second = _turn(bob, '=HYPERLINK("http://evil")', "@SUM(A1)", model="acme/large")
    _, _, third = _turn(alice, "Say hi", "Hi!", model="acme/small")
    Feedback.objects.create(message=first, user=alice, rating="down", categories="wrong", reason="=1+1 is not 5")
    Feedback.objects.create(message=second, user=bob, rating="up")
    Feedback.objects.create(message=third, user=alice, rating="up", reason="Friendly")
    return first, second, third


def _staff(django_user_model, *permissions):
    user = django_user_model.objects.create_user(username="carol", password="x", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="feedback"))
    client = CheckedClient()
    client.force_login(user)
    return client


def test_the_admin_counts_feedback_per_model_and_filters_it(client_admin, rated):
    page = client_admin.get("/admin/feedback/feedback/").content.decode()
    start = page.index('id="feedback-per-model"')
    table = page[start : page.index("</table>", start)]

    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td>(\d+)</td><td>(\d+)</td>', table)
    assert rows == [("acme/large", "1", "1"), ("acme/small", "1", "0")]  # model, 👍, 👎
    assert "Export CSV" in page

    only_small = client_admin.get("/admin/feedback/feedback/?model=acme/small").content.decode()
    assert "acme/large" not in only_small.split('id="feedback-per-model"')[1].split("</table>")[0]
    assert "Friendly" in only_small and "=1+1 is not 5" not in only_small


def test_the_csv_has_each_rating_with_its_prompt_and_reply_and_no_formulas(client_admin, rated):
    first, second, _ = rated

    response = client_admin.get("/admin/feedback/feedback/export.csv?model=acme/large")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["message_id"], row["user"], row["rating"]) for row in rows] == [
        (str(first.pk), "alice", "down"),
        (str(second.pk), "bob", "up"),
    ]
    assert (rows[0]["prompt"], rows[0]["reply"], rows[0]["categories"]) == ("Add 2 and 2", "5", "Not accurate")
    # Cells a spreadsheet would run as formulas are quoted.
    assert rows[0]["reason"] == "'=1+1 is not 5"
    assert (rows[1]["prompt"], rows[1]["reply"]) == ('\'=HYPERLINK("http://evil")', "'@SUM(A1)")


def test_staff_without_the_export_permission_see_the_list_but_get_no_csv(django_user_model, rated):
    client = _staff(django_user_model, "view_feedback")

    page = client.get("/admin/feedback/feedback/")
    export = client.get("/admin/feedback/feedback/export.csv")

    assert page.status_code == 200 and "Export CSV" not in page.content.decode()
    assert export.status_code == 403


def test_staff_with_the_export_permission_get_the_csv(django_user_model, rated):
    client = _staff(django_user_model, "view_feedback", "export_feedback")

    response = client.get("/admin/feedback/feedback/export.csv")

    assert response.status_code == 200
    assert len(b"".join(response.streaming_content).decode().strip().splitlines()) == 4  # header + 3


def test_people_without_staff_rights_get_no_admin_and_no_csv(client_alice, rated):
    response = client_alice.get("/admin/feedback/feedback/export.csv")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
