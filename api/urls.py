from django.urls import path, re_path

from api import pages, views

app_name = "api"

urlpatterns = [
    path("v1/models", views.models, name="models"),
    path("v1/chat/completions", views.chat_completions, name="chat_completions"),
    re_path(r"^v1(?:/(?P<rest>.*))?$", views.not_found),
    path("accounts/tokens/", pages.token_list, name="tokens"),
    path("accounts/tokens/<int:pk>/revoke/", pages.token_revoke, name="token_revoke"),
]
