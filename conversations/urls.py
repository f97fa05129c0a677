from django.urls import path

from conversations.views import folders, history, manage, pages, stream, turns

app_name = "conversations"

urlpatterns = [
    path("", pages.index, name="index"),
    path("c/", turns.conversation_create, name="create"),
    path("c/list/", pages.sidebar, name="sidebar"),
    path("c/<int:pk>/", pages.detail, name="detail"),
    path("c/<int:pk>/settings/", manage.conversation_settings, name="settings"),
    path("c/<int:pk>/model/", manage.conversation_model, name="model"),
    path("c/<int:pk>/title/", pages.conversation_title, name="title"),
    path("c/<int:pk>/older/", pages.messages_older, name="older"),
    path("c/<int:pk>/manage/", manage.conversation_manage, name="manage"),
    path("c/<int:pk>/rename/", manage.conversation_rename, name="rename"),
    path("c/<int:pk>/pin/", manage.conversation_pin, name="pin"),
    path("c/<int:pk>/archive/", manage.conversation_archive, name="archive"),
    path("c/<int:pk>/delete/", manage.conversation_delete, name="delete"),
    path("c/<int:pk>/restore/", manage.conversation_restore, name="restore"),
    path("c/<int:pk>/folder/", folders.conversation_move, name="move"),
    path("folders/", folders.folder_create, name="folder-create"),
    path("folders/<int:folder_pk>/rename/", folders.folder_rename, name="folder-rename"),
    path("folders/<int:folder_pk>/delete/", folders.folder_delete, name="folder-delete"),
    path("folders/<int:folder_pk>/collapse/", folders.folder_collapse, name="folder-collapse"),
    path("c/<int:pk>/export.<str:fmt>", history.conversation_export, name="export"),
    path("c/<int:pk>/share/", history.share_create, name="share"),
    path("c/<int:pk>/share/revoke/", history.share_revoke, name="share-revoke"),
    path("history/", history.history_page, name="history"),
    path("history/export.<str:fmt>", history.export_all, name="export-all"),
    path("s/<str:token>/", history.shared, name="shared"),
    path("c/<int:pk>/messages/", turns.message_create, name="message-create"),
    path("c/<int:pk>/messages/<int:message_pk>/stream/", stream.message_stream, name="message-stream"),
    path("c/<int:pk>/messages/<int:message_pk>/stop/", turns.message_stop, name="message-stop"),
    path("c/<int:pk>/messages/<int:message_pk>/retry/", turns.message_retry, name="message-retry"),
    path("c/<int:pk>/messages/<int:message_pk>/regenerate/", turns.message_regenerate, name="message-regenerate"),
    path("c/<int:pk>/messages/<int:message_pk>/edit/", turns.message_edit, name="message-edit"),
    path("c/<int:pk>/messages/<int:message_pk>/show/", turns.message_switch, name="message-switch"),
]
