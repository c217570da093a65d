"""Every `/api/v1` operation of the app's own OpenAPI schema, fuzzed by Schemathesis against the
running app (web + worker as processes), anonymously and with a bearer token: no response is a
5xx, and every response conforms to the schema (declared body shape and content type).

The number of generated examples per operation is bounded (FUZZ_EXAMPLES, default 25) so CI
stays fast; raise it locally for a deeper run: `FUZZ_EXAMPLES=500 make test PYTEST_ARGS=...`.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from server.accounts.services import create_api_token
from tests import factories
from tests.e2e.conftest import LiveServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def api_schema(live_server: LiveServer, meili_server: str) -> schemathesis.BaseSchema:
    raw = httpx.get(f"{live_server.base_url}/schema/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw).include(path_regex=r"^/api/v1/")
    schema.config.update(base_url=live_server.base_url, request_timeout=10)
    return schema


@pytest.fixture
async def bearer(live_server: LiveServer) -> dict[str, str]:
    """A fresh agent and token for each run (every test starts from empty tables). Made through
    the services, not POST /api/v1/auth/token: the anonymous run fuzzes that endpoint into its
    rate limit."""
    agent = await factories.make_user("agent")
    token = await create_api_token(agent, "fuzzing")
    return {"Authorization": f"Bearer {token}"}


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure in CI reproduces locally
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _fuzz_every_operation(api_schema: schemathesis.BaseSchema, headers: dict[str, str]) -> None:
    """One Hypothesis run per operation; every operation runs even when an earlier one fails,
    and the failure report names each failing operation."""
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 5, "the API schema lost its operations"
    for operation in operations:

        @given(case=operation.as_strategy())
        @FUZZ_SETTINGS
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_anonymous(api_schema: schemathesis.BaseSchema) -> None:
    _fuzz_every_operation(api_schema, {})


def test_with_token(api_schema: schemathesis.BaseSchema, bearer: dict[str, str]) -> None:
    _fuzz_every_operation(api_schema, bearer)
