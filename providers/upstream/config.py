"""Where an upstream is and how hard to try it."""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings


@dataclass(frozen=True)
class UpstreamConfig:
    """Where the upstream is and how hard to try. Built directly it makes one attempt and has
    no breaker; `from_settings` gives the configured retries, budget and breaker."""

    base_url: str
    api_key: str = field(repr=False)  # never in a repr, a traceback or a log line
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    # How an admin finds this key, for the log lines of 401 and the like.
    key_name: str = "AIMLAPI_API_KEY"
    # The stored key's label, which names this upstream in the messages a person reads.
    label: str = ""
    # Further attempts after the first, for failures before any reply text (see retries.wait).
    retries: int = 0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    # A 429 whose Retry-After asks for longer than this is not waited for: it fails at once.
    retry_after_max: float = 20.0
    # Seconds for all attempts and waits of one turn until the reply starts; 0: no limit.
    turn_budget: float = 0.0
    # After this many failures in a row (within breaker_window s), calls fail at once for
    # breaker_cooldown s; 0 turns the breaker off.
    breaker_failures: int = 0
    breaker_window: float = 60.0
    breaker_cooldown: float = 30.0

    @classmethod
    def from_settings(cls) -> "UpstreamConfig":
        return cls(
            base_url=settings.AIMLAPI_BASE_URL,
            api_key=settings.AIMLAPI_API_KEY,
            connect_timeout=settings.AIMLAPI_CONNECT_TIMEOUT,
            read_timeout=settings.AIMLAPI_TIMEOUT,
            retries=settings.AIMLAPI_RETRIES,
            retry_base_delay=settings.AIMLAPI_RETRY_BASE_DELAY,
            retry_max_delay=settings.AIMLAPI_RETRY_MAX_DELAY,
            retry_after_max=settings.AIMLAPI_RETRY_AFTER_MAX,
            turn_budget=settings.AIMLAPI_TURN_BUDGET,
            breaker_failures=settings.AIMLAPI_BREAKER_FAILURES,
            breaker_window=settings.AIMLAPI_BREAKER_WINDOW,
            breaker_cooldown=settings.AIMLAPI_BREAKER_COOLDOWN,
        )

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url
