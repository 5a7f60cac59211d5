from django.urls import path

from . import views

urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("settings/api-keys/", views.api_key_new, name="api_key_new"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
    path("settings/members/", views.member_add, name="member_add"),
    path(
        "settings/invitations/<int:pk>/revoke/",
        views.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("settings/members/<int:pk>/role/", views.member_role, name="member_role"),
    path("settings/members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("settings/pii/", views.pii_policy_save, name="pii_policy_save"),
    path("settings/trials/", views.trial_settings_save, name="trial_settings_save"),
    path("settings/model/", views.model_settings_save_view, name="model_settings_save"),
    path("settings/model/check/", views.model_settings_check_view, name="model_settings_check"),
    path("settings/time-zone/", views.time_zone_save, name="time_zone_save"),
    path("settings/alerts/", views.email_alerts_save, name="email_alerts_save"),
    path("settings/mine/", views.my_settings, name="my_settings"),
    path("settings/pii/try/", views.pii_policy_try, name="pii_policy_try"),
    path("settings/audit/", views.audit_log, name="audit_log"),
]
