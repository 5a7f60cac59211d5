from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from skills import wellknown
from traces.otlp_views import otlp_logs_view, otlp_metrics_view, otlp_traces
from workspaces import views as workspace_views

from .api import api
from .mcp_server import mcp_endpoint
from .views import client_index, client_wheel, healthz

# Errors outside any view's own handling: JSON for API clients, 503 when the
# database is down (hivemind_web/views.py).
handler500 = "hivemind_web.views.server_error"
handler404 = "hivemind_web.views.not_found"
handler403 = "hivemind_web.views.forbidden"

urlpatterns = [
    path("", workspace_views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("login/", workspace_views.LoginView.as_view(), name="login"),
    path("invite/<str:secret>/", workspace_views.invitation_page, name="invitation"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset and change: Django's views, styled (templates/registration/).
    path("password/reset/", workspace_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("workspaces/new/", workspace_views.workspace_new, name="workspace_new"),
    # Django admin's login, throttled like the app's (workspaces/views.py).
    path("admin/login/", workspace_views.AdminLoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # OTLP/HTTP's standard path, so exporters need only the base URL.
    path("v1/traces", otlp_traces, name="otlp_traces"),
    path("v1/logs", otlp_logs_view, name="otlp_logs"),
    path("v1/metrics", otlp_metrics_view, name="otlp_metrics"),
    # The client as a wheel, so an agent machine installs it from here (hivemind_client/wheel.py).
    path("client/", client_index, name="client_index"),
    path("client/<str:filename>", client_wheel, name="client_wheel"),
    # MCP (streamable HTTP): tools for agents inside a session (hivemind_web/mcp_server.py).
    path("mcp", mcp_endpoint, name="mcp"),
    # The Agent Skills discovery index (skills/wellknown.py).
    path(".well-known/agent-skills/index.json", wellknown.skills_index, name="skills_index"),
    path(
        ".well-known/agent-skills/<slug:name>/v<int:number>/SKILL.md",
        wellknown.skill_document,
        name="skills_index_document",
    ),
    path("w/<slug:slug>/", include("metrics.urls")),
    path("w/<slug:slug>/", include("workspaces.urls")),
    path("w/<slug:slug>/", include("traces.urls")),
    path("w/<slug:slug>/", include("failures.urls")),
    path("w/<slug:slug>/", include("skills.urls")),
]
