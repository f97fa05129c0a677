from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("", views.index, name="index"),
    path("c/", views.conversation_create, name="create"),
    path("c/list/", views.sidebar, name="sidebar"),
    path("c/<int:pk>/", views.detail, name="detail"),
    path("c/<int:pk>/settings/", views.conversation_settings, name="settings"),
    path("c/<int:pk>/messages/", views.message_create, name="message-create"),
    path("c/<int:pk>/messages/<int:message_pk>/stream/", views.message_stream, name="message-stream"),
    path("c/<int:pk>/messages/<int:message_pk>/stop/", views.message_stop, name="message-stop"),
    path("c/<int:pk>/messages/<int:message_pk>/retry/", views.message_retry, name="message-retry"),
    path("c/<int:pk>/messages/<int:message_pk>/regenerate/", views.message_regenerate, name="message-regenerate"),
    path("c/<int:pk>/messages/<int:message_pk>/edit/", views.message_edit, name="message-edit"),
    path("c/<int:pk>/messages/<int:message_pk>/show/", views.message_switch, name="message-switch"),
]
