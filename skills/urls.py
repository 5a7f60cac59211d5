from django.urls import path

from . import views

urlpatterns = [
    path("skills/", views.skill_list, name="skill_list"),
    path("skills/<int:pk>/", views.skill_detail, name="skill_detail"),
    path("failure-modes/<int:mode_pk>/draft/", views.draft_request, name="draft_request"),
    path("distillation/<int:pk>/", views.job_status, name="job_status"),
]
