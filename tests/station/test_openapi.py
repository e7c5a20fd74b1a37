"""The API's reference: the OpenAPI 3.1 document is generated from the code, valid, covers
every route under /api/v1, is served with a plain docs page and an index; and schemathesis,
driven by the document against the app in-process, finds no server error and no answer that
breaks the document."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from redis import Redis
from rq import Queue
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scanner_app.platform.web.openapi import API_PREFIX, openapi_document
from tests.conftest import build_app
from tests.support import api_client, dispose, jpeg_bytes
from tests.web.conftest import add_scan, add_session

EXAMPLES_PER_OPERATION = 12  # ~20 operations: well under a minute on a Pi-sized machine


@pytest.fixture
def app(data_dir) -> Iterator:
    app = build_app(data_dir)
    yield app
    dispose(app)


@pytest.fixture
def key(app) -> str:
    return api_client(app, "openapi").environ_base["HTTP_X_API_KEY"]


def _document(app, key: str) -> dict:
    response = app.test_client().get("/api/v1/openapi.json", headers={"X-Api-Key": key})
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_document_is_valid_openapi_3_1(app, key):
    document = _document(app, key)
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on anything that breaks the OpenAPI 3.1 schema
    schemas = document["components"]["schemas"]
    for name in ("Session", "Scan", "Upload", "Capture", "Error", "SessionList", "ScanList",
                 "CaptureList", "UploadBatch"):
        assert name in schemas, name
    # Generated from the code: the status enums are the models' own.
    assert schemas["Scan"]["properties"]["status"]["enum"] == [
        "queued", "running", "paused", "completed", "failed", "cancelled", "interrupted"]


def test_every_api_route_and_method_is_in_the_document(app, key):
    paths = _document(app, key)["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule == API_PREFIX or rule.rule.startswith(API_PREFIX + "/")):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = paths.get(path, {}).get(method.lower())
            if not operation or not operation.get("responses"):
                missing.append(f"{method} {path}")
    assert missing == []
    # Path parameters come from the rules themselves.
    session = paths["/api/v1/sessions/{session_id}"]
    assert session["parameters"] == [{"in": "path", "name": "session_id", "required": True,
                                      "schema": {"type": "integer", "minimum": 1,
                                                 "maximum": 2**31 - 1}}]


def test_the_document_needs_a_key_like_the_rest_of_the_api(app):
    for path in ("/api/v1", "/api/v1/openapi.json", "/api/v1/docs"):
        response = app.test_client().get(path)
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"]


def test_the_api_index_points_at_the_document_and_the_page(app, key):
    response = app.test_client().get("/api/v1", headers={"X-Api-Key": key})
    assert response.status_code == 200
    assert response.get_json() == {"name": "Scanning station API", "version": "1",
                                   "openapi": "/api/v1/openapi.json", "docs": "/api/v1/docs"}


def test_the_docs_page_lists_every_operation_and_schema_without_inline_code(app, key):
    response = app.test_client().get("/api/v1/docs", headers={"X-Api-Key": key})
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    with app.app_context():
        document = openapi_document(app)
    for path, item in document["paths"].items():
        for method in item:
            if method != "parameters":
                assert f"{method.upper()} {path}" in page, (method, path)
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in page, name
    assert "captures_count" in page and "X-Api-Key" in page
    # The station's CSP allows only its own files: no inline script or style, no CDN.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "<style" not in page and " style=" not in page
    assert "cdn" not in page.lower() and "https://" not in page


@pytest.fixture
def queued_app(data_dir, redis_server) -> Iterator:
    """With a real (shared, private) Redis: a started scan is queued, not a 503."""
    connection = Redis.from_url(redis_server)
    queues = [Queue(name, connection=connection) for name in ("uploads", "hardware")]
    for queue in queues:
        queue.empty()
    app = build_app(data_dir, SCANNER_REDIS_URL=redis_server)
    yield app
    dispose(app)
    for queue in queues:
        queue.empty()


def _seed(app) -> None:
    """Rows for generated ids to find (hypothesis tries small ids first)."""
    first = add_session(app, "First", make_current=True)
    add_session(app, "Second")
    add_scan(app, first, "completed")
    add_scan(app, first, "failed")
    client = api_client(app, "seed")
    answer = client.post("/api/v1/uploads", data={"files": [
        (io.BytesIO(jpeg_bytes()), "a.jpg")]},
        content_type="multipart/form-data")
    assert answer.status_code == 201, answer.get_data(as_text=True)


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(queued_app):
    app = queued_app
    key = api_client(app, "schemathesis").environ_base["HTTP_X_API_KEY"]
    _seed(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app,
                                            headers={"X-Api-Key": key})
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  derandomize=True, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case) -> None:
            response = case.call(headers={"X-Api-Key": key})
            case.validate_response(response, checks=checks)

        run()
        tried.append(f"{operation.method.upper()} {operation.path}")
    assert len(tried) >= 18, tried  # every operation of the document was exercised


def test_requests_outside_the_document_get_a_4xx_never_a_server_error(queued_app):
    """Schemathesis' negative mode: wrong types, missing fields, out-of-range ids and pages.
    Each must be refused with a 4xx (and the error body), never a 5xx."""
    app = queued_app
    key = api_client(app, "schemathesis-negative").environ_base["HTTP_X_API_KEY"]
    _seed(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app,
                                            headers={"X-Api-Key": key})
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  derandomize=True, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        def run(case) -> None:
            response = case.call(headers={"X-Api-Key": key})
            case.validate_response(response, checks=[not_a_server_error])

        run()
