"""common.links builds the same addresses as reverse(), without reversing each time."""

import pytest
from django.urls import reverse, set_script_prefix

from common.links import url_for

NAMES = [
    ("conversations:detail", (7,)),
    ("conversations:rename", (12345,)),
    ("conversations:message-stream", (7, 42)),
    ("conversations:message-retry", (987654321, 5)),
    ("conversations:message-switch", (1, 987654322)),
]


@pytest.mark.parametrize(("name", "ids"), NAMES)
def test_it_gives_what_reverse_gives(name, ids):
    assert url_for(name, *ids) == reverse(name, args=ids)


def test_it_follows_the_script_prefix_of_the_request():
    try:
        set_script_prefix("/chat/")
        assert url_for("conversations:detail", 3) == "/chat/c/3/" == reverse("conversations:detail", args=[3])
    finally:
        set_script_prefix("/")
    assert url_for("conversations:detail", 3) == "/c/3/"


def test_it_refuses_what_is_not_an_id():
    with pytest.raises(ValueError):
        url_for("conversations:detail", "3/../../admin")
