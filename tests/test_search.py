"""Search: titles and messages of the person's own conversations, with highlighted, escaped snippets.

These run on the database the suite runs on: SQLite's FTS5 by default, PostgreSQL's
full-text search with DATABASE_URL=postgres://...
"""

import pytest
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.search import highlight, search_messages

pytestmark = pytest.mark.django_db


def _conversation(owner, title, *contents, **fields):
    conversation = Conversation.objects.create(owner=owner, model="m", title=title, **fields)
    parent = None
    for number, content in enumerate(contents):
        role = "user" if number % 2 == 0 else "assistant"
        parent = Message.objects.create(conversation=conversation, role=role, content=content, parent=parent)
    return conversation


def test_it_finds_a_word_in_a_message_and_links_to_it(alice, client_alice):
    conversation = _conversation(alice, "Travel", "Where should I go?", "Consider the volcanoes of Iceland in spring.")
    message = conversation.messages.get(role="assistant")

    html = client_alice.get("/c/list/?q=volcanoes", htmx=True).content.decode()

    assert f'href="/c/{conversation.pk}/?m={message.pk}#message-{message.pk}"' in html
    assert "<mark>volcanoes</mark>" in html
    page = client_alice.get(f"/c/{conversation.pk}/?m={message.pk}").content.decode()
    assert f'id="message-{message.pk}"' in page


def test_it_finds_titles_and_the_start_of_a_word(alice):
    _conversation(alice, "Kubernetes upgrade plan", "hello")

    hits = search_messages(alice, "kubern")

    assert [(hit.title, hit.message_id) for hit in hits] == [("Kubernetes upgrade plan", None)]
    assert "<mark>Kubernetes</mark>" in hits[0].snippet


def test_every_word_must_match(alice):
    _conversation(alice, "a", "red apples and green pears")
    _conversation(alice, "b", "red cars")

    hits = search_messages(alice, "red pears")

    assert [hit.title for hit in hits] == ["a"]


def test_snippets_escape_the_message_and_only_mark_the_match(alice):
    _conversation(alice, "x", 'Run <script>alert("xss")</script> then the payload <img src=x onerror=alert(1)>')

    html = str(search_messages(alice, "payload")[0].snippet)

    assert "<script>" not in html and "<img" not in html
    assert "&lt;img" in html
    assert "<mark>payload</mark>" in html


def test_highlight_balances_stray_marks_in_the_text():
    assert str(highlight("a \ue001 b \ue000c")) == "a  b <mark>c</mark>"


def test_search_syntax_in_the_query_is_just_text(alice):
    _conversation(alice, "x", "the NEAR operator and quotes")

    for query in ['"', "NEAR(", "a OR", "*", "col:umn", "'", "!&|", "  "]:
        search_messages(alice, query)  # no syntax error
    assert [hit.title for hit in search_messages(alice, 'NEAR "operator')] == ["x"]


def test_it_never_returns_another_persons_text(alice, bob, client_bob):
    _conversation(alice, "Alice's diary", "my secret pineapple recipe")
    _conversation(bob, "Bob's chat", "I like pineapple too")

    html = client_bob.get("/c/list/?q=pineapple", htmx=True).content.decode()
    hits = search_messages(bob, "pineapple")

    assert [hit.title for hit in hits] == ["Bob's chat"]
    assert "secret" not in html and "Alice" not in html
    assert search_messages(bob, "diary") == []


def test_deleted_conversations_are_not_found_and_archived_ones_are(alice):
    _conversation(alice, "gone", "the zeppelin story", deleted_at=timezone.now())
    _conversation(alice, "kept away", "another zeppelin story", archived_at=timezone.now())

    hits = search_messages(alice, "zeppelin")

    assert [(hit.title, hit.archived) for hit in hits] == [("kept away", True)]


def test_edited_and_renamed_text_is_found_by_its_new_words(alice):
    conversation = _conversation(alice, "old name", "first draft")
    message = conversation.messages.get()

    Message.objects.filter(pk=message.pk).update(content="second version")
    Conversation.objects.filter(pk=conversation.pk).update(title="new name")

    assert search_messages(alice, "draft") == []
    assert [hit.message_id for hit in search_messages(alice, "version")] == [message.pk]
    assert [hit.title for hit in search_messages(alice, "new name")] == ["new name"]


def test_newest_matches_come_first_and_are_limited(alice):
    for number in range(40):
        _conversation(alice, f"c{number}", f"lorem number {number}")

    hits = search_messages(alice, "lorem", limit=30)

    assert len(hits) == 30
    assert hits[0].title == "c39" and hits[-1].title == "c10"


@pytest.mark.parametrize("conversations", [3, 40])
def test_search_costs_the_same_queries_however_much_matches(
    alice, client_alice, conversations, django_assert_max_num_queries
):
    for number in range(conversations):
        _conversation(alice, f"note {number}", "banana bread", "more banana")
    client_alice.get("/")

    # session, user, and at most two queries each for titles and messages
    with django_assert_max_num_queries(6):
        response = client_alice.get("/c/list/?q=banana", htmx=True)

    assert response.status_code == 200


def test_the_search_box_works_without_javascript(alice, client_alice):
    _conversation(alice, "Gardening", "tomatoes need sun")

    html = client_alice.get("/?q=tomatoes").content.decode()

    assert "<mark>tomatoes</mark>" in html


def test_a_word_of_one_or_two_letters_is_not_taken_as_a_prefix(alice):
    _conversation(alice, "Kubernetes", "k8s")

    assert search_messages(alice, "ku") == []
    assert [hit.title for hit in search_messages(alice, "kub")] == ["Kubernetes"]
