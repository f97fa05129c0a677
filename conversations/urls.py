from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("", views.index, name="index"),
    path("c/", views.conversation_create, name="create"),
    path("c/<int:pk>/", views.detail, name="detail"),
    path("c/<int:pk>/settings/", views.conversation_settings, name="settings"),
    path("c/<int:pk>/messages/", views.message_create, name="message-create"),
    path("c/<int:pk>/messages/<int:message_pk>/", views.message_detail, name="message-detail"),
    path("c/<int:pk>/messages/<int:message_pk>/retry/", views.message_retry, name="message-retry"),
]
