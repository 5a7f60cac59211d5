from django.urls import path

from . import views

urlpatterns = [
    path("failure-modes/", views.mode_list, name="mode_list"),
    path("failure-modes/recluster/", views.recluster, name="mode_recluster"),
    path("failure-modes/recluster/<int:pk>/", views.cluster_run_status, name="cluster_run"),
    path("failure-modes/<int:pk>/", views.mode_detail, name="mode_detail"),
    path("failure-modes/<int:pk>/daily.csv", views.mode_daily_csv, name="mode_daily_csv"),
    path("failure-modes/<int:pk>/rename/", views.mode_rename, name="mode_rename"),
    path("failure-modes/<int:pk>/merge/", views.mode_merge, name="mode_merge"),
    path("failure-modes/<int:pk>/split/", views.mode_split, name="mode_split"),
    path("failure-modes/<int:pk>/status/", views.mode_status, name="mode_status"),
    path("traces/<int:pk>/incidents/", views.trace_incidents, name="trace_incidents"),
    path("settings/diagnosis/", views.diagnosis_settings_page, name="diagnosis_settings"),
]
