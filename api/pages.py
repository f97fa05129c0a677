"""The person's own page of access tokens: create (shown once), list, revoke. Signed in by session."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api import tokens
from api.forms import TokenForm
from api.models import AccessToken


@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form, created = TokenForm(request.POST or None), None
    if request.method == "POST" and form.is_valid():
        token, plain = tokens.token_create(
            owner=request.user,
            name=form.cleaned_data["name"],
            expires_at=form.expires_at(),
            store_history=form.cleaned_data["store_history"],
        )
        # Rendered, not redirected: the token exists in this response and nowhere else (a redirect
        # would have to keep it in the session, that is in the database, until the next page).
        created, form = {"token": token, "plain": plain}, TokenForm()
    context = {
        "form": form,
        "created": created,
        "tokens": AccessToken.objects.filter(owner=request.user),
        "api_enabled": settings.API_ENABLED,
    }
    response = render(request, "api/tokens.html", context)
    response["Cache-Control"] = "no-store"  # the page may hold a token: no cache keeps it
    return response


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(AccessToken, pk=pk, owner=request.user)
    tokens.token_revoke(token=token)
    messages.success(request, f"The token “{token.name}” is revoked: tools using it are refused from now on.")
    return redirect("api:tokens")
