from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts.views import LoginView, email_addresses_closed, password_reset, signup, usage

urlpatterns = [
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/usage/", usage, name="usage"),
    # Everyone changes their own password here (the admin's page is for staff only). The
    # templates have names of their own: Django's would also restyle the admin's pages.
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(
            template_name="registration/password_change.html", success_url=reverse_lazy("password_change_done")
        ),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/password_changed.html"),
        name="password_change_done",
    ),
]

urlpatterns += [
    # allauth's page where people add email addresses themselves stays closed: an address is
    # what links a local account to the identity provider's person, so only an administrator sets it.
    path("accounts/email/", email_addresses_closed, name="email_addresses_closed"),
    # Password reset is allauth's page, open only where email can be sent (PASSWORD_RESET_BY_EMAIL).
    path("accounts/password/reset/", password_reset, name="password_reset_by_email"),
]
