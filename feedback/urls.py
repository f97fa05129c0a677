from django.urls import path

from feedback import views

app_name = "feedback"

urlpatterns = [
    path("c/<int:pk>/messages/<int:message_pk>/feedback/", views.feedback_give, name="give"),
    path("c/<int:pk>/messages/<int:message_pk>/feedback/remove/", views.feedback_remove, name="remove"),
]
