"""Schemathesis against the committed OpenAPI document, on a real service: no request the
document allows (nor the invalid ones it generates) gets a server error, and every response
conforms to the document (status codes, headers, content types, bodies).

One check is left out: that every request the schema allows is accepted. A query or device
naming a pipeline, site or hardware class the world does not have, or an idempotency key
reused for another request, is valid JSON for the schema and refused by design (422, 409)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from circinus.bench.service import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = schemathesis.openapi.from_dict(
    json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")))

pytestmark = [pytest.mark.integration, pytest.mark.slow]


TOKEN = "fuzz-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    svc = ServiceProcess(ROOT / "examples" / "tiny.yaml", f"sqlite:///{tmp / 's.db'}", TOKEN,
                         tmp / "log")
    svc.wait_ready(600)
    yield svc
    svc.stop()
    log = (tmp / "log").read_text()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case, service: ServiceProcess) -> None:
    case.call_and_validate(base_url=service.url, headers=AUTH,
                           excluded_checks=[positive_data_acceptance])
