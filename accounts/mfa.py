"""Two-factor sign-in (allauth.mfa) as chatsite uses it: password sign-in goes through allauth's
login stages, and staff must set up an authenticator app when the sign-in settings require it."""

from allauth.account.internal.flows.login import get_authentication_records, perform_login, record_authentication
from allauth.account.models import Login
from allauth.mfa.models import Authenticator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import SignInSettings


def password_login(request: HttpRequest, user, *, redirect_url: str) -> HttpResponse:
    """Sign in a person whose password was right: allauth asks for their code first when they have one."""
    # A password just typed counts as allauth's reauthentication too (for its usual 5 minutes), so
    # setting up an app right after signing in does not ask for the password again.
    record_authentication(request, user, method="password", username=user.get_username(), reauthenticated=True)
    return perform_login(request, Login(user=user, redirect_url=redirect_url))


def must_set_up_mfa(request: HttpRequest) -> bool:
    """A staff member signed in with a password, without an authenticator, where staff need one."""
    user = request.user
    if not (user.is_authenticated and user.is_staff):
        return False
    methods = {record.get("method") for record in get_authentication_records(request, user)}
    if methods and methods <= {"socialaccount"}:
        return False  # signed in through the identity provider, whose own sign-in applies
    if not SignInSettings.current().mfa_required_for_staff:
        return False
    return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class StaffMFAMiddleware:
    """Sends staff who must set up two-factor sign-in to allauth's set-up page until they have."""

    # The set-up page itself, what it may lead to (the password check before it), and signing out.
    OPEN = ("/accounts/2fa/", "/accounts/reauthenticate/", "/accounts/logout/", "/static/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(self.OPEN) and must_set_up_mfa(request):
            set_up = reverse("mfa_activate_totp") + "?required=1"
            return HttpResponseClientRedirect(set_up) if getattr(request, "htmx", False) else redirect(set_up)
        return self.get_response(request)
