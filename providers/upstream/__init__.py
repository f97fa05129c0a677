"""The one package that talks to the upstream: an OpenAI-compatible chat completions API.

Nothing else in chatsite imports `requests` or knows about HTTP status codes. Every failure
comes out as `UpstreamError`: a code and the data around it, never the API key or the raw
response body, and no sentence (`providers.wording` writes those).

`client` makes the calls; `session` sends one request; `retries` tries again before the first
byte; `breaker` fails fast after failures in a row; `stream` reads a streamed reply and
`completion` a whole one.
"""

from .client import chat_completion, list_models, open_stream
from .completion import Completion
from .config import UpstreamConfig
from .errors import UpstreamError
from .stream import CompletionStream

__all__ = [
    "Completion",
    "CompletionStream",
    "UpstreamConfig",
    "UpstreamError",
    "chat_completion",
    "list_models",
    "open_stream",
]
