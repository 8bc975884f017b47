from pathlib import Path

import pytest

from v5_shared.keys import generate_development_keys
from v5_shared.settings import ConfigurationError, Settings


def test_development_mode_accepts_missing_keys() -> None:
    Settings(environment="development").check_production_safety(needs_private_key=True)


def test_production_refuses_missing_keys() -> None:
    with pytest.raises(ConfigurationError, match="JWT_PUBLIC_KEY"):
        Settings(environment="production").check_production_safety()


def test_production_refuses_development_keys(tmp_path: Path) -> None:
    private, public, created = generate_development_keys(tmp_path)
    assert created
    settings = Settings(
        environment="production", jwt_public_key_file=public, jwt_private_key_file=private
    )
    with pytest.raises(ConfigurationError, match="development key"):
        settings.check_production_safety(needs_private_key=True)


def test_production_accepts_configured_real_keys(tmp_path: Path) -> None:
    private, public, _ = generate_development_keys(tmp_path)
    strip = "\n".join(line for line in public.read_text().splitlines() if "DEVELOPMENT" not in line)
    settings = Settings(environment="production", jwt_public_key=strip)
    settings.check_production_safety(needs_private_key=False)
    # The private key is still the development one: identity must refuse it.
    with pytest.raises(ConfigurationError):
        Settings(
            environment="production", jwt_public_key=strip, jwt_private_key_file=private
        ).check_production_safety(needs_private_key=True)


def test_generate_keys_keeps_existing_pair(tmp_path: Path) -> None:
    _, public, _ = generate_development_keys(tmp_path)
    first = public.read_text()
    _, _, created = generate_development_keys(tmp_path)
    assert not created
    assert public.read_text() == first
    assert (tmp_path / "jwt_private.pem").stat().st_mode & 0o077 == 0


def test_pool_bounds_are_validated() -> None:
    with pytest.raises(ValueError):
        Settings(db_pool_min_size=5, db_pool_max_size=2)


def test_settings_come_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_TTL_SECONDS", "5")
    monkeypatch.setenv("REDIS_URL", "redis://example.invalid:1/0")
    settings = Settings()
    assert settings.session_ttl_seconds == 5
    assert settings.redis_url == "redis://example.invalid:1/0"
