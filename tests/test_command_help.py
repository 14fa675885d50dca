"""Every option of every command has help, and each description is whole: a command's first paragraph ends its
sentence, and model.priors keeps its usage lines as written."""
import argparse
import importlib

import pytest

COMMANDS = ["eval.report", "eval.judge", "eval.erc", "eval.view", "model.sample", "model.dialogue.__main__",
            "llm.api.flags", "llm.testing.command", "llm.prompts.__main__", "model.export", "model.priors.__main__"]


def parsers(p: argparse.ArgumentParser, name: str):
    yield name, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from parsers(child, f"{name} {sub}")


@pytest.mark.parametrize("module", COMMANDS)
def test_every_option_has_help(module):
    missing = [f"{name}: {'/'.join(a.option_strings) or a.dest}"
               for name, p in parsers(importlib.import_module(module).parser(), module)
               for a in p._actions if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not missing, missing


@pytest.mark.parametrize("module", COMMANDS[:-1])
def test_descriptions_end_their_sentence(module):
    for name, p in parsers(importlib.import_module(module).parser(), module):
        if p.description:
            assert p.description.rstrip()[-1] in ".?", (name, p.description)


def test_the_eval_erc_and_model_dialogue_descriptions_are_their_whole_first_paragraph():
    """They were cut at the docstring's first line break, mid-sentence."""
    for module, doc in (("eval.erc", "eval.erc"), ("model.dialogue.__main__", "model.dialogue")):
        description = importlib.import_module(module).parser().description
        first = importlib.import_module(doc).__doc__.split("\n\n")[0]
        assert description == " ".join(first.split()), module


def test_model_priors_keeps_its_usage_lines():
    import model.priors.__main__ as priors

    text = priors.parser().format_help()
    for line in priors.__doc__.strip().splitlines()[2:]:
        assert line in text.splitlines(), line


def test_the_test_server_has_a_flag_with_help_for_every_fault():
    from dataclasses import fields

    from llm.testing.command import HELP
    from llm.testing.faults import Faults

    assert set(HELP) == {f.name for f in fields(Faults)}


@pytest.mark.parametrize("module", COMMANDS)
def test_a_command_with_more_than_five_options_puts_each_in_a_help_group(module):
    for name, p in parsers(importlib.import_module(module).parser(), module):
        options = [a for g in p._action_groups if g.title != "positional arguments" for a in g._group_actions
                   if not isinstance(a, argparse._HelpAction)]
        loose = [a.option_strings[0] for g in p._action_groups if g.title == "options" for a in g._group_actions
                 if not isinstance(a, argparse._HelpAction)]
        assert len(options) <= 5 or not loose, (name, loose)


def test_llm_generate_groups_its_flags_by_job():
    from llm.api.flags import parser

    titles = [g.title for g in parser()._action_groups][2:]
    assert titles == ["what to generate", "endpoint", "limits", "validation and generation", "prompts and language",
                      "output", "planning and cost", "batch (half price, in rounds)", "scale (Ray)"]
