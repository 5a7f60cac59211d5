from django.urls import path

from . import views

urlpatterns = [
    path("skills/", views.skill_list, name="skill_list"),
    path("skills/<int:pk>/", views.skill_detail, name="skill_detail"),
    path("failure-modes/<int:mode_pk>/draft/", views.draft_request, name="draft_request"),
    path("failure-modes/<int:mode_pk>/skills/", views.mode_skill_panel, name="mode_skill_panel"),
    path("failure-modes/skills/", views.mode_skill_cells, name="mode_skill_cells"),
    path("distillation/<int:pk>/", views.job_status, name="job_status"),
    path("settings/webhook/", views.webhook_settings, name="webhook_settings"),
    path("skills/<int:pk>/approve/", views.skill_approve_view, name="skill_approve"),
    path("skills/<int:pk>/edit/", views.skill_edit_view, name="skill_edit"),
    path("skills/<int:pk>/rename/", views.skill_rename_view, name="skill_rename"),
    path("skills/<int:pk>/reject/", views.skill_reject_view, name="skill_reject"),
    path("skills/<int:pk>/retire/", views.skill_retire_view, name="skill_retire"),
    path("skills/<int:pk>/rollback/", views.skill_rollback_view, name="skill_rollback"),
    path("skills/<int:pk>/roll-out/", views.skill_roll_out_view, name="skill_roll_out"),
    path(
        "skills/<int:pk>/trial/roll-back/",
        views.skill_roll_back_trial_view,
        name="skill_roll_back_trial",
    ),  # fmt: skip
]
