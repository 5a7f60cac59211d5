from django.urls import path

from . import views

urlpatterns = [
    path("traces/", views.trace_list_view, name="trace_list"),
    path("traces/<int:pk>/", views.trace_detail, name="trace_detail"),
    path("traces/retention/", views.retention_partial, name="trace_retention"),
]
