from django.urls import path

from retention import views

app_name = "retention"

urlpatterns = [
    path("accounts/data/", views.my_data, name="my-data"),
    path("accounts/data/delete/", views.my_data_delete, name="my-data-delete"),
    path("accounts/deleted/", views.deleted, name="deleted"),
]
