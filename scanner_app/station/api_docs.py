"""The API's own reference: GET /api/v1 (where to look), /api/v1/openapi.json (the OpenAPI
3.1 document generated from the code) and /api/v1/docs (the same document as a plain page:
no script, so it works under the station's self-only CSP and without a network)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, url_for

from scanner_app.platform.web.openapi import document_schemas, obj, openapi_document
from scanner_app.platform.web.render import render

bp = Blueprint("api_docs", __name__, url_prefix="/api/v1")

document_schemas(bp, {"ApiIndex": obj({
    "name": {"type": "string"},
    "version": {"type": "string"},
    "openapi": {"type": "string", "description": "Address of the OpenAPI 3.1 document."},
    "docs": {"type": "string", "description": "Address of the reference page."},
})})

METHODS = ("get", "put", "post", "patch", "delete")


@bp.get("")
def api_index() -> Response:
    """Where the API's reference is.
    ---
    get:
      tags: [reference]
      summary: The API's name and version, and where its reference is
      responses:
        200:
          description: Links to the document and the reference page.
          content: {application/json: {schema: ApiIndex}}
        401: {$ref: "#/components/responses/Unauthorized"}
    """
    info = openapi_document(current_app)["info"]
    return jsonify({"name": info["title"], "version": info["version"],
                    "openapi": url_for(".openapi_json"), "docs": url_for(".api_reference")})


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI document.
    ---
    get:
      tags: [reference]
      summary: This document (OpenAPI 3.1), generated from the station's code
      responses:
        200:
          description: The OpenAPI document.
          content: {application/json: {schema: {type: object}}}
        401: {$ref: "#/components/responses/Unauthorized"}
    """
    return jsonify(openapi_document(current_app))


@bp.get("/docs")
def api_reference() -> str:
    """The reference page.
    ---
    get:
      tags: [reference]
      summary: The OpenAPI document as a page for people
      responses:
        200:
          description: An HTML page.
          content: {text/html: {schema: {type: string}}}
        401: {$ref: "#/components/responses/Unauthorized"}
    """
    spec = openapi_document(current_app)
    return render("station", "api_docs", info=spec["info"], operations=operations(spec),
                  schemas=schemas(spec), openapi_url=url_for(".openapi_json"))


# --- the document, arranged for the page -----------------------------------------------

def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_text(schema: dict[str, Any] | None) -> str:
    """A schema in a few words: "integer", "string or null", "array of Session"."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(type_text(part) for part in schema[key])
    kind = schema.get("type", "object")
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for one in kinds:
        if one == "array":
            words.append(f"array of {type_text(schema.get('items'))}")
        else:
            words.append(one)
    text = " or ".join(words)
    if "enum" in schema:
        text += ": " + ", ".join(str(v) for v in schema["enum"])
    if "format" in schema:
        text += f" ({schema['format']})"
    return text


def _resolve(spec: dict[str, Any], item: dict[str, Any], section: str) -> dict[str, Any]:
    if "$ref" in item:
        return spec["components"][section][_ref_name(item["$ref"])]
    return item


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [{"name": name, "type": type_text(prop), "required": name in required,
             "description": prop.get("description", "")}
            for name, prop in schema.get("properties", {}).items()]


def _body(operation: dict[str, Any]) -> list[dict[str, Any]]:
    bodies = []
    for media, content in operation.get("requestBody", {}).get("content", {}).items():
        schema = content.get("schema", {})
        bodies.append({"media": media, "type": type_text(schema),
                       "fields": _fields(schema) if "properties" in schema else []})
    return bodies


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per method and path, in path order."""
    found = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = [_resolve(spec, p, "parameters")
                          for p in [*item.get("parameters", []), *operation.get("parameters", [])]]
            responses = []
            for status, answer in operation.get("responses", {}).items():
                answer = _resolve(spec, answer, "responses")
                content = answer.get("content", {})
                shown = [f"{media}: {type_text(c.get('schema'))}" for media, c in content.items()]
                responses.append({"status": str(status), "description": answer["description"],
                                  "content": "; ".join(shown)})
            found.append({
                "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                "method": method.upper(), "path": path,
                "summary": operation.get("summary", ""),
                "description": operation.get("description", ""),
                "parameters": [{"name": p["name"], "in": p["in"],
                                "required": bool(p.get("required")),
                                "type": type_text(p.get("schema")),
                                "description": p.get("description", "")} for p in parameters],
                "body": _body(operation), "responses": responses,
            })
    return found


def schemas(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "description": schema.get("description", ""),
             "fields": _fields(schema)}
            for name, schema in sorted(spec["components"].get("schemas", {}).items())]
