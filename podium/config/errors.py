"""Readable config errors: key path, the value given, and what is allowed."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from podium.registry import near

__all__ = ["ConfigError", "format_validation_error"]


class ConfigError(ValueError):
    """The config cannot be used; the message says where and what to write instead."""


def format_validation_error(error: ValidationError, source: str, root: type[BaseModel]) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        shown, model = _walk(root, [str(part) for part in item["loc"]])
        message = item["msg"]
        if item["type"] == "extra_forbidden" and shown:
            _, parent = _walk(root, [str(part) for part in item["loc"][:-1]])
            allowed = list(parent.model_fields) if parent is not None else []
            if allowed:
                message = f"unknown key.{near(shown[-1], allowed)} Allowed: {', '.join(allowed)}"
        value = _short(item.get("input"))
        lines.append(f"  {'.'.join(shown)}: {message} (got {value})")
    return "\n".join(lines)


_TAG_FIELDS = ("kind", "format")  # discriminators of the config's unions (heads, data)


def _walk(root: type[BaseModel], loc: list[str]) -> tuple[list[str], type[BaseModel] | None]:
    """Follow a pydantic error location through the schema.

    Returns the location as the YAML spells it (union tags such as a head's kind or the data
    format, which pydantic inserts, left out) and the model found at its end (None: a value).
    """
    shown: list[str] = []
    annotation: Any = root
    for part in loc:
        members = _models_in(annotation)
        model = members[0] if len(members) == 1 and not _is_container(annotation) else None
        if _is_container(annotation):
            annotation = get_args(annotation)[-1]  # dict value or list item
        elif model is not None and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        elif len(members) > 1 and (tagged := _tagged(members, part)) is not None:
            annotation = tagged
            continue  # a union tag: not a key the user wrote
        else:
            annotation = None
        shown.append(part)
    members = _models_in(annotation)
    return shown, members[0] if len(members) == 1 and not _is_container(annotation) else None


def _tagged(members: list[type[BaseModel]], tag: str) -> type[BaseModel] | None:
    for model in members:
        for name in _TAG_FIELDS:
            field = model.model_fields.get(name)
            if field is not None and field.default == tag:
                return model
    return None


def _is_container(annotation: Any) -> bool:
    return get_origin(annotation) in (dict, list, tuple)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models inside an annotation (Optional, Union, Annotated, list, dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
