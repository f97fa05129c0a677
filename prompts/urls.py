from django.urls import path

from prompts import views

app_name = "prompts"

urlpatterns = [
    path("prompts/", views.library, name="library"),
    path("prompts/picker/", views.picker, name="picker"),
    path("prompts/<int:prompt_pk>/edit/", views.prompt_edit, name="edit"),
    path("prompts/<int:prompt_pk>/delete/", views.prompt_delete, name="delete"),
    path("prompts/<int:prompt_pk>/system-prompt/", views.system_prompt, name="system-prompt"),
]
