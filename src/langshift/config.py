"""Typed stage configs: dataclasses whose fields carry help text, turned into CLI flags.

A stage declares ``@dataclass class XConfig(StageConfig)`` with ``opt(default, "help")`` fields
and checks dependent fields in ``validate`` (raise ``ConfigError`` naming field and fix). The same
class serves the CLI (``add_arguments`` / ``from_namespace``) and YAML recipes (``from_dict``,
which rejects unknown keys with did-you-mean).

A stage's front door is ``run(cfg) -> Result``: the config is complete (inputs, options, ``out``),
the function checks its output path against its inputs (``check_output``), writes atomically and
returns a ``Result`` dataclass that the CLI prints and the pipeline records (``to_dict``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from .errors import ConfigError

C = TypeVar("C", bound="StageConfig")


def opt(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None, **kw: Any) -> Any:
    """A config field with help text. Mutable defaults (lists, dicts) are copied per instance."""
    meta = {"help": help, "flag": flag}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


@dataclasses.dataclass
class StageConfig:
    # the fields naming files or folders the stage reads: ``check_output`` refuses an ``out`` among them
    INPUTS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.validate()

    def check_output(self, kind: Literal["dir", "file"] = "dir") -> None:
        """Refuse an ``out`` that exists (without ``overwrite``) or is, or holds, one of the inputs:
        before any model loads, so bad input costs nothing and destroys nothing."""
        from .files import check_out_dir

        if kind == "dir":
            check_out_dir(self.out, getattr(self, "overwrite", False), inputs=self._inputs())
        else:
            self.check_output_files("out")

    def check_output_files(self, *names: str) -> None:
        """Each named output field that is set: a file, not one of the inputs, absent unless ``overwrite``."""
        from .files import check_out_file

        for name in names:
            if getattr(self, name) is not None:
                check_out_file(getattr(self, name), getattr(self, "overwrite", False), "--" + name.replace("_", "-"),
                               self._inputs())

    def _inputs(self) -> dict[str, Any]:
        return {"--" + name.replace("_", "-"): getattr(self, name) for name in self.INPUTS}

    def part(self, cls: type[StageConfig]) -> dict[str, Any]:
        """The fields that ``cls`` (a base of this composed config) declares, as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(cls)}

    def validate(self) -> None:
        """Check dependent fields together; raise ConfigError naming the field and the fix."""

    def unused_fields(self) -> tuple[str, ...]:
        """Fields these settings never read (say ``vocab_size`` when the tokenizer is extended): a change to
        one cannot change the result, so the pipeline leaves them out of a stage's key."""
        return ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], where: str = "") -> C:
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
                hint = f"did you mean {' or '.join(close)}?" if close else f"known keys: {', '.join(names)}"
                raise ConfigError(f"{where}{key}", data[key], f"unknown key; {hint}")
        return cls(**data)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
        hints = typing.get_type_hints(cls)
        for f in sorted(dataclasses.fields(cls), key=cls._flag_rank):  # inputs and out first, then the options
            if f.name in skip:
                continue
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            kind, choices, is_list = _unwrap(hints[f.name])
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            default = None if required else (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            help_text = f.metadata.get("help", "")
            if kind is bool:
                parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                    default=default, help=help_text)
                continue
            if default is not None and not required:
                help_text += f" (default: {default})"
            parser.add_argument(flag, dest=f.name, type=kind, choices=choices, default=default,
                                required=required, nargs="+" if is_list else None, help=help_text)

    @classmethod
    def _flag_rank(cls, f: dataclasses.Field) -> int:
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        return 0 if f.name in cls.INPUTS or required else 1 if f.name in ("out", "overwrite") else 2

    @classmethod
    def from_namespace(cls: type[C], ns: argparse.Namespace, **fixed: Any) -> C:
        """The config from parsed flags (other flags ignored), with ``fixed`` fields set by the command."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in vars(ns).items() if k in names}, **fixed})


def _unwrap(hint: Any) -> tuple[type, list[Any] | None, bool]:
    """(scalar type, choices, is_list) of a field annotation like ``int | None`` or ``list[str]``."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return _unwrap(args[0])
    if origin is Literal:
        choices = list(get_args(hint))
        return type(choices[0]), choices, False
    if origin in (list, tuple):
        inner, choices, _ = _unwrap(get_args(hint)[0])
        return inner, choices, True
    return hint, None, False


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False) -> None:
    """Raise ConfigError when ``value`` is outside [lo, hi] (or (lo, hi] with lo_open)."""
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (hi is not None and value > hi)
    if bad:
        left = "(" if lo_open else "["
        raise ConfigError(name, value, f"must be in {left}{lo if lo is not None else '-inf'}, "
                                       f"{hi if hi is not None else 'inf'}]")


@dataclasses.dataclass
class Result:
    """What a stage's ``run(cfg)`` returns: the artefact it wrote and what it measured on the way.
    Subclasses add typed fields; the CLI prints ``to_dict()`` as JSON and the pipeline records it."""

    out: str | None                             # None: a command whose output files are optional (measure)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(obj: Any) -> Any:
    """JSON-ready: paths as strings, tuples as lists, nested dicts and lists likewise."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
