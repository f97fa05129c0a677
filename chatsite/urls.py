from django.contrib import admin
from django.urls import include, path, re_path, reverse
from django.views.generic import RedirectView

from common.health import healthz

# The admin pages of keys, models, usage and quotas moved with their models to the providers
# and usage apps; addresses bookmarked before that still lead there.
_MOVED_ADMIN = r"^admin/conversations/(?P<model>providerkey|chatmodel|usage|userquota)/(?P<rest>.*)$"


class _MovedAdminPage(RedirectView):
    permanent = True

    def get_redirect_url(self, model: str, rest: str) -> str:
        app = "providers" if model in ("providerkey", "chatmodel") else "usage"
        query = self.request.META.get("QUERY_STRING", "")
        return reverse("admin:app_list", args=[app]) + f"{model}/{rest}" + (f"?{query}" if query else "")


urlpatterns = [
    path("", include("accounts.urls")),
    # django-allauth's pages (providers, two-factor sign-in, password reset) beside ours, which win
    # where both have an address (sign-in, sign-up, sign-out).
    path("accounts/", include("allauth.urls")),
    re_path(_MOVED_ADMIN, _MovedAdminPage.as_view()),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("api.urls")),
    path("", include("prompts.urls")),
    path("", include("retention.urls")),
    path("", include("feedback.urls")),
    path("", include("conversations.urls")),
]

admin.site.site_header = "chatsite administration"
admin.site.site_title = "chatsite admin"

handler400 = "common.errors.bad_request"
handler403 = "common.errors.permission_denied"
handler404 = "common.errors.page_not_found"
handler500 = "common.errors.server_error"
