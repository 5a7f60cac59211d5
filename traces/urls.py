from django.urls import path

from . import views

urlpatterns = [
    path("traces/", views.trace_list_view, name="trace_list"),
    path("traces/<int:pk>/", views.trace_detail, name="trace_detail"),
    path("training-data/", views.snapshot_page, name="snapshot_list"),
    path(
        "training-data/<int:version>/<str:filename>",
        views.snapshot_download,
        name="snapshot_download",
    ),  # fmt: skip
]

from . import mode_views  # noqa: E402

urlpatterns += [
    path("failure-modes/", mode_views.mode_list, name="mode_list"),
    path("failure-modes/recluster/", mode_views.recluster, name="mode_recluster"),
    path("failure-modes/<int:pk>/", mode_views.mode_detail, name="mode_detail"),
    path("failure-modes/<int:pk>/rename/", mode_views.mode_rename, name="mode_rename"),
    path("failure-modes/<int:pk>/merge/", mode_views.mode_merge, name="mode_merge"),
    path("failure-modes/<int:pk>/split/", mode_views.mode_split, name="mode_split"),
    path("failure-modes/<int:pk>/status/", mode_views.mode_status, name="mode_status"),
]
