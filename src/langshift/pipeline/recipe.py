"""Recipes: the stage configs written out in YAML, with overrides, variables and input wiring.

```yaml
name: tiny
vars: {lang: es}                      # ${lang} anywhere below; --set vars.lang=de
inputs:                               # given artefacts, referenced as $name (null: give with --set)
  model: smollm2-135m-instruct
  target_text: null
launch: {accelerate_config: null}     # training stages under `accelerate launch` when set
stages:                               # any subset; they always run in the order of the data flow
  tokenizer: {vocab_size: 32000}
  transfer: {method: focus}
```

A stage's slot fields (the artefacts it reads) take ``@stage``, ``$input`` or a path; unset, they
take their default source. Unknown stages and keys fail with close names (``StageConfig.from_dict``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from ..config import StageConfig
from ..errors import ConfigError, LangshiftError
from .stages import STAGES, Slot, Stage, data_flow

TOP_KEYS = ("name", "description", "vars", "inputs", "launch", "stages")
LAUNCH_KEYS = ("accelerate_config", "num_processes")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Recipe:
    name: str
    description: str
    vars: dict[str, Any]
    inputs: dict[str, Any]
    launch: dict[str, Any]
    stages: dict[str, dict[str, Any]]
    source: str = "<dict>"


@dataclass
class Input:
    """Where one slot's artefact comes from: a stage of the recipe, or a given path/name (None: unset)."""

    field: str
    stage: str | None = None       # producing stage, for @stage
    value: Any = None              # given path / model name
    via: str | None = None         # "$name" when it came from the recipe's inputs


@dataclass
class Resolved:
    stage: Stage
    section: dict[str, Any]        # config values (slots and owned fields removed), types coerced
    inputs: dict[str, Input]


# 1. Loading ----------------------------------------------------------------------------------------

def shipped_recipes() -> list[str]:
    folder = resources.files("langshift") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")) if folder.is_dir() else []


def recipe_path(source: str | Path) -> Path:
    """A recipe file path, or the name of a shipped recipe (``langshift run migrate``)."""
    path = Path(source)
    if path.is_file():
        return path
    name = str(source)[:-5] if str(source).endswith(".yaml") else str(source)
    shipped = resources.files("langshift") / "recipes" / f"{name}.yaml"
    if "/" not in name and shipped.is_file():
        return Path(str(shipped))
    close = difflib.get_close_matches(name, shipped_recipes(), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; shipped recipes: {', '.join(shipped_recipes())}"
    raise ConfigError("recipe", str(source), f"no such file and no shipped recipe of that name{hint}")


def load_recipe(source: str | Path | dict | Recipe, overrides: list[str] | dict[str, Any] | None = None) -> Recipe:
    """Read a recipe (file, shipped name, dict), apply ``--set`` overrides and ``${var}`` values."""
    if isinstance(source, Recipe):
        data, where, base = _as_dict(source), source.source, None
    elif isinstance(source, dict):
        data, where, base = copy.deepcopy(source), "<dict>", None
    else:
        import yaml

        path = recipe_path(source)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise LangshiftError(f"recipe {path}: not valid YAML ({exc})") from None
        where, base = str(path), path.parent
    if not isinstance(data, dict):
        raise LangshiftError(f"recipe {where}: the top level must be a mapping with 'stages'")
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(key, data[key], _unknown(key, TOP_KEYS, "top-level key"))
    data.setdefault("stages", {})
    for key in ("vars", "inputs", "launch", "stages"):
        data[key] = data.get(key) or {}
        if not isinstance(data[key], dict):
            raise ConfigError(key, data[key], "must be a mapping")
    for stage, section in data["stages"].items():
        STAGES.get(stage, "stage") if stage not in data_flow() else None
        if section is None:
            data["stages"][stage] = {}
        elif not isinstance(section, dict):
            raise ConfigError(f"stages.{stage}", section, "must be a mapping of config fields (or empty)")
    if base is not None:
        _absolute_paths(data, base)
    for item in _override_items(overrides):
        apply_override(data, *item)
    for key in data["launch"]:
        if key not in LAUNCH_KEYS:
            raise ConfigError(f"launch.{key}", data["launch"][key], _unknown(key, LAUNCH_KEYS, "launch key"))
    data = _interpolate(data, data["vars"])
    return Recipe(str(data.get("name") or Path(where).stem), str(data.get("description") or ""), data["vars"],
                  data["inputs"], data["launch"], data["stages"], where)


def _as_dict(recipe: Recipe) -> dict[str, Any]:
    return copy.deepcopy({"name": recipe.name, "description": recipe.description, "vars": recipe.vars,
                          "inputs": recipe.inputs, "launch": recipe.launch, "stages": recipe.stages})


def _unknown(key: str, known, what: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.5)
    return f"unknown {what}; " + (f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(known)}")


def _absolute_paths(data: dict, base: Path) -> None:
    """Relative paths written in a recipe file are relative to the file (when they exist there)."""
    def fix(value):
        if isinstance(value, str) and value and not value.startswith(("@", "$", "/")) and "${" not in value:
            candidate = base / value
            if candidate.exists():
                return str(candidate.resolve())
        return value

    data["inputs"] = {k: fix(v) for k, v in data["inputs"].items()}
    for section in data["stages"].values():
        for k, v in list(section.items()):
            section[k] = fix(v)


# 2. Overrides and variables ------------------------------------------------------------------------

def _override_items(overrides) -> list[tuple[str, Any]]:
    """``--set`` texts (``stage.field=value``, the value read as YAML), a mapping, or (key, value) pairs
    (what code passes: values as they are, nothing to parse back) — in any mix, applied in order."""
    import yaml

    if not overrides:
        return []
    if isinstance(overrides, dict):
        return list(overrides.items())
    items = []
    for text in overrides:
        if isinstance(text, tuple) and len(text) == 2:
            items.append((str(text[0]), text[1]))
            continue
        key, sep, raw = str(text).partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", text, "write STAGE.FIELD=VALUE (or inputs.NAME=VALUE, vars.NAME=VALUE)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and raw.strip() and not raw.strip().startswith(("'", '"')):
            value = raw.strip()
        items.append((key.strip(), value))
    return items


def apply_override(data: dict, key: str, value: Any) -> None:
    """``stage.field=value`` (also ``stage.dict_field.key``), ``inputs.x``, ``vars.x``, ``launch.x``."""
    parts = key.split(".")
    head = parts[0]
    if head in ("inputs", "vars", "launch"):
        if len(parts) != 2:
            raise ConfigError("--set", key, f"write {head}.NAME=VALUE")
        if isinstance(value, str) and head == "inputs" and Path(value).exists():
            value = str(Path(value).resolve())
        data[head][parts[1]] = value
        return
    if head == "stages":
        parts, head = parts[1:], parts[1] if len(parts) > 1 else ""
    if head not in data_flow():
        raise ConfigError("--set", key, _unknown(head, (*data_flow(), "inputs", "vars", "launch"), "stage"))
    if head not in data["stages"]:
        raise ConfigError("--set", key, f"stage {head!r} is not in this recipe (it has: "
                                        f"{', '.join(data['stages']) or 'none'}); add it to the recipe file")
    if len(parts) < 2:
        raise ConfigError("--set", key, f"write {head}.FIELD=VALUE")
    target = data["stages"][head]
    for p in parts[1:-1]:
        target = target.setdefault(p, {})
        if not isinstance(target, dict):
            raise ConfigError("--set", key, f"{p} is not a mapping")
    if isinstance(value, str) and Path(value).exists() and "/" in value:
        value = str(Path(value).resolve())
    target[parts[-1]] = value


def _interpolate(obj: Any, variables: dict[str, Any]) -> Any:
    if isinstance(obj, dict):
        return {k: (v if k == "vars" else _interpolate(v, variables)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_interpolate(v, variables) for v in obj]
    if isinstance(obj, str) and "${" in obj:
        def sub(m: re.Match) -> str:
            if m.group(1) not in variables:
                raise ConfigError("${" + m.group(1) + "}", obj, _unknown(m.group(1), variables, "variable")
                                  + "; define it under vars: or with --set vars.NAME=VALUE")
            return str(variables[m.group(1)])

        whole = _VAR.fullmatch(obj)
        return variables.get(whole.group(1), sub(whole)) if whole else _VAR.sub(sub, obj)
    return obj


# 3. Types ------------------------------------------------------------------------------------------

def coerce(param: str, hint: Any, value: Any) -> Any:
    """``value`` as the field type says (YAML reads 1e-4 as a string; --set gives strings)."""
    if value is None:
        if get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint):
            return None
        raise ConfigError(param, value, "may not be null")
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):  # the first member the value fits (str | dict: text or a mapping)
        args = [a for a in get_args(hint) if a is not type(None)]
        for arg in args[:-1]:
            try:
                return coerce(param, arg, value)
            except ConfigError:
                continue
        return coerce(param, args[-1], value)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(param, value, f"choose one of {', '.join(map(str, get_args(hint)))}")
        return value
    if origin in (list, tuple):
        inner = get_args(hint)[0] if get_args(hint) else Any
        items = value if isinstance(value, list) else [value]
        return [coerce(f"{param}[{i}]", inner, v) for i, v in enumerate(items)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(param, value, "must be a mapping (key: value)")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise ConfigError(param, value, "must be true or false")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(param, value, f"must be a number ({hint.__name__})")
        try:
            number = float(value) if hint is float else int(value) if not isinstance(value, float) else value
        except (TypeError, ValueError):
            raise ConfigError(param, value, f"must be a number ({hint.__name__})") from None
        if hint is int and (not isinstance(number, int) and not float(number).is_integer()):
            raise ConfigError(param, value, "must be a whole number")
        return int(number) if hint is int else number
    if hint is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(param, value, "must be a single value")
        return str(value)
    return value


# 4. Resolving a recipe into stages with wired inputs ----------------------------------------------

def resolve(recipe: Recipe) -> list[Resolved]:
    """The recipe's stages in data-flow order, each config section type-checked and each slot wired.

    Raises on an unknown stage or key, a reference to a stage that is absent or comes later, and a
    required input that nothing makes and nothing gives.
    """
    for name in recipe.stages:
        if name not in data_flow():
            STAGES.get(name, "stage")  # did-you-mean
    present = [s for s in data_flow() if s in recipe.stages]
    if "migrate" in present and "syncs" in present:
        raise ConfigError("stages", "migrate+syncs", "give one code-switching stage per recipe (both make the "
                                                     "code-switched text); run a second recipe for the other")
    out = []
    for position, name in enumerate(present):
        stage = STAGES.get(name)
        section = dict(recipe.stages[name])
        hints = typing.get_type_hints(stage.config)
        fields = {f.name for f in dataclasses.fields(stage.config)}
        for key in list(section):
            if key in stage.owned:
                raise ConfigError(f"{name}.{key}", section[key], f"is set by the pipeline (the stage writes "
                                                                 f"OUT/{name}/{stage.output}); choose the run folder "
                                                                 "with --out")
            if key not in fields:
                stage.config.from_dict({key: section[key]}, where=f"{name}.")  # raises with close names
        inputs = {}
        for slot in stage.slots:
            inputs[slot.field] = _wire(recipe, name, slot, section.pop(slot.field, None), present[:position])
        section = {k: coerce(f"{name}.{k}", hints[k], v) for k, v in section.items()}
        out.append(Resolved(stage, section, inputs))
    return out


def _wire(recipe: Recipe, stage: str, slot: Slot, given: Any, earlier: list[str]) -> Input:
    param = f"{stage}.{slot.field}"

    def ref(source: str, explicit: bool) -> Input | None:
        if source.startswith("@"):
            producer = source[1:]
            if producer in earlier:
                return Input(slot.field, stage=producer)
            if not explicit:
                return None
            if producer not in data_flow():
                STAGES.get(producer, param)
            why = "comes later in the data flow" if producer in recipe.stages else "is not in this recipe"
            raise ConfigError(param, source, f"stage {producer!r} {why}; give a path or an earlier stage")
        if source.startswith("$"):
            name = source[1:]
            if name in recipe.inputs:
                return Input(slot.field, value=recipe.inputs[name], via=source)
            if not explicit:
                return None
            raise ConfigError(param, source, _unknown(name, recipe.inputs, "input") + "; declare it under inputs:")
        return Input(slot.field, value=source)

    if given is not None:
        if isinstance(given, str):
            return ref(given, explicit=True)
        raise ConfigError(param, given, "give a path, a model name, @stage or $input")
    for source in slot.sources:
        found = ref(source, explicit=False)
        if found is not None:
            return found
    if slot.required:
        srcs = ", ".join(slot.sources) or "none"
        raise ConfigError(param, None, f"no earlier stage of this recipe makes this input and it is not given "
                                       f"(default sources: {srcs}); set {param}=PATH or add the stage")
    return Input(slot.field)


def build_config(item: Resolved, values: dict[str, Any], work: Path) -> StageConfig:
    """The stage's typed config: recipe values + slot values + the fields the pipeline owns."""
    stage = item.stage
    data = {**item.section, **values, **{k: fn(work) for k, fn in stage.owned.items()}}
    try:
        return stage.config.from_dict(data, where=f"{stage.name}.")
    except ConfigError as exc:
        if exc.param.startswith(f"{stage.name}."):
            raise
        name = exc.param.lstrip("-").replace("-", "_")
        raise ConfigError(f"{stage.name}.{name}", exc.value, exc.fix) from None


def validate_recipe(source, overrides=None) -> dict[str, Any]:
    """Load, wire and build every stage config (inputs as placeholders). Returns what a run needs given."""
    recipe = load_recipe(source, overrides)
    items = resolve(recipe)
    needed: dict[str, list[str]] = {}
    for item in items:
        values = {}
        for field, inp in item.inputs.items():
            if inp.stage is not None:
                values[field] = f"<OUT>/{inp.stage}/{STAGES.get(inp.stage).output}"
            elif inp.value is not None:
                values[field] = str(inp.value)
            elif inp.via is not None:
                needed.setdefault(inp.via[1:], []).append(f"{item.stage.name}.{field}")
                values[field] = f"<{inp.via}>"
        build_config(item, values, Path("<OUT>") / f"{item.stage.name}.work")
    return {"name": recipe.name, "stages": [i.stage.name for i in items], "inputs_to_give": needed}
