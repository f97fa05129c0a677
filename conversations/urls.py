from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("", views.index, name="index"),
    path("c/", views.conversation_create, name="create"),
    path("c/list/", views.sidebar, name="sidebar"),
    path("c/<int:pk>/", views.detail, name="detail"),
    path("c/<int:pk>/settings/", views.conversation_settings, name="settings"),
    path("c/<int:pk>/older/", views.messages_older, name="older"),
    path("c/<int:pk>/manage/", views.conversation_manage, name="manage"),
    path("c/<int:pk>/rename/", views.conversation_rename, name="rename"),
    path("c/<int:pk>/pin/", views.conversation_pin, name="pin"),
    path("c/<int:pk>/archive/", views.conversation_archive, name="archive"),
    path("c/<int:pk>/delete/", views.conversation_delete, name="delete"),
    path("c/<int:pk>/restore/", views.conversation_restore, name="restore"),
    path("c/<int:pk>/export.<str:fmt>", views.conversation_export, name="export"),
    path("c/<int:pk>/share/", views.share_create, name="share"),
    path("c/<int:pk>/share/revoke/", views.share_revoke, name="share-revoke"),
    path("history/", views.history_page, name="history"),
    path("history/export.<str:fmt>", views.export_all, name="export-all"),
    path("s/<str:token>/", views.shared, name="shared"),
    path("c/<int:pk>/messages/", views.message_create, name="message-create"),
    path("c/<int:pk>/messages/<int:message_pk>/stream/", views.message_stream, name="message-stream"),
    path("c/<int:pk>/messages/<int:message_pk>/stop/", views.message_stop, name="message-stop"),
    path("c/<int:pk>/messages/<int:message_pk>/retry/", views.message_retry, name="message-retry"),
    path("c/<int:pk>/messages/<int:message_pk>/regenerate/", views.message_regenerate, name="message-regenerate"),
    path("c/<int:pk>/messages/<int:message_pk>/edit/", views.message_edit, name="message-edit"),
    path("c/<int:pk>/messages/<int:message_pk>/show/", views.message_switch, name="message-switch"),
]
