"""The ``/docs`` page: the OpenAPI document rendered to plain HTML on the server.

No script at all and no inline style (one same-origin stylesheet), so the page works under a
strict Content-Security-Policy, offline, and without any CDN. Operations are grouped by tag
with their parameters, bodies and responses; every schema they name has an anchor below.
Everything taken from the document is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from typing import Any

CSS_PATH = "/docs/docs.css"
_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_html(schema: Any) -> str:
    """A schema as a short type expression; named schemas are links to their anchor."""
    if not isinstance(schema, dict) or not schema:
        return "any"
    if "$ref" in schema:
        name = escape(_ref_name(schema["$ref"]))
        return f'<a href="#schema-{name}">{name}</a>'
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(type_html(option) for option in schema[key])
    if "const" in schema:
        return f"<code>{escape(repr(schema['const']))}</code>"
    if "enum" in schema:
        values = ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
        return f"one of {values}"
    kind = schema.get("type", "any")
    if kind == "array":
        return "array of " + type_html(schema.get("items", {}))
    if isinstance(kind, list):
        return " | ".join(escape(str(k)) for k in kind)
    text = escape(str(kind))
    if "format" in schema:
        text += f" ({escape(str(schema['format']))})"
    return text


def _text(value: Any) -> str:
    return escape(str(value)) if value else ""


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    if not rows:
        return ""
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _parameters(operation: dict[str, Any]) -> str:
    rows = [
        (
            f"<code>{escape(param['name'])}</code>",
            escape(param["in"]),
            type_html(param.get("schema")),
            "yes" if param.get("required") else "no",
            _text(param.get("description")),
        )
        for param in operation.get("parameters", [])
    ]
    table = _table(("Name", "In", "Type", "Required", "Description"), rows)
    return f"<h4>Parameters</h4>{table}" if table else ""


def _body(operation: dict[str, Any]) -> str:
    body = operation.get("requestBody")
    if not body:
        return ""
    items = []
    for media, content in body.get("content", {}).items():
        schema = content.get("schema", {})
        if "$ref" in schema:
            items.append(f"<li><code>{escape(media)}</code>: {type_html(schema)}</li>")
            continue
        fields = ", ".join(
            f"<code>{escape(name)}</code> {type_html(field)}"
            for name, field in schema.get("properties", {}).items()
        )
        items.append(f"<li><code>{escape(media)}</code>: {fields}</li>")
    return "<h4>Request body</h4><ul>" + "".join(items) + "</ul>"


def _responses(operation: dict[str, Any], shared: dict[str, Any]) -> str:
    rows = []
    for status, response in operation.get("responses", {}).items():
        if "$ref" in response:
            response = shared.get(_ref_name(response["$ref"]), {})
        bodies = [
            f"<code>{escape(media)}</code> {type_html(content.get('schema'))}"
            for media, content in response.get("content", {}).items()
        ]
        headers = ", ".join(f"<code>{escape(h)}</code>" for h in response.get("headers", {}))
        rows.append(
            (escape(status), _text(response.get("description")), "<br>".join(bodies) or "empty",
             headers)
        )  # fmt: skip
    return "<h4>Responses</h4>" + _table(("Status", "Description", "Body", "Headers"), rows)


def _security(operation: dict[str, Any], schemes: dict[str, Any]) -> str:
    names = [name for requirement in operation.get("security", []) for name in requirement]
    if not names:
        return ""
    described = []
    for name in names:
        scheme = schemes.get(name, {})
        where = (
            f"header <code>{escape(scheme.get('name', ''))}</code>"
            if scheme.get("type") == "apiKey"
            else f"{escape(scheme.get('scheme', ''))} token"
        )
        described.append(f'<a href="#auth-{escape(name)}">{escape(name)}</a> ({where})')
    return '<p class="auth">Auth: ' + ", ".join(described) + "</p>"


def _operation(method: str, path: str, operation: dict[str, Any], doc: dict[str, Any]) -> str:
    components = doc.get("components", {})
    anchor = escape(operation.get("operationId", _slug(method + path)))
    method_class = escape(method.lower())
    parts = [
        f'<article class="operation" id="op-{anchor}">',
        f'<h3><span class="method {method_class}">{escape(method.upper())}</span> '
        f"<code>{escape(path)}</code></h3>",
        f'<p class="summary">{_text(operation.get("summary"))}</p>',
    ]
    if operation.get("description"):
        parts.append(f"<p>{_text(operation['description'])}</p>")
    parts += [
        _security(operation, components.get("securitySchemes", {})),
        _parameters(operation),
        _body(operation),
        _responses(operation, components.get("responses", {})),
        "</article>",
    ]
    return "".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = [
        (
            f"<code>{escape(prop)}</code>",
            type_html(field),
            "yes" if prop in required else "no",
            f"<code>{escape(repr(field['default']))}</code>" if "default" in field else "",
        )
        for prop, field in schema.get("properties", {}).items()
    ]
    table = _table(("Property", "Type", "Required", "Default"), rows)
    table = table or f"<p>{type_html(schema)}</p>"
    description = f"<p>{_text(schema.get('description'))}</p>" if "description" in schema else ""
    return f'<article class="schema" id="schema-{escape(name)}"><h3>{escape(name)}</h3>' + (
        description + table + "</article>"
    )


def render(doc: dict[str, Any]) -> str:
    """The whole page for ``doc`` (an OpenAPI 3.1 document as a dict)."""
    info = doc.get("info", {})
    by_tag: dict[str, list[str]] = {tag["name"]: [] for tag in doc.get("tags", [])}
    toc: dict[str, list[str]] = {tag: [] for tag in by_tag}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            tag = (operation.get("tags") or ["Other"])[0]
            by_tag.setdefault(tag, []).append(_operation(method, path, operation, doc))
            anchor = escape(operation.get("operationId", ""))
            toc.setdefault(tag, []).append(
                f'<li><a href="#op-{anchor}" title="{escape(path)}"><span class="method '
                f'{escape(method)}">{escape(method.upper())}</span> '
                f"{_text(operation.get('summary')) or escape(path)}</a></li>"
            )
    nav = "".join(
        f'<li><a href="#tag-{_slug(tag)}">{escape(tag)}</a><ul>{"".join(links)}</ul></li>'
        for tag, links in toc.items()
        if links
    )
    sections = "".join(
        f'<section id="tag-{_slug(tag)}"><h2>{escape(tag)}</h2>{"".join(ops)}</section>'
        for tag, ops in by_tag.items()
        if ops
    )
    schemes = doc.get("components", {}).get("securitySchemes", {})
    auth = "".join(
        f'<dt id="auth-{escape(name)}">{escape(name)}</dt><dd>{escape(scheme.get("type", ""))}'
        f"{' header <code>' + escape(scheme['name']) + '</code>' if 'name' in scheme else ''}"
        f": {_text(scheme.get('description'))}</dd>"
        for name, scheme in schemes.items()
    )
    schemas = "".join(
        _schema(name, schema)
        for name, schema in doc.get("components", {}).get("schemas", {}).items()
    )
    title = f"{_text(info.get('title'))} API reference"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title}</title><link rel="stylesheet" href="{CSS_PATH}"></head><body>'
        f'<header><h1>{title} <span class="version">{_text(info.get("version"))}</span></h1>'
        f"<p>{_text(info.get('description'))}</p>"
        '<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> '
        "(OpenAPI 3.1).</p></header>"
        f'<nav aria-label="Operations"><h2>Contents</h2><ul><li><a href="#auth">'
        f'Authentication</a></li>{nav}<li><a href="#schemas">Schemas</a></li></ul></nav>'
        f'<main><section id="auth"><h2>Authentication</h2><dl>{auth}</dl></section>'
        f'{sections}<section id="schemas"><h2>Schemas</h2>{schemas}</section></main>'
        "</body></html>"
    )
