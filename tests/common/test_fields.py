"""Typed option fields (common/fields.py): one schema gives the check at construction, the flags in their groups,
and the config-file reading, each refusal in its own words."""
from dataclasses import dataclass

import pytest

from common.cli import Parser
from common.errors import UsageError
from common.fields import FieldError, Flag, Number, Text, Whole, add_flags, check_fields, from_table, given, option


@dataclass(frozen=True)
class Demo:
    count: int | None = option(None, Whole(), "how many", group="a")
    share: float = option(0.5, Number(low=0, high=1, open_high=True), "a share", group="b", metavar="R")
    wait: float = option(1.0, Number(low=0, open_low=True, finite=True, unit=" of seconds"), "seconds", group="b")
    mode: str = option("x", Text(("x", "y")), "a mode", group="a")
    loud: bool = option(False, Flag(), "a switch", group="b")

    def __post_init__(self):
        check_fields(self)


@pytest.mark.parametrize("values, message", [
    ({"count": 0}, "Demo: count = 0: must be at least 1, got 0"),
    ({"count": True}, "Demo: count = True: expected int"),
    ({"share": 1.0}, "Demo: share = 1.0: expected a number in [0, 1), got 1.0"),
    ({"share": "half"}, "Demo: share = 'half': expected int or float"),
    ({"wait": float("inf")}, "Demo: wait = inf: expected a finite number of seconds > 0, got inf"),
    ({"mode": "z"}, "Demo: mode = 'z': not one of x, y"),
    ({"loud": 1}, "Demo: loud = 1: expected bool"),
])
def test_a_value_is_checked_when_the_object_is_made(values, message):
    with pytest.raises(FieldError, match="^" + message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        Demo(**values)


def test_a_whole_number_given_for_a_real_field_is_kept_as_a_real_number():
    assert Demo(share=0, wait=2).wait == 2.0 and isinstance(Demo(wait=2).wait, float)


def parser() -> Parser:
    p = Parser(prog="demo")
    add_flags(p, [Demo], {"b": "group b", "a": "group a"})
    return p


def test_flags_come_in_their_groups_in_the_given_order_and_absent_flags_keep_the_defaults():
    p = parser()
    titles = [g.title for g in p._action_groups][2:]
    assert titles == ["group b", "group a"]
    assert given(p.parse_args(["--count", "3", "--loud"]), Demo) == {"count": 3, "loud": True}
    assert Demo(**given(p.parse_args([]), Demo)) == Demo()


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "argument --count: must be at least 1, got 0"),
    (["--count", "many"], "argument --count: expected a whole number, got 'many'"),
    (["--share", "nan"], "argument --share: expected a number in [0, 1), got 'nan'"),
    (["--mode", "z"], "argument --mode: invalid choice: 'z'"),
])
def test_a_flag_is_refused_in_its_own_words(argv, message):
    with pytest.raises(UsageError) as exc:
        parser().parse_args(argv)
    assert str(exc.value).startswith(message)


def test_a_config_table_is_checked_by_key():
    assert from_table({"count": 2, "share": 0}, [Demo], "f.toml") == {"count": 2, "share": 0.0}
    for table, message in [({"cuont": 1}, "config f.toml: unknown key 'cuont' (keys: count, loud, mode, share, wait)"),
                           ({"count": "2"}, "config f.toml: key 'count' = '2': expected int"),
                           ({"share": 2}, "config f.toml: key 'share' = 2: expected a number in [0, 1), got 2")]:
        with pytest.raises(UsageError) as exc:
            from_table(table, [Demo], "f.toml")
        assert str(exc.value) == message
