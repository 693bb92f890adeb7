"""Property-based tests of the service against its own OpenAPI schema (schemathesis): whatever
the generated request, the answer is never a server error and conforms to the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from http_fixtures import make_app, serve_settings
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)


@pytest.fixture(scope="module")
def api(bundle_dir: Path) -> Iterator[schemathesis.BaseSchema]:
    app = make_app(serve_settings(bundle_dir))
    with TestClient(app):  # the lifespan loads the bundle
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.slow
def test_no_server_errors_and_responses_conform(api: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /recommend", "GET /items/{item_id}/similar",
                                               "GET /healthz", "GET /readyz", "GET /metrics",
                                               "POST /admin/reload"}
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                           response_schema_conformance])

        check()
