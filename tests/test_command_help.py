"""Every option of the eval.* and model.* commands has help, and each description is whole: a command's first
paragraph ends its sentence, and model.priors keeps its usage lines as written."""
import argparse
import importlib

import pytest

COMMANDS = ["eval.report", "eval.judge", "eval.erc", "eval.view", "model.sample", "model.dialogue.__main__",
            "model.priors.__main__"]


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
