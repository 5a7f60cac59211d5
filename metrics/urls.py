from django.urls import path

from . import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("metrics/", views.metrics_page, name="metrics"),
    path("metrics/skill-impact.csv", views.impact_csv, name="impact_csv"),
    path("metrics/series.csv", views.series_csv, name="series_csv"),
    path("metrics/compound.csv", views.compound_csv, name="compound_csv"),
    path("metrics/skills/<int:pk>/impact/", views.skill_impact_partial, name="skill_impact"),
    path("skills/<int:pk>/trial/", views.skill_trial, name="skill_trial"),
    path(
        "skills/<int:pk>/trial/benchmark.json",
        views.skill_trial_benchmark,
        name="skill_trial_benchmark",
    ),  # fmt: skip
    path("training-data/", views.snapshot_page, name="snapshot_list"),
    path(
        "training-data/<int:version>/<str:filename>",
        views.snapshot_download,
        name="snapshot_download",
    ),  # fmt: skip
]
