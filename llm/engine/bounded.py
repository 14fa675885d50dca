"""Jinja2 rendering bounded in time and size, for the templates of a user's prompt set (llm.engine.promptset).

The sandbox (ImmutableSandboxedEnvironment) keeps a template away from Python's internals but not from a loop that
runs forever, a string multiplied into gigabytes, or a macro that calls itself. Here every render has a budget:

- time: RENDER_SECONDS, checked at every step of every loop (each `for` iterates through a checking iterator, put
  in when the template is compiled) and at every call (of a macro, a filter, a function, an operator): a template
  can spend time only in loops and calls, so it cannot spend more;
- size: MAX_RENDERED_CHARS, checked on the output as it is made and on every value an operation makes, and checked
  *before* an operation that could make a long value makes it: `*` and `%` (printf widths), an exponent over
  MAX_EXPONENT, a number over MAX_RENDERED_CHARS given to a filter or function (a width, a count), the filters that
  multiply their input (replace, join, indent, wordwrap); the string methods that pad or multiply (center, ljust,
  zfill, replace, join, format, translate ...) are not available: their filters are, bounded;
- depth: a recursion too deep (a macro calling itself) is refused.

A template that breaks a bound raises `RenderBoundExceeded`. Constant expressions are not folded when a template is
compiled (`optimized=False`), so nothing of a template runs before it is rendered.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import wraps

from jinja2 import StrictUndefined, TemplateRuntimeError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

RENDER_SECONDS = 2.0
MAX_RENDERED_CHARS = 100_000
MAX_EXPONENT = 256
_PRINTF = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d+))?")  # the width and precision of each printf conversion
_STRING_METHODS_OFF = {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map", "join", "replace",
                       "translate"}


_STEPS = "_bounded_steps"  # the filter every `for` iterates through
_RENDERING = threading.local()  # .deadline: the monotonic time the render under way must end by


class RenderBoundExceeded(TemplateRuntimeError):
    """A render ran past RENDER_SECONDS, made (or was about to make) more than MAX_RENDERED_CHARS characters, or
    recursed too deep."""


def _check_time() -> None:
    deadline = getattr(_RENDERING, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise RenderBoundExceeded(f"rendering takes more than {RENDER_SECONDS:g} s (a loop too long?)")


def _steps(items: Iterable) -> Iterator:
    for item in items:
        _check_time()
        yield item


class _CheckedLoops(CodeGenerator):
    """Compiles every `for` to iterate through `_steps` (the filter put in before the code is made)."""

    def visit_Template(self, node: nodes.Template, frame=None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _STEPS, [], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)


def _check_length(n: int) -> None:
    if n > MAX_RENDERED_CHARS:
        raise RenderBoundExceeded(f"the template makes a text of {n:,} characters (at most {MAX_RENDERED_CHARS:,})")


def _check_value(value) -> None:
    if isinstance(value, (str, list, tuple)):
        _check_length(len(value))


def _check_numbers(values) -> None:
    """A width, count or repetition past MAX_RENDERED_CHARS is refused before it is used."""
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            _check_length(abs(value))


def _check_printf(text) -> None:
    if isinstance(text, str):
        _check_numbers(int(n) for pair in _PRINTF.findall(text) for n in pair if n)


def _longest(name: str, value, args: tuple, kwargs: dict) -> int:
    """The longest text the filter `name` can make of `value` and its arguments (0: none longer than its input)."""
    if not isinstance(value, str) and name != "join":
        return 0
    if name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        old, new = args[:2]
        return len(value) + (value.count(old) if old else len(value) + 1) * len(new)
    if name == "join":
        sep = args[0] if args else kwargs.get("d", "")
        return len(sep) * len(value) if isinstance(sep, str) and hasattr(value, "__len__") else 0
    if name == "indent":
        width = args[0] if args else kwargs.get("width", 4)
        return len(value) + (value.count("\n") + 1) * (len(width) if isinstance(width, str) else int(width))
    if name == "wordwrap":
        width = args[0] if args else kwargs.get("width", 79)
        wrap = (args[2] if len(args) > 2 else kwargs.get("wrapstring")) or "\n"
        return len(value) + len(value) // max(1, int(width)) * len(str(wrap))
    return 0


def _bounded_filter(name: str, function: Callable) -> Callable:
    passed = 1 if _PassArg.from_obj(function) else 0  # a context, eval context or environment comes first

    @wraps(function)  # keeps jinja's pass_* mark
    def bounded(*args, **kwargs):
        _check_time()
        value, rest = args[passed], args[passed + 1:]
        _check_numbers((*rest, *kwargs.values()))
        if name == "format":
            _check_printf(value)
        _check_length(_longest(name, value, rest, kwargs))
        result = function(*args, **kwargs)
        _check_value(result)
        return result

    return bounded


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with every size-making operation checked (see the module docstring); `render` renders."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CheckedLoops

    def __init__(self, **options):
        super().__init__(optimized=False, undefined=StrictUndefined, **options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters[_STEPS] = _steps
        self.globals.pop("lipsum", None)  # filler paragraphs by the thousand: no prompt needs them

    def call_binop(self, context, operator: str, left, right):
        _check_time()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    _check_length(len(seq) * times)
        elif operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise RenderBoundExceeded(f"an exponent of {right} (at most {MAX_EXPONENT})")
        elif operator == "%":
            _check_printf(left)
        result = super().call_binop(context, operator, left, right)
        _check_value(result)
        return result

    def is_safe_attribute(self, obj, attr: str, value) -> bool:
        if isinstance(obj, str) and attr in _STRING_METHODS_OFF:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context, __obj, *args, **kwargs):  # jinja2's signature (its names cannot clash with kwargs)
        _check_time()
        _check_numbers((*args, *kwargs.values()))
        result = super().call(__context, __obj, *args, **kwargs)
        _check_value(result)
        return result


def render(template, fields: dict) -> str:
    """`template` (compiled by a BoundedEnvironment) rendered with `fields`, within the budget."""
    _RENDERING.deadline = time.monotonic() + RENDER_SECONDS
    try:
        pieces, size = [], 0
        for piece in template.generate(**fields):
            size += len(piece)
            _check_length(size)
            pieces.append(piece)
        return "".join(pieces)
    except RecursionError:
        raise RenderBoundExceeded("recursion too deep (a macro calling itself?)") from None
    finally:
        _RENDERING.deadline = None
