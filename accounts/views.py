"""The sign-in and sign-up pages, and a person's own usage."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.forms import SignupForm
from accounts.services import user_signup
from accounts.throttles import SignupThrottle, ThrottledLoginView
from common.security import client_ip
from usage import report


class LoginView(ThrottledLoginView):
    """The throttled sign-in page (accounts.throttles), with a link to sign up when ALLOW_SIGNUP is on."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "allow_signup": settings.ALLOW_SIGNUP}


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


@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """What the person has spent and used today and this month, and what is left of their limits."""
    return render(request, "registration/usage.html", {"summary": report.summary_for(request.user)})
