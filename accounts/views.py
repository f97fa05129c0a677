"""The sign-in and sign-up pages, and a person's own usage."""

from allauth.account.views import password_reset as allauth_password_reset
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.forms import SignInForm, SignupForm
from accounts.mfa import password_login
from accounts.models import SignInSettings
from accounts.services import user_signup
from accounts.sso import identity_providers
from accounts.throttles import SignupThrottle, ThrottledLoginView
from common.security import client_ip
from usage import report


class LoginView(ThrottledLoginView):
    """The throttled sign-in page (accounts.throttles), with a "Sign in with …" button per identity
    provider and a link to sign up when ALLOW_SIGNUP is on."""

    form_class = SignInForm

    def form_valid(self, form):
        # Through allauth's login stages: a person with an authenticator app is asked for a code.
        return password_login(self.request, form.get_user(), redirect_url=self.get_success_url())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return {
            **context,
            "allow_signup": settings.ALLOW_SIGNUP,
            "identity_providers": identity_providers(),
            "password_sign_in": SignInSettings.current().password_sign_in,
            "password_reset": settings.PASSWORD_RESET_BY_EMAIL,
        }


@login_not_required
@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account (only when ALLOW_SIGNUP is on), then sign in."""
    if not settings.ALLOW_SIGNUP:
        raise Http404("Sign-up is turned off.")
    if request.user.is_authenticated:
        return redirect("conversations:index")
    form = SignupForm(request.POST or None)
    throttle = SignupThrottle(client_ip(request))
    if request.method == "POST" and not throttle.allowed():
        form.add_error(None, "Too many new accounts from your address. Try again in an hour.")
        return render(request, "registration/signup.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        user = user_signup(form=form)
        throttle.created()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("conversations:index")
    return render(request, "registration/signup.html", {"form": form}, status=422 if form.errors else 200)


def email_addresses_closed(request: HttpRequest) -> HttpResponse:
    """allauth's own address page, closed: only an administrator sets a person's address."""
    raise Http404("Email addresses are set by an administrator.")


@login_not_required
def password_reset(request: HttpRequest) -> HttpResponse:
    """allauth's "email me a link" page, where this site can send email."""
    if not settings.PASSWORD_RESET_BY_EMAIL:
        raise Http404("Password reset by email is not set up on this site.")
    return allauth_password_reset(request)


@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """What the person has spent and used today and this month, and what is left of their limits."""
    return render(request, "registration/usage.html", {"summary": report.summary_for(request.user)})
