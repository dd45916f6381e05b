from __future__ import annotations

import pytest

from cityos.config import ConfigurationError, Settings, load_settings

STRONG = "x" * 40


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "CITYOS_ENV": "production",
        "DATABASE_URL": "postgresql://app:pw@db:5432/cityos",
        "REDIS_URL": "redis://redis:6379/0",
        "CERBOS_URL": "grpc://cerbos:3593",
        "KEYCLOAK_URL": "https://auth.example.com",
        "KEYCLOAK_CLIENT_SECRET": STRONG,
        "MEDUSA_BACKEND_URL": "https://api.example.com",
        "JWT_SECRET": STRONG,
        "COOKIE_SECRET": STRONG + "c",
        "PAYLOAD_SECRET": STRONG + "p",
        "STRIPE_API_KEY": "sk_live_" + STRONG,
        "STRIPE_WEBHOOK_SECRET": "whsec_" + STRONG,
        "STRIPE_PUBLISHABLE_KEY": "pk_live_" + STRONG,
        "CERBOS_ADMIN_PASSWORD": STRONG + "a",
    }
    env.update(overrides)
    return env


def apply(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_development_runs_on_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    apply(monkeypatch, {})
    settings = load_settings()
    assert settings.DATABASE_URL is None
    assert not settings.is_production


def test_a_complete_production_environment_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    apply(monkeypatch, production_env())
    settings = load_settings()
    assert settings.is_production
    assert settings.keycloak_issuer == "https://auth.example.com/realms/cityos"


def test_production_lists_every_problem_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    env = production_env(JWT_SECRET="short")
    del env["DATABASE_URL"]
    del env["COOKIE_SECRET"]  # falls back to the embedded default, which production refuses
    apply(monkeypatch, env)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    problems = "\n".join(raised.value.problems)
    assert "DATABASE_URL: required in production" in problems
    assert "JWT_SECRET: must be at least 32 characters" in problems
    assert "COOKIE_SECRET: the embedded development default is refused" in problems
    assert len(raised.value.problems) >= 3
    assert str(raised.value).count("\n  - ") == len(raised.value.problems)


def test_invalid_values_are_reported_by_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    apply(monkeypatch, {"CITYOS_ENV": "staging", "STRIPE_PLATFORM_FEE_PERCENT": "150",
                        "PROMETHEUS_ENABLED": "maybe", "CITYOS_SHIPPING_COMMISSION_PERCENT": "-1"})
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    names = {problem.split(":")[0] for problem in raised.value.problems}
    assert {"CITYOS_ENV", "STRIPE_PLATFORM_FEE_PERCENT", "PROMETHEUS_ENABLED",
            "CITYOS_SHIPPING_COMMISSION_PERCENT"} <= names


def test_a_configured_integration_needs_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    apply(monkeypatch, {"FLEETBASE_URL": "https://fleet.example.com", "LOG_LEVEL": "loud"})
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "FLEETBASE_API_KEY: required when FLEETBASE_URL is set" in raised.value.problems
    assert any(problem.startswith("LOG_LEVEL") for problem in raised.value.problems)


def test_cors_lists_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    apply(monkeypatch, {"STORE_CORS": "https://a.example, https://b.example", "ADMIN_CORS": ""})
    settings = load_settings()
    assert settings.store_cors_origins == ["https://a.example", "https://b.example"]
    assert settings.admin_cors_origins == []


def test_the_development_issuer_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    apply(monkeypatch, production_env(CITYOS_DEV_TOKENS="true"))
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert any(problem.startswith("CITYOS_DEV_TOKENS") for problem in raised.value.problems)
    apply(monkeypatch, production_env())
    assert not load_settings().dev_tokens_trusted
    apply(monkeypatch, {})
    assert load_settings().dev_tokens_trusted


def test_the_stripe_publishable_key_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    env = production_env()
    del env["STRIPE_PUBLISHABLE_KEY"]  # falls back to the embedded pk_test_ default, refused in production
    apply(monkeypatch, env)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "STRIPE_PUBLISHABLE_KEY: the embedded development default is refused in production" in \
        raised.value.problems
    for wrong, problem in (
            ("sk_live_" + STRONG, "not a Stripe publishable key (expected pk_test_… or pk_live_…)"),
            ("pk_test_" + STRONG, "a test key with a live STRIPE_API_KEY (use the publishable key of the same mode)")):
        apply(monkeypatch, production_env(STRIPE_PUBLISHABLE_KEY=wrong))
        with pytest.raises(ConfigurationError) as raised:
            load_settings()
        assert raised.value.problems == [f"STRIPE_PUBLISHABLE_KEY: {problem}"]
    apply(monkeypatch, {"STRIPE_API_KEY": "sk_test_abc", "STRIPE_PUBLISHABLE_KEY": "pk_test_abc"})
    assert load_settings().STRIPE_PUBLISHABLE_KEY == "pk_test_abc"


def test_several_workers_need_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    apply(monkeypatch, {"CITYOS_WORKERS": "2"})
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert any(problem.startswith("CITYOS_WORKERS: more than one worker needs REDIS_URL")
               for problem in raised.value.problems)
    apply(monkeypatch, {"CITYOS_WORKERS": "2", "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert load_settings().CITYOS_WORKERS == 2
