"""The OpenAPI 3.1 document of the JSON API, generated from the code.

Nothing here lists the API by hand: every rule under /api/v1 in the app's url map becomes a
path (apispec's FlaskPlugin), its operations come from the YAML after `---` in the view's
docstring, and its path parameters from the rule's own arguments. Each slice registers the
schemas of the objects it answers with (`document_schemas(bp, {...})` in its api.py); this
module holds only what every part of the API shares: the error body, the page fields, the
common error responses and the API-key scheme.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from scanner_app.platform.web.converters import MAX_ID

API_PREFIX = "/api/v1"
TITLE = "Scanning station API"
VERSION = "1"
_EXTENSION = "scanner_openapi"

DATE_TIME = {"type": "string", "format": "date-time"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null, the OpenAPI 3.1 (JSON Schema) way."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    kinds = kind if isinstance(kind, list) else [kind]
    return {**schema, "type": [*kinds, "null"]}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], required: list[str] | None = None,
        description: str | None = None) -> dict[str, Any]:
    """An object schema; every property is required unless `required` says otherwise.
    More fields may be added later, so clients must ignore those they do not know."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(properties) if required is None else required}
    if description:
        schema["description"] = description
    return schema


ERROR = obj({"error": obj({
    "code": {"type": "string", "description": "A short slug for scripts, e.g. not_found."},
    "message": {"type": "string", "description": "One sentence for a person: what to do."},
})}, description="Every 4xx and 5xx answer of the API.")

_ERRORS = {
    "BadRequest": (400, "The request is not what this address takes; the message says why."),
    "Unauthorized": (401, "No valid X-Api-Key header and no browser login."),
    "NotFound": (404, "Nothing has this id."),
    "Conflict": (409, "The request clashes with the station's state (the message says how)."),
    "TooLarge": (413, "The request body is larger than the station accepts."),
    "Unavailable": (503, "The job queue cannot be reached."),
    "InsufficientStorage": (507, "The disk would fill."),
}

PAGE_PARAMETERS = [
    {"in": "query", "name": "page", "required": False,
     "description": "Which page, from 1 (a page past the last one gives the last one).",
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID, "default": 1}},
    {"in": "query", "name": "per_page", "required": False,
     "description": "Items per page (at most 200; more is read as 200).",
     "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
]


def document_schemas(bp: Blueprint, schemas: dict[str, dict[str, Any]]) -> None:
    """Put `schemas` into the document of every app `bp` is registered on."""

    def _record(state: Any) -> None:
        store = state.app.extensions.setdefault(_EXTENSION, {"schemas": {}, "spec": None})
        store["schemas"].update(schemas)

    bp.record_once(_record)


def _path_parameters(app: Flask, endpoint: str) -> list[dict[str, Any]]:
    rule = app.url_map._rules_by_endpoint[endpoint][0]
    parameters = []
    for name in sorted(rule.arguments):
        schema: dict[str, Any] = {"type": "string"}
        if type(rule._converters.get(name)).__name__ == "IdConverter":
            schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
        parameters.append({"in": "path", "name": name, "required": True, "schema": schema})
    return parameters


def api_endpoints(app: Flask) -> list[str]:
    """Endpoints of every rule under /api/v1, in path order."""
    rules = sorted((r for r in app.url_map.iter_rules()
                    if r.rule == API_PREFIX or r.rule.startswith(API_PREFIX + "/")),
                   key=lambda r: r.rule)
    return list(dict.fromkeys(r.endpoint for r in rules))


def build_spec(app: Flask) -> dict[str, Any]:
    """The whole document as a dict (JSON-ready)."""
    # Imported here: apispec and PyYAML are needed only when the document is asked for.
    from apispec import APISpec
    from apispec_webframeworks.flask import FlaskPlugin

    spec = APISpec(
        title=TITLE, version=VERSION, openapi_version="3.1.0", plugins=[FlaskPlugin()],
        info={"description": "The JSON API of the scanning station. Send the header "
                             "X-Api-Key with a key from `scanner apikey create NAME`; a "
                             "browser login works too. Errors are the Error object with a "
                             "4xx or 5xx status. Objects may gain fields: ignore unknown ones."},
        servers=[{"url": "/"}],
        security=[{"ApiKey": []}],
    )
    spec.components.security_scheme("ApiKey", {"type": "apiKey", "in": "header",
                                                "name": "X-Api-Key"})
    spec.components.schema("Error", ERROR)
    for name, (_status, description) in _ERRORS.items():
        spec.components.response(name, {"description": description, "content": {
            "application/json": {"schema": ref("Error")}}})
    for parameter in PAGE_PARAMETERS:
        spec.components.parameter(parameter["name"], parameter["in"],
                                  {k: v for k, v in parameter.items() if k != "in"})
    store = app.extensions.get(_EXTENSION, {"schemas": {}})
    for name, schema in sorted(store["schemas"].items()):
        spec.components.schema(name, schema)
    for endpoint in api_endpoints(app):
        spec.path(view=app.view_functions[endpoint], app=app,
                  parameters=_path_parameters(app, endpoint) or None)
    return spec.to_dict()


def openapi_document(app: Flask) -> dict[str, Any]:
    """The document, built once per app (the url map does not change once it serves)."""
    store = app.extensions.setdefault(_EXTENSION, {"schemas": {}, "spec": None})
    if store.get("spec") is None:
        store["spec"] = build_spec(app)
    return store["spec"]
