"""Settings: the deployment plan's environment variables, validated once at start-up.

Names are exactly those of the deployment plan (DATABASE_URL, STRIPE_API_KEY, …) plus a few CITYOS_* knobs of
this implementation. In development every value has an embedded default so `cityos serve` runs on one machine;
in production (`CITYOS_ENV=production`) the embedded defaults are refused, every secret must be at least
32 characters, and start-up fails with one message that lists every missing or invalid variable.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32

# Embedded development defaults. Production refuses every one of them.
DEV_JWT_SECRET = "dev-only-jwt-secret-not-for-production-use"
DEV_COOKIE_SECRET = "dev-only-cookie-secret-not-for-production-use"
DEV_PAYLOAD_SECRET = "dev-only-payload-secret-not-for-production-use"
DEV_STRIPE_API_KEY = "sk_test_cityos_embedded_development_key"
DEV_STRIPE_WEBHOOK_SECRET = "whsec_cityos_embedded_development_secret"
DEV_STRIPE_PUBLISHABLE_KEY = "pk_test_cityos_embedded_development_key"
DEV_CERBOS_ADMIN_PASSWORD = "dev-only-cerbos-admin-password-change-me"
EMBEDDED_DEFAULTS = {
    DEV_JWT_SECRET,
    DEV_COOKIE_SECRET,
    DEV_PAYLOAD_SECRET,
    DEV_STRIPE_API_KEY,
    DEV_STRIPE_WEBHOOK_SECRET,
    DEV_STRIPE_PUBLISHABLE_KEY,
    DEV_CERBOS_ADMIN_PASSWORD,
}

# Secrets that must be long in production. ERPNext is the documented exception: it issues 15-character API
# secrets itself (frappe.generate_hash(length=15)), so only its presence is checked.
LONG_SECRETS = (
    "JWT_SECRET",
    "COOKIE_SECRET",
    "PAYLOAD_SECRET",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "KEYCLOAK_CLIENT_SECRET",
    "CERBOS_ADMIN_PASSWORD",
    "PAYLOAD_API_KEY",
    "FLEETBASE_API_KEY",
)
REQUIRED_IN_PRODUCTION = (
    "DATABASE_URL",
    "REDIS_URL",
    "CERBOS_URL",
    "KEYCLOAK_URL",
    "MEDUSA_BACKEND_URL",
    "JWT_SECRET",
    "COOKIE_SECRET",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_PUBLISHABLE_KEY",
)
# An integration that is configured (its URL is set) needs its credentials.
INTEGRATION_CREDENTIALS = {
    "PAYLOAD_URL": ("PAYLOAD_API_KEY", "PAYLOAD_SECRET"),
    "FLEETBASE_URL": ("FLEETBASE_API_KEY", "CITYOS_FLEETBASE_WEBHOOK_SECRET"),
    "ERPNEXT_URL": ("ERPNEXT_API_KEY", "ERPNEXT_API_SECRET"),
    "KEYCLOAK_URL": ("KEYCLOAK_CLIENT_SECRET",),
}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigurationError(Exception):
    """Raised with every problem of the environment at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid configuration:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", env_file=None)

    CITYOS_ENV: Environment = Environment.DEVELOPMENT
    CITYOS_HOST: str = "127.0.0.1"
    CITYOS_PORT: int = 8000
    CITYOS_DATA_DIR: Path = Path(".cityos")
    CITYOS_MAX_BODY_BYTES: int = Field(default=1_048_576, gt=0)
    # Seconds a client may take to send a request's headers before it is disconnected.
    CITYOS_HEADER_TIMEOUT: float = Field(default=10.0, gt=0, le=300)
    CITYOS_POLICY_DIR: Path = Path("policies")
    # Events a subscription may have waiting before its subscriber is cut off (close code 4413).
    CITYOS_SUBSCRIBER_QUEUE: int = Field(default=256, ge=1, le=100_000)
    # After start-up, freeze the objects that live as long as the process and raise the GC thresholds.
    CITYOS_GC_TUNING: bool = True
    # Uvicorn worker processes of `cityos serve` (set it to the number of cores). More than one needs REDIS_URL:
    # live events and cache invalidations must reach every worker.
    CITYOS_WORKERS: int = Field(default=1, ge=1, le=64)
    # Identification caches (publishable key/domain → store, verified tokens): seconds an entry lives at most (a
    # revocation reaches every replica through the broker at once; this bounds a lost announcement) and entries
    # per cache. 0 turns caching off.
    CITYOS_AUTH_CACHE_TTL: float = Field(default=60.0, ge=0, le=3600)
    CITYOS_AUTH_CACHE_SIZE: int = Field(default=10_000, ge=0, le=1_000_000)
    CITYOS_COMPILED_READS: bool = True  # query operations the compiler covers run as one SQL statement per root field
    # Run the scheduled jobs (cityos jobs list) in this process on their schedules; any number of replicas may
    # (each due run happens once). off: run them elsewhere (Kubernetes CronJobs, `cityos jobs run`).
    CITYOS_SCHEDULER: bool = True
    # Days of job_run history kept; the prune-job-runs job deletes older finished runs.
    CITYOS_JOB_RUN_RETENTION_DAYS: int = Field(default=30, ge=1, le=3650)
    # Syncs to Payload and ERPNext send a row only once it is this many seconds old: longer than any transaction
    # of ours stays open, so a row committed late is never passed by the cursor (domain/platform/sync.py).
    CITYOS_SYNC_SETTLE_SECONDS: float = Field(default=60.0, ge=0, le=3600)

    # Database
    DATABASE_URL: str | None = None
    # A streaming read replica of DATABASE_URL: query operations over HTTP (the compiled read path included) read
    # there; mutations, subscriptions, jobs and webhooks stay on the primary. Replication lag shows: a client that
    # reads its own write at once should read it from the mutation's payload.
    DATABASE_READ_URL: str | None = None
    # Seconds any wait on the database may take (connect, pool, statement) before the request fails UNAVAILABLE.
    CITYOS_DB_TIMEOUT: float = Field(default=5.0, gt=0, le=300)
    REDIS_URL: str | None = None

    # Core
    MEDUSA_BACKEND_URL: str = "http://127.0.0.1:8000"
    STORE_CORS: str = "http://localhost:8000,http://127.0.0.1:8000,http://localhost:5173"
    ADMIN_CORS: str = "http://localhost:7001,http://127.0.0.1:7001"
    MEDUSA_ADMIN_ONBOARDING_TYPE: str = "default"
    JWT_SECRET: str = DEV_JWT_SECRET
    COOKIE_SECRET: str = DEV_COOKIE_SECRET

    # Stripe
    STRIPE_API_KEY: str = DEV_STRIPE_API_KEY
    STRIPE_WEBHOOK_SECRET: str = DEV_STRIPE_WEBHOOK_SECRET
    # The key Stripe.js uses in the browser to confirm a PaymentIntent; startCheckout returns it.
    STRIPE_PUBLISHABLE_KEY: str = DEV_STRIPE_PUBLISHABLE_KEY
    STRIPE_CONNECT_CLIENT_ID: str | None = None
    STRIPE_PLATFORM_FEE_PERCENT: Decimal = Field(default=Decimal("2.5"), ge=0, le=100)
    # What the platform keeps of a vendor's own shipping (a vendor shipping with its own option): by default
    # nothing, the vendor gets all of it (marketplace/rules.py, shipping_commission).
    CITYOS_SHIPPING_COMMISSION_PERCENT: Decimal = Field(default=Decimal(0), ge=0, le=100)
    # The admin app: Stripe Connect onboarding returns there (…/settings/integrations/stripe/{return,refresh,callback}).
    CITYOS_ADMIN_URL: str = "http://localhost:7001"
    # Where the Stripe SDK sends API calls (default: Stripe itself); tests point it at a local fake.
    CITYOS_STRIPE_API_BASE: str | None = None
    # Vendor payouts: days a sale's vendor share is held before it can be paid out, and the smallest payout.
    CITYOS_PAYOUT_HOLD_DAYS: int = Field(default=7, ge=0, le=365)
    CITYOS_PAYOUT_MINIMUM: int = Field(default=1000, ge=1)
    # How long stock stays reserved for a cart in checkout.
    CITYOS_RESERVATION_MINUTES: int = Field(default=30, gt=0, le=24 * 60)
    # How long a company order waiting for approval holds its stock (then the units go back on sale, and the
    # approval takes them again if they are still there).
    CITYOS_APPROVAL_HOLD_HOURS: int = Field(default=72, gt=0, le=30 * 24)

    # Payload CMS
    PAYLOAD_URL: str | None = None
    PAYLOAD_API_KEY: str | None = None
    PAYLOAD_SECRET: str = DEV_PAYLOAD_SECRET
    # The slug of Payload's auth collection the API key belongs to (`Authorization: <slug> API-Key <key>`).
    PAYLOAD_AUTH_COLLECTION: str = Field(default="users", pattern=r"^[a-z0-9][a-z0-9-]*$")

    # Keycloak
    KEYCLOAK_URL: str | None = None
    KEYCLOAK_REALM: str = "cityos"
    KEYCLOAK_CLIENT_ID: str = "medusa-backend"
    KEYCLOAK_CLIENT_SECRET: str | None = None
    KEYCLOAK_AUTHORIZED_PARTIES: str = "medusa-admin,medusa-backend,payload-cms"
    # The local development token issuer (`cityos token`): on by default in development, refused in production.
    CITYOS_DEV_TOKENS: bool | None = None

    # Cerbos
    CERBOS_URL: str | None = None
    CERBOS_ADMIN_USER: str = "admin"
    CERBOS_ADMIN_PASSWORD: str = DEV_CERBOS_ADMIN_PASSWORD

    # Fleetbase
    FLEETBASE_URL: str | None = None
    FLEETBASE_API_KEY: str | None = None
    # The secret Fleetbase signs its webhooks with (the API credential's secret), for POST /webhooks/fleetbase.
    CITYOS_FLEETBASE_WEBHOOK_SECRET: str | None = None

    # Email: customer notices (billing) over SMTP. smtp://[user:password@]host[:port] (STARTTLS when offered) or
    # smtps://… (TLS from the start); unset: notices are kept in the outbox and marked skipped, not sent.
    CITYOS_SMTP_URL: str | None = None
    CITYOS_SMTP_FROM: str = "CityOS Commerce <no-reply@cityos.example>"
    # Seconds any wait on the mail server may take.
    CITYOS_SMTP_TIMEOUT: float = Field(default=10.0, gt=0, le=300)

    # ERPNext
    ERPNEXT_URL: str | None = None
    ERPNEXT_API_KEY: str | None = None
    ERPNEXT_API_SECRET: str | None = None
    # The ERPNext names our documents use (see deploy/erpnext/README.md).
    ERPNEXT_CUSTOMER_GROUP: str = "Individual"
    ERPNEXT_TERRITORY: str = "All Territories"
    ERPNEXT_TAX_ACCOUNT: str = "Sales Tax - CO"
    ERPNEXT_SHIPPING_ACCOUNT: str = "Freight and Forwarding Charges - CO"
    ERPNEXT_PAYMENT_ACCOUNT: str = "Stripe Clearing - CO"
    ERPNEXT_MODE_OF_PAYMENT: str = "Credit Card"
    # The item (a non-stock service item whose income account is the shipping account) a shipping row is when it
    # must be an item row: a shipping-only refund's credit note, a tax-inclusive order's shipping.
    ERPNEXT_SHIPPING_ITEM_CODE: str = "Shipping"

    # Observability
    LOG_LEVEL: str = "info"
    SENTRY_DSN: str | None = None
    PROMETHEUS_ENABLED: bool = True
    # OpenTelemetry tracing (cityos/observability/tracing.py): off by default; spans go to the OTLP/HTTP collector.
    CITYOS_TRACING: bool = False
    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = None  # e.g. http://otel-collector:4318 (/v1/traces is appended)
    OTEL_SERVICE_NAME: str = "cityos-commerce"
    # Tenants with their own label on the business gauges (the most orders first); the others are summed as _other.
    CITYOS_METRICS_TENANTS: int = Field(default=50, ge=0, le=1000)
    # When set, GET /metrics needs `Authorization: Bearer <this token>`.
    CITYOS_METRICS_TOKEN: str | None = None

    # Exposure of the API's own description (each defaults to on in development, off in production).
    CITYOS_INTROSPECTION: bool | None = None
    CITYOS_FIELD_SUGGESTIONS: bool | None = None
    CITYOS_GRAPHIQL: bool | None = None
    # The federation router's secret: `_service { sdl }` then needs the header x-cityos-router-secret. In production
    # without it, `_service` is refused.
    CITYOS_ROUTER_SECRET: str | None = None
    # Rate limits in units of query cost (limits library notation: "<amount>/<second|minute|hour|day>").
    CITYOS_RATE_LIMITS: bool = True
    # A key is shared by all of a store's shoppers; a storefront listing costs about 40, a nested admin read
    # hundreds to thousands.
    CITYOS_RATE_LIMIT_KEY: str = "2000000/minute"
    CITYOS_RATE_LIMIT_PRINCIPAL: str = "200000/minute"
    CITYOS_RATE_LIMIT_IP: str = "200000/minute"
    CITYOS_RATE_LIMIT_FAILURES: str = "60/minute"
    # Per-tenant budget for keys and principals: "acme=100000/minute,demo=5000/minute".
    CITYOS_TENANT_RATE_LIMITS: str | None = None
    # automatic (Apollo APQ), allowlist (only graphql/operations, by hash) or off.
    CITYOS_PERSISTED_QUERIES: Literal["automatic", "allowlist", "off"] = "automatic"

    @property
    def is_production(self) -> bool:
        return self.CITYOS_ENV is Environment.PRODUCTION

    @cached_property
    def store_cors_origins(self) -> list[str]:
        return _csv(self.STORE_CORS)

    @cached_property
    def admin_cors_origins(self) -> list[str]:
        return _csv(self.ADMIN_CORS)

    def _development_default(self, value: bool | None) -> bool:
        return (not self.is_production) if value is None else value

    @property
    def introspection_enabled(self) -> bool:
        return self._development_default(self.CITYOS_INTROSPECTION)

    @property
    def field_suggestions_enabled(self) -> bool:
        return self._development_default(self.CITYOS_FIELD_SUGGESTIONS)

    @property
    def graphiql_enabled(self) -> bool:
        return self._development_default(self.CITYOS_GRAPHIQL)

    @property
    def dev_tokens_trusted(self) -> bool:
        return (not self.is_production) if self.CITYOS_DEV_TOKENS is None else self.CITYOS_DEV_TOKENS

    @cached_property
    def keycloak_authorized_parties(self) -> frozenset[str]:
        return frozenset(_csv(self.KEYCLOAK_AUTHORIZED_PARTIES))

    @property
    def keycloak_issuer(self) -> str | None:
        if not self.KEYCLOAK_URL:
            return None
        return f"{self.KEYCLOAK_URL.rstrip('/')}/realms/{self.KEYCLOAK_REALM}"

    def _rate_limit_problems(self) -> list[str]:
        from limits import parse

        problems = []
        named = [(name, getattr(self, name)) for name in ("CITYOS_RATE_LIMIT_KEY", "CITYOS_RATE_LIMIT_PRINCIPAL",
                                                            "CITYOS_RATE_LIMIT_IP", "CITYOS_RATE_LIMIT_FAILURES")]
        for entry in (self.CITYOS_TENANT_RATE_LIMITS or "").split(","):
            if entry.strip():
                slug, separator, limit = entry.partition("=")
                if not separator or not slug.strip():
                    problems.append(f"CITYOS_TENANT_RATE_LIMITS: {entry.strip()!r} is not slug=<limit>")
                named.append(("CITYOS_TENANT_RATE_LIMITS", limit.strip()))
        for name, value in named:
            try:
                parse(value)
            except ValueError:
                problems.append(f"{name}: {value!r} is not a limit like 1000/minute")
        return problems

    def _stripe_key_problems(self) -> list[str]:
        """A publishable key is pk_test_… or pk_live_…, in the same mode as the secret key."""
        key = self.STRIPE_PUBLISHABLE_KEY
        if not key:
            return []
        if not key.startswith(("pk_test_", "pk_live_")):
            return ["STRIPE_PUBLISHABLE_KEY: not a Stripe publishable key (expected pk_test_… or pk_live_…)"]
        secret_mode = next((mode for mode in ("test", "live")
                            if self.STRIPE_API_KEY.startswith((f"sk_{mode}_", f"rk_{mode}_"))), None)
        if secret_mode is not None and not key.startswith(f"pk_{secret_mode}_"):
            return [f"STRIPE_PUBLISHABLE_KEY: a {key[3:7]} key with a {secret_mode} STRIPE_API_KEY (use the "
                    "publishable key of the same mode)"]
        return []

    def problems(self) -> list[str]:
        """Every problem with this configuration for its environment (empty when it is valid)."""
        problems: list[str] = []
        if self.LOG_LEVEL.lower() not in {"debug", "info", "warning", "warn", "error", "critical"}:
            problems.append(f"LOG_LEVEL: unknown level {self.LOG_LEVEL!r}")
        for url_name in ("DATABASE_URL", "DATABASE_READ_URL", "REDIS_URL", "CERBOS_URL", "KEYCLOAK_URL", "PAYLOAD_URL",
                         "FLEETBASE_URL", "ERPNEXT_URL", "MEDUSA_BACKEND_URL"):
            value = getattr(self, url_name)
            if value and not urlsplit(value).scheme:
                problems.append(f"{url_name}: not a URL (expected scheme://host…)")
        problems.extend(self._rate_limit_problems())
        problems.extend(self._stripe_key_problems())
        if self.CITYOS_SMTP_URL and urlsplit(self.CITYOS_SMTP_URL).scheme not in ("smtp", "smtps"):
            problems.append("CITYOS_SMTP_URL: expected smtp://host[:port] or smtps://host[:port]")
        if self.CITYOS_WORKERS > 1 and not self.REDIS_URL:
            problems.append("CITYOS_WORKERS: more than one worker needs REDIS_URL (live events and cache "
                            "invalidations must reach every worker)")
        for url_name, credentials in INTEGRATION_CREDENTIALS.items():
            if getattr(self, url_name):
                for credential in credentials:
                    if not getattr(self, credential):
                        problems.append(f"{credential}: required when {url_name} is set")
        if not self.is_production:
            return problems
        for name in REQUIRED_IN_PRODUCTION:
            if not getattr(self, name):
                problems.append(f"{name}: required in production")
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, str) and value in EMBEDDED_DEFAULTS:
                problems.append(f"{name}: the embedded development default is refused in production")
        for name in LONG_SECRETS:
            value = getattr(self, name)
            if value and len(value) < MIN_SECRET_LENGTH:
                problems.append(f"{name}: must be at least {MIN_SECRET_LENGTH} characters in production")
        if self.CITYOS_DEV_TOKENS:
            problems.append("CITYOS_DEV_TOKENS: the development token issuer cannot be trusted in production")
        if self.ERPNEXT_URL and not self.ERPNEXT_URL.startswith("https://"):
            problems.append("ERPNEXT_URL: must use https in production")
        return problems


def load_settings() -> Settings:
    """Read the environment; raise ConfigurationError naming every missing or invalid variable."""
    try:
        settings = Settings()
    except ValidationError as error:
        raise ConfigurationError(
            [f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()]
        ) from None
    problems = settings.problems()
    if problems:
        raise ConfigurationError(problems)
    return settings
