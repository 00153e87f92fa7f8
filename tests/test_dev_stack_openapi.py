"""The gateway's OpenAPI document declares how to authenticate (the session cookie and Bearer API
tokens), so the API docs page can authorise and generated clients know what to send."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, cast

import pytest

from libs.events.runtime import Deps
from libs.events.settings import Settings
from services.gateway.app import create_app
from services.gateway.people.security import SESSION_COOKIE

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
}
EITHER_CREDENTIAL: list[dict[str, list[str]]] = [{"session": []}, {"token": []}]


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    # The document is built from the routes alone: no database or bus is needed to read it.
    deps = cast(Deps, types.SimpleNamespace(settings=Settings(env="test", data_dir=tmp_path)))
    openapi: dict[str, Any] = create_app(deps).openapi()
    return openapi


def test_the_document_declares_the_cookie_and_bearer_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["session"] | {"description": ""} == {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "",
    }
    assert schemes["token"]["type"] == "http"
    assert schemes["token"]["scheme"] == "bearer"
    assert "Authorize" in document["info"]["description"]


def test_every_operation_that_needs_a_caller_takes_either_credential(
    document: dict[str, Any],
) -> None:
    operations = {
        (method.upper(), path): operation
        for path, by_method in document["paths"].items()
        for method, operation in by_method.items()
    }
    assert set(operations) >= PUBLIC
    for key, operation in operations.items():
        if key in PUBLIC:
            assert "security" not in operation, key
        else:
            assert operation.get("security") == EITHER_CREDENTIAL, key
    assert len(operations) - len(PUBLIC) >= 25
