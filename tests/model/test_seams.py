"""The model package's seams: lazy package exports (no JAX on import), one mask-and-renormalise step for the
compiler and `with_tables`, the loader's raw data, and the MELD CSV read back as written."""
import subprocess
import sys

import numpy as np
import pytest

from model.dialogue.corpus import CSV_COLUMNS, meld_csv, read_dialogues, speaker_name
from model.masks import renormalise, with_tables
from model.profile import PROFILES_DIR, load_profile, load_with_data, read_json_object
from tests.support.paths import REPO


@pytest.mark.parametrize("module", ["model", "model.profile", "model.dialogue", "model.dialogue.corpus",
                                    "model.priors"])
def test_importing_a_light_module_loads_no_jax(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'numpyro')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout
    assert out.strip() == "[]"


def test_lazy_exports_resolve_to_their_modules():
    import model
    import model.dialogue
    import model.priors
    from model.dialogue import chain, corpus
    from model.priors import __main__ as priors_cli

    assert model.load_profile is load_profile
    assert model.dialogue.load_chain is chain.load_chain and model.dialogue.read_split is corpus.read_split
    assert model.priors.main is priors_cli.main
    assert {"load_profile", "sample_records"} <= set(dir(model))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        model.dialogue.nope  # noqa: B018


@pytest.mark.parametrize("ref,domain", [("jp", None), ("us", "sns")])
def test_with_tables_renormalises_exactly_as_the_compiler(ref, domain):
    profile = load_profile(ref, domain)
    same = with_tables(profile, {name: a.prior for name, a in profile.attributes.items()})
    for name, a in profile.attributes.items():
        np.testing.assert_array_equal(same.attributes[name].probs, a.probs)
        np.testing.assert_array_equal(renormalise(a.prior, a.mask), a.probs)


def test_load_with_data_returns_the_file_and_its_compiled_form():
    data, profile = load_with_data("jp", "workplace")
    assert data == read_json_object(PROFILES_DIR / "jp.json", "profile")
    assert profile.domain.name == "workplace" and profile.order == load_profile("jp", "workplace").order


def test_meld_csv_reads_back_as_written(tmp_path):
    dialogues = [{"id": 1, "turns": [{"speaker": 1, "emotion": "joy", "text": "hi, \"you\""},
                                     {"speaker": 0, "emotion": "neutral", "text": "hello\nthere"}]},
                 {"id": 0, "turns": [{"speaker": 2, "emotion": "anger", "text": "no"}]}]
    path = tmp_path / "d.csv"
    path.write_bytes(meld_csv(dialogues))
    assert path.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    back = read_dialogues(path, ("neutral", "joy", "anger"))
    assert [d["id"] for d in back] == ["0", "1"]  # written in id order
    assert back[1]["turns"] == [{"speaker": speaker_name(t["speaker"]), "emotion": t["emotion"], "text": t["text"]}
                                for t in dialogues[0]["turns"]]
