"""Token counts estimated from text: what a usage row counts when the upstream sends no usage
(a stopped reply, a server that sends none in streams), and what decides which turns of a long
conversation fit the model's context window.

No tokenizer is installed, and every model has its own, so this is a bound from the UTF-8
bytes chosen to stay above what real tokenizers (OpenAI's byte-level BPE, Mistral's and
Llama's SentencePiece) give for the text people send:

- letters, spaces and non-ASCII text: 1 token per 2 bytes. English prose runs at 4 or more
  bytes a token, so this is about twice the real count; accented Latin text (2 bytes a letter)
  and CJK (3 bytes a character, 1 or 2 tokens each) stay at or above the real count too;
- ASCII digits and punctuation: 1 token each, since SentencePiece splits every digit and
  punctuation is often a token of its own (halving them would undercount numbers and code);
- each chat message: MESSAGE_OVERHEAD more for its role and separators in the chat template,
  and REPLY_PRIMING once for the reply's opening.

The one case it can undercount is text a tokenizer falls back to single bytes for (rare
characters outside its vocabulary): a window is therefore never filled to the last token by
more than that. Counting every byte as a token would be safe there too, but would send about
a quarter of the history a window really holds.
"""

import math
import string

MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3

# Bytes that cost half a token: ASCII letters and whitespace, and every byte of a non-ASCII
# character. What remains after deleting them (digits, punctuation) costs a whole token each.
_HALF = (string.ascii_letters + string.whitespace).encode() + bytes(range(128, 256))


def estimate(text: str) -> int:
    """Tokens of `text`, on the high side (see the module's docstring)."""
    data = text.encode()
    whole = len(data.translate(None, _HALF))
    return whole + math.ceil((len(data) - whole) / 2)


def estimate_message(message: dict) -> int:
    """Tokens one chat message costs in a request."""
    return estimate(str(message.get("content") or "")) + MESSAGE_OVERHEAD


def estimate_messages(messages: list[dict]) -> int:
    """Tokens of a request's `messages`, the reply's opening included."""
    return sum(estimate_message(message) for message in messages) + REPLY_PRIMING


COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def counts_or_estimate(counts: dict, *, messages: list[dict], text: str | None) -> tuple[dict, bool]:
    """A call's token counts for its usage row, and whether they are estimated.

    The upstream's counts when it sent any; else, for a call it answered (`text` is not None:
    a stopped reply, a server that sends no usage in streams), the estimate from the request
    and the text; else (nothing was answered) the counts as they are.
    """
    if text is None or any(counts.get(name) is not None for name in COUNTS):
        return counts, False
    prompt, completion = estimate_messages(messages), estimate(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}, True
