"""Sign-in and sign-up throttles: counted in the cache, so every process (with Redis) shares them."""

import contextlib
import hashlib

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import ValidationError

from common import clock, counters
from common.security import client_ip


class LoginThrottle:
    """Counts sign-in attempts per account and per address in the cache (shared by every process with Redis).

    After LOGIN_FAILURES_PER_ACCOUNT failures for one username, or LOGIN_FAILURES_PER_IP from one
    address, within LOGIN_LOCKOUT_SECONDS, further attempts are refused, even with the right
    password, until that time has passed since the last failure. That time is read from
    common.clock: the cache's own timeouts only clean up.

    An attempt is counted (atomically) *before* its password is checked: counted after, a burst
    of parallel guesses would all pass the check before the first failure was counted. The
    attempt that turns out right is taken back off the address's count.
    """

    def __init__(self, username: str, ip: str):
        # Hashed: cache keys must be short and safe, and the cache need not hold user names.
        self._keys = {
            "account": (self._key("account", username.strip().lower()), settings.LOGIN_FAILURES_PER_ACCOUNT),
            "ip": (self._key("ip", ip), settings.LOGIN_FAILURES_PER_IP),
        }
        self._attempts = {kind: 0 for kind in self._keys}

    @staticmethod
    def _key(kind: str, value: str) -> str:
        return f"login-failures:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"

    def seconds_locked(self) -> int:
        """How long sign-in stays refused; 0 when it is allowed."""
        now = clock.time()
        until = max((cache.get(f"{key}:until") or 0) for key, _ in self._keys.values())
        return max(0, int(until - now + 0.999))

    def attempt(self) -> int:
        """Count this attempt before its password is checked: 0 when it may be checked, else
        the seconds sign-in stays refused (the lock, or the whole window for an attempt past a
        limit whose earlier attempts are still being checked)."""
        if seconds := self.seconds_locked():
            return seconds
        window, now = settings.LOGIN_LOCKOUT_SECONDS, clock.time()
        over = False
        for kind, (key, limit) in self._keys.items():
            if (cache.get(f"{key}:last") or now) <= now - window:  # the window since the last failure ended
                cache.delete_many([key, f"{key}:last", f"{key}:until"])
            self._attempts[kind] = counters.count(key, timeout=window)
            over = over or self._attempts[kind] > limit
        return window if over else 0

    def failed(self) -> None:
        window, now = settings.LOGIN_LOCKOUT_SECONDS, clock.time()
        for kind, (key, limit) in self._keys.items():
            cache.touch(key, window)  # the window runs from the last failure
            cache.set(f"{key}:last", now, timeout=window)
            if self._attempts[kind] >= limit:
                cache.set(f"{key}:until", now + window, timeout=window)

    def succeeded(self) -> None:
        """A correct password clears the account's count (not the address's: one person's success
        must not let an attacker on the same address guess on), and is no failure of the address."""
        key, _ = self._keys["account"]
        cache.delete_many([key, f"{key}:last", f"{key}:until"])
        self._take_back("ip")

    def not_checked(self) -> None:
        """The attempt ended without a password check (e.g. an inactive account): it is no failure."""
        for kind in self._keys:
            self._take_back(kind)

    def _take_back(self, kind: str) -> None:
        key, _ = self._keys[kind]
        with contextlib.suppress(ValueError):  # already expired or cleared
            cache.decr(key)


class SignupThrottle:
    """At most SIGNUPS_PER_IP new accounts from one address per hour, counted in the cache."""

    WINDOW = 3600

    def __init__(self, ip: str):
        self._key = LoginThrottle._key("signups", ip)

    def allowed(self) -> bool:
        limit = settings.SIGNUPS_PER_IP
        return not limit or (cache.get(self._key) or 0) < limit

    def created(self) -> None:
        counters.count(self._key, timeout=self.WINDOW)


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-in attempts. Try again in %(minutes)s.",
    }

    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if not (username and password):
            return super().clean()  # a field is missing: no password is checked
        throttle = LoginThrottle(username, client_ip(self.request))
        if seconds := throttle.attempt():
            minutes = (seconds + 59) // 60
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": f"{minutes} minute{'s' if minutes != 1 else ''}"},
            )
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if error.code == "invalid_login":
                throttle.failed()
            else:
                throttle.not_checked()
            raise
        throttle.succeeded()
        return cleaned


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error("__all__", code="throttled"):
            response.status_code = 429
        return response
