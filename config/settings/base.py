"""Settings shared by every environment. Secrets and infrastructure come from the environment."""

from datetime import timedelta

from csp.constants import NONE, SELF

from config.env import BASE_DIR, VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "template_partials",
    "csp",
    "leads",
    "routing",
    "qualification",
    "nurture",
    "analytics",
    "demo",
    # Last, so its post_migrate hook sees the permissions of every app above.
    "core",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "core.context_processors.navigation",
            ],
        },
    }
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'leadops.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and worker share the file: WAL and IMMEDIATE transactions avoid "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True},
        }
    }
    DJANGO_REDIS_IGNORE_EXCEPTIONS = True  # a Redis outage must not fail intake (rate limits fail open)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = env("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media"))

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="LeadOps <leadops@localhost>")

# --- Content-Security-Policy (django-csp) ---------------------------------------
# Scripts and styles only from our own static files: no inline <script>, on…= attribute, <style>
# or style="" anywhere (htmx's own indicator <style> is turned off in base.html and lives in
# app.css). The Swagger UI page alone allows inline styles (core/views.py). The browser test
# tests/browser/test_csp.py loads the pages as every role and fails on any violation.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if _csp_report_uri := env("DJANGO_CSP_REPORT_URI", default=""):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [_csp_report_uri]

# --- Django REST framework -------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",  # refuses JSON nested too deep with a 400 (issue 13)
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# The OpenAPI schema (/api/schema/) and its Swagger UI (/api/docs/) need a signed-in user unless
# this opens them to everyone (core/views.py).
LEADOPS_API_DOCS_PUBLIC = env.bool("DJANGO_API_DOCS_PUBLIC", default=False)
SPECTACULAR_SETTINGS = {
    "TITLE": "LeadOps API",
    "DESCRIPTION": "Lead capture, routing and lifecycle. External forms authenticate with "
    "`Authorization: Api-Key <key>`; internal users with a session or `Authorization: Token <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the vendored sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"StageEnum": "leads.models.Stage"},
}

# --- LeadOps knobs ---------------------------------------------------------
# Fixed-window rate limits of the public intake endpoint: requests per minute.
LEADOPS_INTAKE_RATE_PER_KEY = env.int("DJANGO_INTAKE_RATE_PER_KEY", default=600)
LEADOPS_INTAKE_RATE_PER_IP = env.int("DJANGO_INTAKE_RATE_PER_IP", default=120)
# Guessing limits (core/auth_limits.py): failed sign-ins per client address and per username, and
# failed API keys per client address, counted in fixed windows of this many seconds; past a limit
# every attempt it covers is answered 429 with Retry-After until the window ends.
LEADOPS_AUTH_FAILURE_WINDOW_SECONDS = env.int("DJANGO_AUTH_FAILURE_WINDOW_SECONDS", default=900)
LEADOPS_LOGIN_FAILURES_PER_IP = env.int("DJANGO_LOGIN_FAILURES_PER_IP", default=30)
LEADOPS_LOGIN_FAILURES_PER_USERNAME = env.int("DJANGO_LOGIN_FAILURES_PER_USERNAME", default=10)
LEADOPS_API_KEY_FAILURES_PER_IP = env.int("DJANGO_API_KEY_FAILURES_PER_IP", default=20)
LEADOPS_ENRICHMENT_PROVIDER = env("DJANGO_ENRICHMENT_PROVIDER", default="leads.enrichment.BuiltinEnrichmentProvider")
# Enrichment runs in batches: each web process asks for a run at most once per this many seconds
# (0: a run per lead), delayed by as much, so the run sees every lead the process stored meanwhile.
LEADOPS_ENRICHMENT_BATCH_SECONDS = env.float("DJANGO_ENRICHMENT_BATCH_SECONDS", default=1.0)
# The same for telling reps about the leads routed to them (in-app notification and email).
LEADOPS_NOTIFY_BATCH_SECONDS = env.float("DJANGO_NOTIFY_BATCH_SECONDS", default=1.0)
# How stale another process's routing-rule edit may be when a lead is routed here.
LEADOPS_ROUTING_RULES_RECHECK_SECONDS = env.float("DJANGO_ROUTING_RULES_RECHECK_SECONDS", default=1.0)
# How many leads past the front of a balancing method's order (fewest routed, ...) a rep may be
# and still take a lead while the reps at the front are busy with simultaneous leads. 0: exact
# round-robin (counts within one), at the price of waits under concurrency.
LEADOPS_ROUTING_BALANCE_TOLERANCE = env.int("DJANGO_ROUTING_BALANCE_TOLERANCE", default=0)
# The capture pipeline: what other apps do inside the capture transaction, in this order, once a
# submission's lead and intake log are stored. Each name is registered by its app's
# AppConfig.ready() (leads/hooks.py); a system check refuses a name listed here that no app
# registers, or a registered one missing here. Future steps (e.g. "qualification.score" before
# "routing.assign", so routing can see the score) are added here.
LEADOPS_CAPTURE_STEPS = ["routing.assign"]
LEADOPS_DEFAULT_PHONE_REGION = env("DJANGO_DEFAULT_PHONE_REGION", default="")
LEADOPS_BENCH_ENDPOINTS = env.bool("DJANGO_BENCH_ENDPOINTS", default=False)
# Uploaded CSV files and their rejected rows (which hold raw personal data) are deleted this many
# days after the import ends, or after an upload that was never started; 0 keeps them forever.
LEADOPS_IMPORT_RETENTION_DAYS = env.int("DJANGO_IMPORT_RETENTION_DAYS", default=30)
# Raw payloads, stored responses and client IPs of the intake log; 0 keeps them (and replay) forever.
LEADOPS_INTAKE_LOG_RETENTION_DAYS = env.int("DJANGO_INTAKE_LOG_RETENTION_DAYS", default=0)
# Response SLAs (docs/sla.md): how often the beat sweep runs and how many clocks one batch takes.
LEADOPS_SLA_SWEEP_SECONDS = env.float("DJANGO_SLA_SWEEP_SECONDS", default=15)
LEADOPS_SLA_SWEEP_BATCH = env.int("DJANGO_SLA_SWEEP_BATCH", default=500)

# --- Celery ----------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    # A broker that needs no server: messages are files under var/, shared by web and worker.
    _queue_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("DJANGO_CELERY_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("DJANGO_CELERY_TIME_LIMIT", default=90)
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Where `celery beat` keeps its schedule; its scheduler (config/celery.py) creates the folder.
CELERY_BEAT_SCHEDULER = "config.celery:FolderCreatingScheduler"
CELERY_BEAT_SCHEDULE_FILENAME = env(
    "DJANGO_CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule")
)
CELERY_BEAT_SCHEDULE = {
    # Catches leads whose enrichment request was never delivered (broker down at intake).
    "enrichment-sweep": {
        "task": "leads.tasks.lead_enrichment_run_task",
        "schedule": timedelta(seconds=env.int("DJANGO_ENRICHMENT_SWEEP_SECONDS", default=60)),
    },
    # Response SLAs: warn, breach, escalate; catches up after an outage (routing/services/sla.py).
    "sla-sweep": {
        "task": "routing.tasks.sla_sweep_task",
        "schedule": timedelta(seconds=LEADOPS_SLA_SWEEP_SECONDS),
        "options": {"expires": max(LEADOPS_SLA_SWEEP_SECONDS, 1)},
    },
    # Owners not told of a new lead yet (the request after routing was lost: broker down).
    "assignment-notifications": {
        "task": "routing.tasks.assignment_notifications_run_task",
        "schedule": timedelta(seconds=env.int("DJANGO_NOTIFY_SWEEP_SECONDS", default=30)),
    },
    # Retention of uploaded CSV files and rejected rows (DJANGO_IMPORT_RETENTION_DAYS).
    "import-files-purge": {
        "task": "leads.tasks.import_files_purge_task",
        "schedule": timedelta(hours=1),
    },
    # Retention of the intake log's raw payloads (DJANGO_INTAKE_LOG_RETENTION_DAYS; 0: off).
    "intake-log-purge": {
        "task": "leads.tasks.intake_log_purge_task",
        "schedule": timedelta(hours=1),
    },
    # Safety net for rep capacity: stage changes recount their owner at once; this recounts all.
    "rep-open-leads-sweep": {
        "task": "routing.tasks.rep_open_leads_sweep_task",
        "schedule": timedelta(seconds=env.int("DJANGO_CAPACITY_SWEEP_SECONDS", default=600)),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}
