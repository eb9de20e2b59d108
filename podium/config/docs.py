"""Render the config reference (README) from the pydantic models, so docs never drift."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from podium.config import Config, DataBase
from podium.data.formats import FORMATS
from podium.heads import HEADS, HeadBase

__all__ = ["config_reference"]


def _type_name(annotation: Any) -> str:
    text = repr(annotation) if not isinstance(annotation, type) else annotation.__name__
    for noise in ("typing.", "pathlib.", "podium.config.", "NoneType"):
        text = text.replace(noise, "" if noise != "NoneType" else "None")
    return text.replace("|", "\\|")


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{value!r}`".replace("|", "\\|")


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _nested_models(arg)]


def _section(
    model: type[BaseModel],
    prefix: str,
    lines: list[str],
    seen: set,
    title: str | None = None,
    skip: frozenset = frozenset(),
) -> None:
    rows, children = [], []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        key = f"{prefix}{name}"
        nested = [m for m in _nested_models(field.annotation) if m not in seen]
        if nested and name not in ("loss", "device"):  # lists of named entries: one row
            children.append((key, nested, get_origin(field.annotation) is dict))
            continue
        doc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {doc} |")
    if rows:
        heading = title or f"`{prefix.rstrip('.') or 'top level'}`"
        lines += [
            f"\n#### {heading}" + _extra_note(model),
            "",
            "| key | type | default | meaning |",
            "| --- | --- | --- | --- |",
            *rows,
        ]
    for key, models, by_name in children:
        if key == "data":
            _data_sections(lines, seen)
            continue
        if key == "heads":
            _head_sections(lines, seen)
            continue
        for child in models:
            seen.add(child)
            sub = f"{key}.<name>." if by_name else f"{key}."
            _section(child, sub, lines, seen)


def _head_sections(lines: list[str], seen: set) -> None:
    """Keys every head has once, then what each `kind` adds (podium.heads)."""
    common = frozenset(HeadBase.model_fields) - {"kind"}
    _section(HeadBase, "heads.<name>.", lines, seen, title="`heads.<name>` (every kind)")
    for kind in HEADS.names():
        model = HEADS.get(kind)
        seen.add(model)
        title = f"`heads.<name>` with `kind: {kind}`"
        _section(model, "heads.<name>.", lines, seen, title=title, skip=common)


def _data_sections(lines: list[str], seen: set) -> None:
    """Common data keys once, then what each `data.format` adds."""
    common = frozenset(DataBase.model_fields)
    _section(DataBase, "data.", lines, seen, title="`data` (every format)")
    for fmt in FORMATS.names():
        model = FORMATS.get(fmt)
        seen.add(model)
        _section(model, "data.", lines, seen, title=f"`data` with `format: {fmt}`", skip=common)


def _extra_note(model: type[BaseModel]) -> str:
    if model.model_config.get("extra") == "allow":
        return " — other keys go to the named builder as keyword arguments"
    return ""


def _signature(fn, skip: int) -> str:
    params = list(inspect.signature(fn).parameters.values())[skip:]
    shown = [p for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in shown)


def _summary(fn) -> str:
    return (inspect.getdoc(fn) or "").split("\n")[0].replace("|", "\\|")


def registry_reference() -> list[str]:
    """Every name usable in YAML, with the keyword arguments it accepts."""
    from podium.config import CALLBACK_SCHEDULES
    from podium.engine.device_augment import DEVICE_AUGMENTATIONS
    from podium.losses import LOSSES
    from podium.metrics import METRICS
    from podium.optim import OPTIMIZERS, SCHEDULES

    lines = [
        "\n#### Names by family",
        "",
        "| family | name | keyword arguments | what |",
        "| --- | --- | --- | --- |",
    ]
    families = [
        ("loss (`heads.<name>.loss[].name`)", LOSSES, 1),
        ("metric (`heads.<name>.metrics`)", METRICS, 1),
        ("optimizer (`optimizer.name`)", OPTIMIZERS, 1),
        ("schedule (`schedule.name`)", SCHEDULES, 2),
        ("schedule (`schedule.name`)", CALLBACK_SCHEDULES, 0),
        ("device augmentation (`augmentation.device[].name`)", DEVICE_AUGMENTATIONS, 0),
    ]
    for family, registry, skip in families:
        for name in registry.names():
            fn = registry.get(name)
            args = _signature(fn, skip).replace("|", "\\|")
            lines.append(f"| {family} | `{name}` | {args} | {_summary(fn)} |")
    return lines


def config_reference() -> str:
    lines: list[str] = []
    _section(Config, "", lines, {Config})
    lines += registry_reference()
    return "\n".join(lines).strip() + "\n"


START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def update_readme(path: str = "README.md") -> bool:
    """Rewrite the block between the markers; returns True if the file changed."""
    readme = Path(path)
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{config_reference()}{END}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "--write":
        update_readme(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    else:
        print(config_reference(), end="")
