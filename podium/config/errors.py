"""Readable config errors: key path, the value given, and what is allowed."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from podium.registry import near

__all__ = ["ConfigError", "format_validation_error"]


class ConfigError(ValueError):
    """The config cannot be used; the message says where and what to write instead."""


def format_validation_error(error: ValidationError, source: str, root: type[BaseModel]) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        path = ".".join(part for part in loc if not _is_union_tag(part))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(root, loc[:-1])
            if allowed:
                message = f"unknown key.{near(loc[-1], allowed)} Allowed: {', '.join(allowed)}"
        value = _short(item.get("input"))
        lines.append(f"  {path}: {message} (got {value})")
    return "\n".join(lines)


def _is_union_tag(part: str) -> bool:
    # Pydantic puts the discriminator value ('folder', 'aeroscapes') into the location.
    return part in {"folder", "aeroscapes", "rle_csv"}


def _allowed_keys(root: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the model found at loc (walks nested models, dict values and unions)."""
    models: list[type[BaseModel]] = [root]
    for part in loc:
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if fields:
            models = [m for f in fields for m in _models_in(f.annotation)]
        elif _is_union_tag(part):
            models = [
                m
                for m in models
                if m.model_fields.get("format") is None or m.model_fields["format"].default == part
            ] or models
        # else: a dict key or list index; the models stay the same
    names: list[str] = []
    for model in models:
        names.extend(n for n in model.model_fields if n not in names)
    return names


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
