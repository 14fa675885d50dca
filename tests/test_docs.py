"""The documentation runs and builds: every ```bash and ```python block of README.md and docs/, each page's blocks
in order in a fresh temporary folder, against test servers (the README's conventions section says which), with the
shared corpora as $CARER and $MELD; the site builds with `mkdocs build --strict`; the README's links resolve."""
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO, SHARED_DATA
from llm.testing.faults import Faults, spawned

README = REPO / "README.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```$", re.M | re.S)
SERVER = Faults(implausible_marker="13-17")  # the README: `python -m llm.testserver --implausible-marker 13-17`
CORPORA = {"CARER": SHARED_DATA / "carer_emotion", "MELD": SHARED_DATA / "meld"}
BLOCK_TIMEOUT = 600  # seconds; a page's blocks together get PAGE_TIMEOUT (cold caches: embeddings, JAX programs)
PAGE_TIMEOUT = 1800


def runnable(page: Path) -> list[tuple[str, str]]:
    """The page's (language, code) blocks in order. Not run: the two blocks of the README's "## Set up" section, the
    install with the main job and the test command, which CI runs (.ci/run)."""
    text = page.read_text()
    if page == README:
        head, rest = text.split("\n## Set up\n", 1)
        set_up, tail = rest.split("\n## ", 1)
        skipped = [code.strip() for _, code in BLOCK.findall(set_up)]
        assert len(skipped) == 2 and skipped[0].startswith("python3 -m venv .venv && ") \
            and skipped[1] == ". .venv/bin/activate && python -m pytest", f"more than the set-up commands: {skipped}"
        text = head + tail
    return BLOCK.findall(text)


PAGES = [page for page in [README, *sorted((REPO / "docs").rglob("*.md"))] if runnable(page)]


@pytest.fixture(scope="module")
def servers():
    with spawned(SERVER) as first, spawned(SERVER) as second:
        yield first, second


@pytest.mark.slow
@pytest.mark.timeout(PAGE_TIMEOUT)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_page_runs(page, servers, tmp_path):
    blocks = runnable(page)
    text = "".join(code for _, code in blocks)
    for name, path in CORPORA.items():
        if f"${name}" in text and not path.is_dir():
            pytest.skip(f"{page.name} reads ${name}, and {path} is not there")
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout's code
    env = {**os.environ, "PYTHONPATH": pythonpath, "BASE_URL": servers[0], "BASE_URL_2": servers[1],
           "MODEL": "test-model", "HF_HUB_OFFLINE": "1", **{name: str(path) for name, path in CORPORA.items()}}
    for i, (language, code) in enumerate(blocks, 1):
        argv = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
        if proc.returncode != 0:
            pytest.fail(f"{page.relative_to(REPO)}, block {i} ({language}) exited with {proc.returncode}:\n{code}\n"
                        f"--- its output ---\n{proc.stdout}{proc.stderr}", pytrace=False)


def test_the_site_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    def text(page: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", (tmp_path / "site" / page / "index.html").read_text()))

    # the included pieces are there: the README's set-up section, and the format documents beside the data
    assert ". .venv/bin/activate && python -m pytest" in text(".")
    assert "validation_1" in text("formats/prompt-sets")
    assert "A complete small custom profile" in text("formats/profiles") and "maps" in text("formats/emotion-sets")


def test_the_readme_links_resolve():
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README.read_text())
    assert targets and [t for t in targets if not (REPO / t).exists()] == []
