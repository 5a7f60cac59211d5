"""Django settings. Every environment variable is read here, and only here.

`.env.example` lists each variable with its default and meaning.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A .env file in the checkout is optional; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env.str("HIVEMIND_DATA_DIR", default=str(BASE_DIR / ".hivemind")))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, else a key generated once and kept in the data dir."""
    configured = env.str("DJANGO_SECRET_KEY", default="")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "csp",
    "ninja",
    "workspaces",
    "traces",
    "failures",
    "skills",
    "metrics",
    # Last: its ready() registers the tasks of every app above.
    "hivemind_web",
]

MIDDLEWARE = [
    # Outermost: on API, OTLP, MCP and discovery paths every error answer is JSON.
    "hivemind_web.middleware.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "workspaces.middleware.DomainErrorMiddleware",
    "workspaces.textsafety.JsonTextMiddleware",
    "skills.middleware.SkillsETagMiddleware",
]

ROOT_URLCONF = "hivemind_web.urls"
WSGI_APPLICATION = "hivemind_web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workspaces.context_processors.workspace_nav",
                "hivemind_web.context_processors.review_queue",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# DATABASE_URL wins; without it an embedded PostgreSQL+pgvector starts in
# DATA_DIR (see hivemind_web/embedded_db.py).
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    from hivemind_web.embedded_db import database_settings

    DATABASES = {"default": database_settings(DATA_DIR)}
    # Another database in the same embedded server (the broker load test points
    # its Celery worker at the test database this way).
    DATABASES["default"]["NAME"] = env.str("HIVEMIND_DB_NAME", default="hivemind")
# Persistent connections: a new connection per request costs more than most
# API requests themselves (bench/skills_api.py).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("HIVEMIND_DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A deadline for every query a web request makes (gunicorn_conf.py sets it for the
# web server only; workers' clustering and purges may run longer): a query that
# runs away is cancelled and the request answers an error instead of holding a thread.
_STATEMENT_TIMEOUT_MS = env.int("HIVEMIND_WEB_STATEMENT_TIMEOUT_MS", default=0)
if _STATEMENT_TIMEOUT_MS:
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = (
        _options.get("options", "") + f" -c statement_timeout={_STATEMENT_TIMEOUT_MS}"
    ).strip()
DATABASES["default"].setdefault("TEST", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Password reset links work once and expire after this (Django's setting).
PASSWORD_RESET_TIMEOUT = env.int("HIVEMIND_PASSWORD_RESET_SECONDS", default=3 * 24 * 3600)
# Any signed-in user may create a workspace (and becomes its admin) unless this is set.
HIVEMIND_WORKSPACE_CREATE_STAFF_ONLY = env.bool(
    "HIVEMIND_WORKSPACE_CREATE_STAFF_ONLY", default=False
)
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("HIVEMIND_TIME_ZONE", default="UTC")
# English only, and nothing is translated: with translation off, every date and number
# a page formats skips the active-language lookups (the trace list rendered in 16 ms
# instead of 25 on a slow 2-core machine); pages are byte for byte the same.
USE_I18N = False
USE_TZ = True

# --- Static files -----------------------------------------------------------
# htmx and plotly.js (its "basic" bundle: scatter and bar, a quarter of the full
# file) come from npm (package-lock.json): the app serves both itself, never
# from a CDN. Figures are built as plain dicts (metrics/charts.py).
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise warns on every request cycle when STATIC_ROOT is missing.
STATIC_ROOT.mkdir(exist_ok=True)
# `make run` (hivemind_web/run.py) sets this and runs collectstatic first;
# production sets it too. Without it (tests, a bare runserver) files are served
# from the source folders as they are.
STATIC_COLLECTED = env.bool("HIVEMIND_STATIC_MANIFEST", default=False)
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/plotly", BASE_DIR / "node_modules" / "plotly.js-basic-dist-min"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # With HIVEMIND_STATIC_MANIFEST: hashed names, cached for a year by browsers,
    # and compressed copies, made by collectstatic.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_COLLECTED
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = env.bool("HIVEMIND_STATIC_FROM_FINDERS", default=not STATIC_COLLECTED)

# --- Celery -----------------------------------------------------------------
# Without CELERY_BROKER_URL, the embedded Redis that `make run` starts in the
# data dir (a unix socket, no port, no service to install; see
# hivemind_web/embedded_broker.py). Work is never run inline in a web request
# unless HIVEMIND_TASKS_EAGER is set (the test suite sets it).
EMBEDDED_BROKER_SOCKET = Path(
    env.str("HIVEMIND_BROKER_SOCKET", default=str(DATA_DIR / "redis" / "redis.sock"))
)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or (
    f"redis+socket://{EMBEDDED_BROKER_SOCKET}"
)
CELERY_TASK_ALWAYS_EAGER = env.bool("HIVEMIND_TASKS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = env.bool("HIVEMIND_EAGER_PROPAGATES", default=False)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues by kind of work. A worker started without -Q takes every queue here (the
# default run's one worker does); in production, workers per queue keep a long
# re-clustering or slow model calls from holding up the diagnosis of new runs.
CELERY_TASK_QUEUES = [Queue(name) for name in ("default", "analysis", "clustering", "llm")]
CELERY_TASK_ROUTES = {
    **dict.fromkeys([
        "failures.tasks.analyse_traces", "failures.tasks.embed_incidents",
        "failures.tasks.propagate_label", "failures.tasks.propagate_labels_to_runs",
        "failures.tasks.sweep_unfinished", "metrics.tasks.refresh_rollups",
        "metrics.tasks.sweep_rollups", "metrics.tasks.refresh_trials",
    ], {"queue": "analysis"}),
    **dict.fromkeys([
        "failures.tasks.recluster_workspace", "failures.tasks.recluster_all",
        "failures.tasks.refresh_modes",
    ], {"queue": "clustering"}),
    # Drafting, naming and policy checks call the workspace's model when it has one.
    **dict.fromkeys([
        "failures.tasks.name_modes", "failures.tasks.draft_policy_rules",
        "failures.tasks.recheck_policy", "skills.tasks.distill_mode", "skills.tasks.distill_due",
    ], {"queue": "llm"}),
}  # fmt: skip
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis: a message taken by a worker that dies unacknowledged goes back to the
# queue after this many seconds (acks_late + reject_on_worker_lost).
# socket timeouts: a broker that accepts the connection but never answers (paused,
# overloaded) frees the publishing thread after a few seconds (see enqueue()).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("HIVEMIND_BROKER_VISIBILITY_TIMEOUT", default=3600),
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}

# --- Product settings -------------------------------------------------------
HIVEMIND_PUBLIC_URL = env.str("HIVEMIND_PUBLIC_URL", default="http://127.0.0.1:8000")
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="") or None
ANTHROPIC_MODEL = env.str("HIVEMIND_LLM_MODEL", default="claude-haiku-4-5")
# The default model for workspaces that keep "as the server is configured"
# (workspaces/llm.py): "anthropic" (needs ANTHROPIC_API_KEY), "openai" (an
# OpenAI-compatible server at OPENAI_BASE_URL, model HIVEMIND_LLM_MODEL, key
# optional) or "offline"; empty: Anthropic when a key is set, else offline.
HIVEMIND_LLM_PROVIDER = env.str("HIVEMIND_LLM_PROVIDER", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
# The OpenAI-compatible default's model: HIVEMIND_LLM_MODEL when set explicitly (its
# default names a Claude model, which a server of the team's own does not serve).
OPENAI_MODEL = env.str("OPENAI_MODEL", default="") or env.str("HIVEMIND_LLM_MODEL", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line is redacted before it is written (workspaces/logredaction.py).
    "filters": {"redact": {"()": "workspaces.logredaction.RedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env.str("HIVEMIND_LOG_LEVEL", default="INFO")},
    # pgserver logs every start, stop and pg_ctl call at INFO; the MCP SDK logs
    # each request's session manager starting and stopping.
    # httpx (under both model SDKs) logs every request at INFO.
    "loggers": {
        "pgserver": {"level": "WARNING"},
        "mcp": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# --- Ingest limits ------------------------------------------------------------
# Bodies above this get 413 before they are parsed.
HIVEMIND_MAX_BODY_BYTES = env.int("HIVEMIND_MAX_BODY_BYTES", default=20 * 1024 * 1024)
HIVEMIND_MAX_TRACES_PER_BATCH = env.int("HIVEMIND_MAX_TRACES_PER_BATCH", default=1000)
HIVEMIND_MAX_STEPS_PER_TRACE = env.int("HIVEMIND_MAX_STEPS_PER_TRACE", default=5000)
# Django refuses request.body above this; keep it just above our own cap so our
# 413 (with a useful message) is what a client sees.
DATA_UPLOAD_MAX_MEMORY_SIZE = HIVEMIND_MAX_BODY_BYTES + 1
# Ingest requests (native, OTLP, hooks) one API key may send per minute; beyond it
# 429 + Retry-After. 0 turns the limit off.
HIVEMIND_INGEST_RATE_LIMIT = env.int("HIVEMIND_INGEST_RATE_LIMIT", default=1200)
# Failed logins per account (per known browser, for one it trusts) within 15 minutes
# before 429; a client address gets five times this.
HIVEMIND_LOGIN_ATTEMPTS = env.int("HIVEMIND_LOGIN_ATTEMPTS", default=10)
# Password-reset mails per address, and reset requests per client, per hour.
HIVEMIND_RESET_MAILS_PER_ADDRESS = env.int("HIVEMIND_RESET_MAILS_PER_ADDRESS", default=3)
HIVEMIND_RESET_REQUESTS_PER_CLIENT = env.int("HIVEMIND_RESET_REQUESTS_PER_CLIENT", default=10)

# Concurrent OTLP exports one process accepts before answering 503 + Retry-After.
HIVEMIND_OTLP_MAX_CONCURRENT = env.int("HIVEMIND_OTLP_MAX_CONCURRENT", default=8)

# --- Failure modes ------------------------------------------------------------
HIVEMIND_EMBEDDER = env.str("HIVEMIND_EMBEDDER", default="failures.embedding:MiniLMEmbedder")
# The embedding model's ONNX graph (failures/onnx_export.py writes it there at
# install, beside the virtualenv's packages),
# and the threads one embedding uses: 1 keeps the model loadable before a fork.
HIVEMIND_EMBEDDING_ONNX = env.str(
    "HIVEMIND_EMBEDDING_ONNX",
    default=str(Path(sys.prefix) / "share" / "hivemind" / "all-MiniLM-L6-v2.onnx"),
)
HIVEMIND_EMBED_THREADS = env.int("HIVEMIND_EMBED_THREADS", default=1)
# A new incident joins an existing mode at once when its cosine similarity to the
# mode's centroid is at least this.
HIVEMIND_ASSIGN_SIMILARITY = env.float("HIVEMIND_ASSIGN_SIMILARITY", default=0.80)
# Re-cluster a workspace once this many incidents are waiting without a mode.
HIVEMIND_RECLUSTER_AFTER = env.int("HIVEMIND_RECLUSTER_AFTER", default=50)
# HDBSCAN's smallest group that counts as a failure mode.
HIVEMIND_MIN_MODE_SIZE = env.int("HIVEMIND_MIN_MODE_SIZE", default=5)
# Modes are clustered inside one failure category ("category"), one of the
# taxonomy's five groups ("group"), or across all ("none"); bench/modes.py measured.
HIVEMIND_CLUSTER_WITHIN = env.str("HIVEMIND_CLUSTER_WITHIN", default="category")
# pgvector HNSW search breadth: higher is more exact and slower (bench/search.py).
HIVEMIND_HNSW_EF_SEARCH = env.int("HIVEMIND_HNSW_EF_SEARCH", default=100)

# Internal hosts the publish webhook may reach (comma-separated names or
# addresses); every other private, loopback or link-local target is refused.
HIVEMIND_WEBHOOK_ALLOWED_HOSTS = env.list("HIVEMIND_WEBHOOK_ALLOWED_HOSTS", default=[])

# --- Distillation ----------------------------------------------------------------
# A mode is drafted once it has at least this many incidents.
HIVEMIND_DISTILL_MIN_INCIDENTS = env.int("HIVEMIND_DISTILL_MIN_INCIDENTS", default=5)
HIVEMIND_LLM_MAX_TOKENS = env.int("HIVEMIND_LLM_MAX_TOKENS", default=2000)
# How much of a long trace the Claude diagnoser sends (failures/diagnosis/claude.py).
HIVEMIND_DIAGNOSIS_TOKEN_BUDGET = env.int("HIVEMIND_DIAGNOSIS_TOKEN_BUDGET", default=24_000)
HIVEMIND_LLM_TIMEOUT = env.float("HIVEMIND_LLM_TIMEOUT", default=60.0)
# Retries on 429, 5xx and timeouts (exponential backoff, honouring retry-after).
HIVEMIND_LLM_MAX_RETRIES = env.int("HIVEMIND_LLM_MAX_RETRIES", default=3)
# Diagnosis requests at once to the model (a backfill can pass --concurrency): raise it
# for a server of the team's own that takes more (vLLM batches concurrent requests).
HIVEMIND_LLM_CONCURRENCY = env.int("HIVEMIND_LLM_CONCURRENCY", default=1)
# USD per million tokens (input, output) of the configured model, for cost records.
HIVEMIND_LLM_PRICE_IN = env.float("HIVEMIND_LLM_PRICE_IN", default=1.0)
HIVEMIND_LLM_PRICE_OUT = env.float("HIVEMIND_LLM_PRICE_OUT", default=5.0)

# --- Production security ------------------------------------------------------------
# Behind HTTPS set HIVEMIND_HTTPS=true: secure cookies, HSTS, redirect to https,
# and trust the proxy's X-Forwarded-Proto.
HIVEMIND_HTTPS = env.bool("HIVEMIND_HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HIVEMIND_HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = HIVEMIND_HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HIVEMIND_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HIVEMIND_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HIVEMIND_HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from this server, no inline
# script or event handlers (static/js/app.js does what the pages need). Inline
# style attributes stay allowed: plotly and htmx set them on elements they draw.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# The OTLP receiver and health check are reachable without a session.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Email (invitations): printed to the server's console unless SMTP is configured
# (HIVEMIND_EMAIL_HOST, _PORT, _USER, _PASSWORD, _TLS; HIVEMIND_EMAIL_FROM).
EMAIL_HOST = env.str("HIVEMIND_EMAIL_HOST", default="")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env.int("HIVEMIND_EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("HIVEMIND_EMAIL_USER", default="")
EMAIL_HOST_PASSWORD = env.str("HIVEMIND_EMAIL_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("HIVEMIND_EMAIL_TLS", default=True)
DEFAULT_FROM_EMAIL = env.str("HIVEMIND_EMAIL_FROM", default="hivemind@localhost")
# An invitation link works this many days, once.
HIVEMIND_INVITE_DAYS = env.int("HIVEMIND_INVITE_DAYS", default=7)
