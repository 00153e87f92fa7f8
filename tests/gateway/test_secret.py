"""The signing secret: required in production, generated once and reused in development."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.server_secret import SECRET_FILE, resolve_secret
from services.gateway.app import create_app


def test_production_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(env="production", secret=None, data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="OPSLEDGER_SECRET must be set"):
        resolve_secret(settings)
    with pytest.raises(RuntimeError, match="OPSLEDGER_SECRET must be set"):
        create_app(cast(Deps, SimpleNamespace(settings=settings)))
    assert not (tmp_path / SECRET_FILE).exists()  # no generated fallback in production


def test_production_with_an_empty_secret_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="OPSLEDGER_SECRET must be set"):
        resolve_secret(Settings(env="production", secret="", data_dir=tmp_path))


def test_a_configured_secret_is_used(tmp_path: Path) -> None:
    settings = Settings(env="production", secret="s" * 40, data_dir=tmp_path)
    assert resolve_secret(settings) == b"s" * 40


def test_the_dev_secret_is_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(env="development", secret=None, data_dir=tmp_path / "data")
    first = resolve_secret(settings)
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(first.decode())) == 32
    assert resolve_secret(settings) == first  # a restart reuses it
    other = resolve_secret(Settings(env="development", secret=None, data_dir=tmp_path / "b"))
    assert other != first  # never a shared, hard-coded value


def test_a_secret_file_readable_by_others_is_restricted(tmp_path: Path) -> None:
    settings = Settings(env="development", secret=None, data_dir=tmp_path)
    first = resolve_secret(settings)
    (tmp_path / SECRET_FILE).chmod(0o644)
    assert resolve_secret(settings) == first
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
