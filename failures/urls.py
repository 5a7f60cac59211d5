from django.urls import path

from . import label_views, policy_views, views

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
    path("traces/<int:pk>/compare/", views.trace_compare, name="trace_compare"),
    path("failures/review/", label_views.review_queue, name="review_queue"),
    path("failures/policies/", policy_views.policy_list, name="policy_list"),
    path("failures/policies/open/", policy_views.policy_open, name="policy_open"),
    path("failures/policies/<int:pk>/", policy_views.policy_detail, name="policy_detail"),
    path(
        "failures/policies/<int:pk>/text/", policy_views.policy_text_save, name="policy_text_save"
    ),
    path("failures/policies/<int:pk>/draft/", policy_views.policy_draft, name="policy_draft"),
    path("failures/policies/<int:pk>/rules/", policy_views.policy_rule_add, name="policy_rule_add"),
    path(
        "failures/policy-rules/<int:pk>/",
        policy_views.policy_rule_change,
        name="policy_rule_change",
    ),
    path("failures/review/<int:trace_pk>/", label_views.review_run, name="review_run"),
    path("failures/labels/", label_views.label_list, name="label_list"),
    path("failures/labels/<int:pk>/", label_views.label_detail, name="label_detail"),
    path("failures/labels/<int:pk>/decide/", label_views.label_decide, name="label_decide"),
    path("failures/labels/<int:pk>/remove/", label_views.label_remove, name="label_remove"),
    path("settings/diagnosis/", views.diagnosis_settings_page, name="diagnosis_settings"),
]
