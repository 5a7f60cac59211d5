from django.urls import path

from . import views

urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("settings/api-keys/", views.api_key_new, name="api_key_new"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]
