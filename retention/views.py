"""The person's own data page: how long things are kept, export, and "Delete all my data"."""

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from retention import selectors, services
from retention.forms import DeleteMyDataForm

PAGE = "retention/my_data.html"
ERASED = "retention_erased"  # the session key the confirmation page reads


def _page(request: HttpRequest, form: DeleteMyDataForm, status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{PAGE}#delete-form", {"form": form}, status=status)
    return render(request, PAGE, {"form": form, "data": selectors.my_data(user=request.user)}, status=status)


@require_GET
def my_data(request: HttpRequest) -> HttpResponse:
    return _page(request, DeleteMyDataForm(user=request.user))


@require_POST
def my_data_delete(request: HttpRequest) -> HttpResponse:
    form = DeleteMyDataForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            erased = services.user_data_delete(user=request.user)
        except services.RetentionError as error:
            form.add_error(None, str(error))
        else:
            logout(request)
            request.session[ERASED] = erased.as_dict()  # the new, anonymous session
            done = reverse("retention:deleted")
            return HttpResponseClientRedirect(done) if request.htmx else redirect(done)
    return _page(request, form, status=422)


@login_not_required
@never_cache
@require_GET
def deleted(request: HttpRequest) -> HttpResponse:
    """The confirmation after "Delete all my data", shown signed out."""
    return render(request, "retention/deleted.html", {"erased": request.session.get(ERASED)})
