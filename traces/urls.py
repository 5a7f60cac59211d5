from django.urls import path

from . import views

urlpatterns = [
    path("traces/", views.trace_list_view, name="trace_list"),
    path("traces/<int:pk>/", views.trace_detail, name="trace_detail"),
    path("traces/views/", views.saved_view_save_view, name="trace_view_save"),
    path("traces/views/<int:pk>/delete/", views.saved_view_delete_view, name="trace_view_delete"),
    path("traces/retention/", views.retention_partial, name="trace_retention"),
]
