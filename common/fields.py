"""Typed option fields: a settings dataclass declares each field with `option(default, kind, help, group=...)`,
where the kind is its type, range and choices. `check_fields` (called by the dataclass's `__post_init__`) checks
every field once, when the object is made, and raises `FieldError` naming the field; `add_flags` turns the same
fields into argparse flags in help groups, each flag reading its text with the kind's `parse` (so a flag is refused
in the flag's own words: "argument --n: must be at least 1, got 0"); `from_table` checks the values of a config
file by their field's kind and says which file and key.

    @dataclass(frozen=True)
    class Settings:
        rpm: int | None = option(None, Whole(), "requests per minute", group="limits")

        def __post_init__(self):
            check_fields(self)
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields

from common.cli import group
from common.errors import UsageError


class FieldError(UsageError):
    """A field's value refused by its kind: `name`, `value` and `reason` ("must be at least 1, got 0")."""

    def __init__(self, owner: str, name: str, value, reason: str):
        super().__init__(f"{owner}: {name} = {value!r}: {reason}")
        self.name, self.value, self.reason = name, value, reason


class Kind:
    """What a field holds: its Python types, and its range or `choices`. `check(value)` returns the value or raises
    ValueError with the reason; `parse(text)` reads a flag's or a list item's text and checks it."""

    types: tuple[type, ...] = (str,)
    choices: tuple | None = None
    action: str | None = None  # an argparse action other than "store" (store_true, append)

    def check(self, value):
        if not isinstance(value, self.types) or (isinstance(value, bool) and bool not in self.types):
            raise ValueError(f"expected {' or '.join(t.__name__ for t in self.types)}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"not one of {', '.join(map(str, self.choices))}")
        return self.in_range(value)

    def in_range(self, value, shown: str | None = None):
        return value

    def convert(self, text: str):
        """A flag's text as a value of the kind (unchecked)."""
        return text

    def parse(self, text: str):
        value = self.convert(text)
        return self.in_range(value, repr(text)) if self.choices is None else self.check(value)

    def flag_type(self, text: str):
        """`parse` for argparse: its refusals as ArgumentTypeError (argparse words the choices itself)."""
        try:
            return self.convert(text) if self.choices is not None else self.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


class Text(Kind):
    """A string, optionally one of `choices`."""

    def __init__(self, choices: Iterable[str] | None = None):
        self.choices = None if choices is None else tuple(choices)


class Flag(Kind):
    """A switch: false unless given."""

    types = (bool,)
    action = "store_true"


@dataclass(frozen=True)
class Whole(Kind):
    """A whole number of at least `low` (None: no lower bound) and at most `high` (`over` says why, in a refusal),
    or one of `choices`."""

    low: int | None = 1
    high: int | None = None
    choices: tuple[int, ...] | None = None
    over: str | None = None
    types = (int,)

    def in_range(self, value, shown: str | None = None):
        if self.low is not None and value < self.low:
            raise ValueError(f"must be at least {self.low}, got {value}")
        if self.high is not None and value > self.high:
            raise ValueError(f"{self.over or f'must be at most {self.high}'}, got {value}")
        return value

    def convert(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None


COUNT = Whole(high=2**32, over="at most 2**32 (ids are 32-bit counters)")  # --n: record ids are uint32 counters


@dataclass(frozen=True)
class Number(Kind):
    """A real number in [low, high] (`open_low`/`open_high`: the bound itself excluded); `finite`: not +-inf.
    `unit` names what it counts, in its refusal ("a finite number of seconds > 0")."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False
    finite: bool = False
    unit: str = ""
    types = (int, float)

    def in_range(self, value, shown: str | None = None):
        low_ok = value > self.low if self.open_low else value >= self.low
        high_ok = value < self.high if self.open_high else value <= self.high
        if not (low_ok and high_ok and (math.isfinite(value) or not self.finite)):
            raise ValueError(f"expected {self.words}, got {shown or repr(value)}")
        return float(value)

    def convert(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return math.nan  # no range holds it: refused in the range's words

    @property
    def words(self) -> str:
        """What the number must be: "a number in [0, 1)", "a finite number >= 0", ..."""
        if math.isfinite(self.low) and math.isfinite(self.high):
            return (f"a number{self.unit} in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.open_high else ']'}")
        finite = "finite " if self.finite else ""
        if math.isfinite(self.low):
            return f"a {finite}number{self.unit} {'>' if self.open_low else '>='} {self.low:g}"
        return f"a {finite}number{self.unit}"


@dataclass(frozen=True)
class Option:
    """A field's kind and its flag: help text, help group, flag name (default --field-name), metavar, and for an
    optional-argument flag the value it takes when given bare (`const`)."""

    kind: Kind
    help: str
    group: str
    flag: str | None = None
    metavar: str | None = None
    const: object = None


def option(default, kind: Kind, help: str, *, group: str, flag: str | None = None, metavar: str | None = None,
           const=None, factory=None):
    """A dataclass field carrying its `Option` (see the module docstring)."""
    meta = {"option": Option(kind, help, group, flag, metavar, const)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def options(cls) -> Iterator[tuple[str, Option]]:
    """(field name, Option) of the dataclass `cls`'s option fields, in order."""
    for f in fields(cls):
        if "option" in f.metadata:
            yield f.name, f.metadata["option"]


def check_fields(obj) -> None:
    """Check every option field of the dataclass instance `obj` by its kind (None passes where the default is
    None), keeping the value as the kind has it (a whole number of a real field as a float, a list field as a
    tuple); a refusal is a FieldError naming the field."""
    owner = type(obj).__name__
    for f in fields(obj):
        if "option" not in f.metadata:
            continue
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        kind = f.metadata["option"].kind
        try:
            if kind.action == "append":
                if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                    raise ValueError("expected a list")
                checked = tuple(kind.check(item) for item in value)
            else:
                checked = kind.check(value)
        except (ValueError, TypeError) as exc:
            raise FieldError(owner, f.name, value, str(exc)) from None
        if checked is not value:
            object.__setattr__(obj, f.name, checked)  # frozen dataclasses too: the value, as its kind has it


def flag_of(name: str, opt: Option) -> str:
    return opt.flag or "--" + name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, classes: Iterable[type], groups: dict[str, str],
              only: Iterable[str] | None = None) -> None:
    """The option fields of `classes` (those named in `only`, if given) as flags of `parser`, in the argparse groups
    titled by `groups` (group key -> title; a group parser already has is reused). A flag not given is absent from
    the parsed namespace, so its field keeps its default."""
    only = None if only is None else set(only)
    chosen = [(name, opt) for cls in classes for name, opt in options(cls) if only is None or name in only]
    for key, title in groups.items():  # in the order of `groups`, those the chosen flags use
        if any(opt.group == key for _, opt in chosen):
            group(parser, title)
    for name, opt in chosen:
        kw = dict(dest=name, help=opt.help, default=argparse.SUPPRESS)
        kind = opt.kind
        if kind.action == "store_true":
            kw["action"] = "store_true"
        else:
            kw.update(type=kind.flag_type, metavar=opt.metavar)
            if kind.choices is not None:
                kw["choices"] = kind.choices
            if kind.action == "append":
                kw["action"] = "append"
            if opt.const is not None:
                kw.update(nargs="?", const=opt.const)
        group(parser, groups[opt.group]).add_argument(flag_of(name, opt), **kw)


def given(namespace: argparse.Namespace, cls: type) -> dict:
    """The values of `cls`'s option fields that a parsed command line gave (a list of a repeated flag as a
    tuple)."""
    values = vars(namespace)
    return {name: tuple(values[name]) if isinstance(values[name], list) else values[name]
            for name, _ in options(cls) if name in values}


def from_table(table: dict, classes: Iterable[type], where: str) -> dict:
    """The values of a config file's `table` (keys as field names, `-` or `_`), each checked by its field's kind:
    an unknown key, a wrong type or a refused value is a UsageError naming `where`, the key and the value."""
    known = {name: opt for cls in classes for name, opt in options(cls)}
    values = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in known:
            raise UsageError(f"config {where}: unknown key {key!r} (keys: {', '.join(sorted(known))})")
        kind = known[name].kind
        try:
            if kind.action == "append":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("expected list of strings")
                values[name] = tuple(kind.parse(v) for v in value)
            else:
                values[name] = kind.check(value)
        except ValueError as exc:
            raise UsageError(f"config {where}: key {key!r} = {value!r}: {exc}") from None
    return values
