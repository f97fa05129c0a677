"""Addresses of conversations and messages, without a `reverse()` for each link.

A long conversation's page links every message to its actions, and the sidebar every
conversation: a hundred and more `reverse()` calls of about 0.1 ms each. Each URL name is
reversed once, with placeholder ids, and then filled in; urls.py stays the only place the
addresses are written.
"""

import functools

from django.urls import get_script_prefix, reverse

_PLACEHOLDERS = (987654321, 987654322, 987654323)


@functools.cache
def _pattern(name: str, script_prefix: str, arity: int) -> str:
    url = reverse(name, args=_PLACEHOLDERS[:arity]).replace("{", "{{").replace("}", "}}")
    for index, placeholder in enumerate(_PLACEHOLDERS[:arity]):
        url = url.replace(str(placeholder), f"{{{index}}}")
    return url


def url_for(name: str, *ids: int) -> str:
    """`reverse(name, args=ids)` for URLs whose arguments are all ids."""
    return _pattern(name, get_script_prefix(), len(ids)).format(*(int(value) for value in ids))
