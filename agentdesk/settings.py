"""AgentDesk settings, driven by environment variables (django-environ).

With nothing set, the app runs on its embedded default: SQLite (WAL), an in-process
Celery broker and channel layer, and the bundled LLM simulator. ``DATABASE_URL`` and
``REDIS_URL`` switch to production services without changing any code path.
"""

from __future__ import annotations

import logging.config
import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE

from agentdesk import logconfig, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env("AGENTDESK_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("AGENTDESK_DATA_DIR", str(DATA_DIR))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Fails closed (agentdesk.secret_key): a known key is refused outside DEBUG; an unset one is
# refused in the production topology (REDIS_URL) and generated once into DATA_DIR otherwise.
SECRET_KEY, SECRET_KEY_SOURCE = secret_key.resolve(
    env("DJANGO_SECRET_KEY", default=""), debug=DEBUG,
    embedded=not env("REDIS_URL", default=""), data_dir=DATA_DIR,
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "ninja",  # its own static Swagger UI: the API docs work offline
    "csp",
    "axes",
    "runs",
]

MIDDLEWARE = [
    "agentdesk.middleware.RequestIdMiddleware",
    "runs.api.middleware.ApiBoundaryMiddleware",
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
    "runs.views.session.SessionExpiredMiddleware",  # a lost session: no login page in a card
    "axes.middleware.AxesMiddleware",  # a locked-out log-in gets the lockout page
    "agentdesk.middleware.SyncChainEnd",  # last: the chain stays in one thread (see there)
]

ROOT_URLCONF = "agentdesk.urls"
ASGI_APPLICATION = "agentdesk.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
    {  # the inbox row only: it renders 50 times a page (runs/templatetags/inbox.py)
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "runs.templatetags.jinja.environment"},
    },
]

# --- database -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'agentdesk.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web thread read while the worker thread writes; IMMEDIATE transactions
    # take the write lock up front instead of failing mid-transaction with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # one test database per process: parallel test sessions never share a file
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
elif env.bool("DB_POOL", default=True):
    # Under ASGI every request runs in a new thread, and Django's persistent connections
    # are per thread: without a pool each request would open (and Postgres fork) a new
    # connection. psycopg's pool hands a connection to a request and takes it back after.
    # max_size bounds one process. A worker thread holds a connection only for its database
    # work, not while a model or a tool answers (runs.connections): 20 serve 100 threads,
    # and the processes' sum stays under the server's max_connections (100 by default).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {  # keeps ?sslmode=… etc.
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT_SECONDS", default=30.0),
        # connections above min_size opened for a burst are closed after a quiet minute
        "max_idle": env.float("DB_POOL_MAX_IDLE_SECONDS", default=60.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
        "DB_PREPARED_STATEMENTS", default=True):
    # Values bound by the server, and a statement run often enough on a connection prepared
    # there: Postgres then skips parsing and planning it. Every step's checkpoint and every
    # submission is the same statement text with new values (runs.statements); prepared,
    # it took a third less time (`make bench`, step overhead). psycopg prepares a statement
    # once it ran five times on a connection, and keeps 100. Off behind a pooler that
    # cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHES = {"default": {"BACKEND": "agentdesk.cache.CounterLocMemCache"}}

# --- broker, channel layer ------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
EMBEDDED = not REDIS_URL
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    if REDIS_URL.startswith("redis://"):
        CELERY_BROKER_TRANSPORT = "agentdesk.broker:Transport"  # one client per channel
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env("CHANNELS_PREFIX", default="asgi")},
        }
    }
    CACHES = {
        "default": {
            # Django's RedisCache on one connection pool per process (see agentdesk.cache)
            "BACKEND": "agentdesk.cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_PREFIX", default="agentdesk"),
        }
    }
else:
    CELERY_BROKER_URL = "memory://localhost/"
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Circuit-breaker state is shared through Redis; deployments sharing a Redis keep apart.
TOOL_BREAKER_KEY_PREFIX = env("CACHE_PREFIX", default="agentdesk") + ":breaker:"
# A tool found with no breaker state anywhere is not asked about again for this long by the
# same process (runs.breakers.RedisBreakerStore): a breaker that opens elsewhere is seen
# here that much later, and a healthy tool's call costs no round trip. 0: ask every time.
TOOL_BREAKER_QUIET_SECONDS = env.float("TOOL_BREAKER_QUIET_SECONDS", default=1.0)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="agentdesk")
# A run's time slice is far below the visibility timeout, so a message is only redelivered
# when its worker really died.
RUN_SLICE_SECONDS = env.float("AGENTDESK_RUN_SLICE_SECONDS", default=20.0)
RUN_LEASE_SECONDS = env.float("AGENTDESK_RUN_LEASE_SECONDS", default=60.0)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, float] = {"visibility_timeout": 600}
if EMBEDDED:
    # The memory transport polls an empty queue (Redis blocks on BRPOP instead); its default
    # 1 s sleep would hold every resume back up to a second and cap a thread's task rate.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.01
# Threads of the embedded worker (``make run``): each waits on a model call most of the time.
EMBEDDED_WORKER_THREADS = env.int("AGENTDESK_EMBEDDED_WORKER_THREADS", default=8)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # A crashed worker's runs come back once their lease expires.
    "reap-expired-leases": {"task": "runs.tasks.reap_runs", "schedule": 10.0},
    # Escalations past their human-wait deadline get the policy's timeout action.
    "expire-escalations": {"task": "runs.tasks.expire_escalations", "schedule": 15.0},
    # Webhook deliveries whose retry message was lost (or whose receiver was down) go again.
    "retry-webhooks": {"task": "runs.tasks.retry_webhooks", "schedule": 30.0},
    # SLA (50 %/90 % of the time to decide) and team-budget (80 %/100 %) notifications.
    "notify-thresholds": {"task": "runs.tasks.notify_thresholds", "schedule": 15.0},
    # Notifications whose message was lost, or that wait for a retry or a rate-limit window.
    "retry-notifications": {"task": "runs.tasks.retry_notifications", "schedule": 30.0},
}

# --- LLM -----------------------------------------------------------------------------------
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
LLMSIM_PORT = env.int("LLMSIM_PORT", default=8765)
if OPENAI_API_KEY:
    LLM_BASE_URL = env("OPENAI_BASE_URL", default=None)
    LLM_API_KEY = OPENAI_API_KEY
else:
    LLM_BASE_URL = env("OPENAI_BASE_URL", default=f"http://127.0.0.1:{LLMSIM_PORT}/v1")
    LLM_API_KEY = "sim"
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=30.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=3)

# --- agents --------------------------------------------------------------------------------
# Comma-separated ``module:attribute`` paths, each an AgentSpec; installed packages add theirs
# through the ``agentdesk.agents`` entry-point group (agentdesk/agents/registry.py). The
# default is the shipped demo agent; set it to "" to run only entry-point agents.
AGENTDESK_AGENTS = env.list("AGENTDESK_AGENTS",
                            default=["agentdesk.agents.support_refunds.agent:AGENT"])
# Programs an admin may start as stdio MCP servers (comma-separated names, e.g. "npx,uvx"):
# a stdio server is a command run on every worker, so none is allowed unless listed here.
MCP_STDIO_COMMANDS = env.list("AGENTDESK_MCP_STDIO_COMMANDS", default=[])
# A websocket listener's access (session, teams) is checked again at most this often (s): a
# removed member stops hearing the team within it. 0 checks before every message.
LIVE_RECHECK_SECONDS = env.float("AGENTDESK_LIVE_RECHECK_SECONDS", default=2.0)
# Live fragments are rendered only for groups someone listens to (``runs.watchers``): a
# listener's mark lives this long (s) and is renewed three times in that span.
LIVE_WATCH_SECONDS = env.float("AGENTDESK_LIVE_WATCH_SECONDS", default=60.0)

# --- app limits ---------------------------------------------------------------------------
MAX_INPUT_BYTES = env.int("AGENTDESK_MAX_INPUT_BYTES", default=256 * 1024)
# A knowledge document (admin upload or package file) larger than this is refused.
KNOWLEDGE_MAX_BYTES = env.int("AGENTDESK_KNOWLEDGE_MAX_BYTES", default=1024 * 1024)
DEMO_PASSWORD = env("AGENTDESK_DEMO_PASSWORD", default="")
CLAIM_TIMEOUT_SECONDS = env.int("AGENTDESK_CLAIM_TIMEOUT_SECONDS", default=300)

# --- REST API, webhooks, metrics ------------------------------------------------------------
# A request body may carry the input plus a small envelope (agent, keys, callback URL).
API_MAX_BODY_BYTES = env.int("AGENTDESK_API_MAX_BODY_BYTES", default=MAX_INPUT_BYTES + 16 * 1024)
API_PAGE_SIZE_MAX = env.int("AGENTDESK_API_PAGE_SIZE_MAX", default=100)
WEBHOOK_TIMEOUT_SECONDS = env.float("AGENTDESK_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_MAX_ATTEMPTS = env.int("AGENTDESK_WEBHOOK_MAX_ATTEMPTS", default=15)
WEBHOOK_BACKOFF_BASE_SECONDS = env.float("AGENTDESK_WEBHOOK_BACKOFF_BASE_SECONDS", default=2.0)
WEBHOOK_BACKOFF_MAX_SECONDS = env.float("AGENTDESK_WEBHOOK_BACKOFF_MAX_SECONDS", default=3600.0)
# After a team's webhook secret is rotated, the previous one still signs for this long.
WEBHOOK_SECRET_GRACE_SECONDS = env.int("AGENTDESK_WEBHOOK_SECRET_GRACE_SECONDS", default=86400)
# Callback hosts on loopback/private/link-local/... addresses are refused (SSRF guard,
# runs.callback_urls) except on the embedded default and with DEBUG, where the receiver of
# `make run` or a test is on this machine.
WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", default=EMBEDDED or DEBUG)

METRICS_TOKEN = env("METRICS_TOKEN", default="")
OTEL_EXPORTER_OTLP_ENDPOINT = env("OTEL_EXPORTER_OTLP_ENDPOINT", default="")

# --- notifications (runs.notifications, runs.notifier) --------------------------------------
# Links in notifications point into the console here (the page still asks for a login).
AGENTDESK_PUBLIC_URL = env("AGENTDESK_PUBLIC_URL", default="http://127.0.0.1:8000")
# At most this many messages per target in a one-minute window; what does not fit goes out
# as one digest (runs.notifier says exactly how).
NOTIFICATION_RATE_PER_MINUTE = env.int("AGENTDESK_NOTIFICATION_RATE_PER_MINUTE", default=5)
# A target's sender waits this long after a notification is written, so that what fires at
# once is sent together.
NOTIFICATION_BATCH_SECONDS = env.float("AGENTDESK_NOTIFICATION_BATCH_SECONDS", default=2.0)
NOTIFICATION_TIMEOUT_SECONDS = env.float("AGENTDESK_NOTIFICATION_TIMEOUT_SECONDS", default=10.0)
# ``email:`` targets go through Django's mail: EMAIL_URL, e.g. smtp+tls://user:pass@host:587
# (django-environ's syntax); unset, mail is printed to the console.
globals().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="AgentDesk <agentdesk@localhost>")

# --- production hardening (``manage.py check --deploy`` is clean in the production topology)
# HTTPS only — secure cookies, HTTPS redirect, HSTS — by default outside DEBUG in the
# production topology (REDIS_URL); DJANGO_SECURE=false turns it off for a plain-HTTP run
# (a local Postgres + Redis stack, the tests), =true turns it on for the embedded default.
SECURE = env.bool("DJANGO_SECURE", default=not (DEBUG or EMBEDDED))
BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)
if SECURE:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=True)
    # Load balancers probe over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    if BEHIND_PROXY:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600 if SECURE else 0)
# With HSTS on, cover subdomains and allow preloading unless told otherwise.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS",
                                          default=SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS > 0)
# Django's defaults, stated so a test holds them: no MIME sniffing, no framing, no referrer
# across origins, a window of our own.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Content-Security-Policy (django-csp): scripts only from our own static files — no inline
# script, no eval (htmx's eval features are off in base.html's htmx-config) — and nothing
# from other origins: model output or task input that slipped past escaping still could not
# run. Style *attributes* are allowed (progress bars, chart swatches, Django admin's
# widgets); style elements and sheets only from our static files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],  # fetch/XHR and the websockets (ws:/wss: to this host)
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Log-in throttling (django-axes): after AXES_FAILURE_LIMIT failed log-ins for one username
# from one address, that pair is locked out for the cool-off (the login page says so, with
# a 429); a success resets the count. An admin unlocks early in admin → Access attempts.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair
    "django.contrib.auth.backends.ModelBackend",
    # team admins' model permissions in Django admin, from their memberships (no group)
    "runs.permissions.TeamAdminBackend",
]
AXES_FAILURE_LIMIT = env.int("AGENTDESK_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AGENTDESK_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "runs.views.accounts.locked_out"
AXES_DISABLE_ACCESS_LOG = True  # failures are what it counts; successes need no table
if BEHIND_PROXY:  # the client's address is the proxy's X-Forwarded-For, not the proxy's own
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = env.int("DJANGO_PROXY_COUNT", default=1)

# --- auth, static, i18n ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# htmx actions get a "session expired" alert instead of a silent 403 (runs.views.session).
CSRF_FAILURE_VIEW = "runs.views.session.csrf_failure"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING_CONFIG = None  # applied below, after structlog is configured
LOGGING = logconfig.configure(
    fmt=env("AGENTDESK_LOG_FORMAT", default="json"), level=env("LOG_LEVEL", default="INFO")
)
logging.config.dictConfig(LOGGING)
