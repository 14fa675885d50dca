"""eval.view's page in a real headless Chromium (Debian's chromium and chromium-driver, driven by selenium; no
browser is downloaded): 20,000 rows load with no console error, filtering by text and by emotion narrows the rows
as the data says, hostile text stays text, report.html's figures load, and a screenshot is the size of the
window's viewport and not blank. Skipped, saying why, only where there is no Chromium, chromedriver or selenium."""
import io
import shutil
from pathlib import Path

import pytest

from common.cli import run
from eval.view import main
from common.formats import write as write_results
from tests.eval.test_view import HOSTILE, results

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
SIZE = (1280, 900)
N = 20_000

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
    pytest.skip(f"no Chromium here ({CHROMIUM}, {DRIVER}): apt-get install chromium chromium-driver",
                allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow  # a browser: see pyproject's slow marker


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={SIZE[0]},{SIZE[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    data = root / "results.jsonl"
    write_results([results(N)], data, "jsonl")
    assert run(main, [str(data)]) == 0
    return root / "results.html"


def load(browser, path: Path) -> None:
    browser.get(path.resolve().as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "status").text)


def status(browser) -> str:
    return browser.find_element(By.ID, "status").text


def shown_texts(browser) -> list[str]:
    """The text cell of each row shown, exactly as the page holds it."""
    return browser.execute_script("return [...document.querySelectorAll('#texts tbody tr')]"
                                  ".map((tr) => tr.children[1].textContent)")


def severe(browser) -> list[dict]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_page_loads_20000_rows_with_no_console_error(browser, page):
    load(browser, page)
    assert status(browser) == f"1–50 of {N} rows" and len(shown_texts(browser)) == 50
    assert severe(browser) == []


def matching(rows, words: str, emotion: str | None = None) -> list[list[str]]:
    """The rows the page should show: every word in some cell (case-insensitive), the emotion if one is picked."""
    terms = words.lower().split()
    return [r for r in rows if all(t in "\x01".join(r).lower() for t in terms) and emotion in (None, r[1])]


def expect(browser, shown: list) -> None:
    n = len(shown)
    WebDriverWait(browser, 30).until(lambda d: status(d) == f"{1 if n else 0}–{min(50, n)} of {n} rows"
                                                             + (f" (filtered from {N})" if n != N else ""))
    assert shown_texts(browser) == [r[0] for r in shown[:50]]


def test_typing_narrows_the_rows_as_the_data_says(browser, page):
    from common.tables import read_file
    from eval.browse import browse

    rows = browse(read_file(page.with_suffix(".jsonl")), "x").rows
    load(browser, page)
    box = browser.find_element(By.ID, "query")
    box.send_keys("osaka")
    expect(browser, osaka := matching(rows, "osaka"))
    assert N / 4 < len(osaka) < N / 2
    box.send_keys("  NUMBER 12")
    expect(browser, matching(rows, "osaka number 12"))
    Select(browser.find_element(By.ID, "facet-1")).select_by_value("fear")
    expect(browser, fear := matching(rows, "osaka number 12", "fear"))
    assert 50 < len(fear) < len(osaka)
    browser.find_element(By.ID, "next").click()
    assert status(browser).startswith("51–") and shown_texts(browser) == [r[0] for r in fear[50:100]]
    box.clear()
    box.send_keys("no such words anywhere")
    expect(browser, [])
    assert severe(browser) == []


def test_hostile_text_stays_text(browser, page):
    load(browser, page)
    browser.find_element(By.ID, "query").send_keys("onerror")
    WebDriverWait(browser, 30).until(lambda d: status(d) == f"1–1 of 1 rows (filtered from {N})")
    assert shown_texts(browser) == [HOSTILE]
    assert browser.find_elements(By.CSS_SELECTOR, "#texts img, #texts script") == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert severe(browser) == []


def test_a_screenshot_is_the_window_and_not_blank(browser, page):
    from matplotlib.image import imread

    load(browser, page)
    png = browser.get_screenshot_as_png()
    pixels = imread(io.BytesIO(png))
    viewport = browser.execute_script("return [innerWidth * devicePixelRatio, innerHeight * devicePixelRatio]")
    assert png.startswith(b"\x89PNG") and list(pixels.shape[1::-1]) == viewport and viewport[0] == SIZE[0]
    colours = {tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}
    assert len(colours) > 20 and pixels.std() > 0.05  # text, rules and controls on the white page


def test_report_html_shows_its_figures_offline(browser, tmp_path, monkeypatch):
    from eval import report
    from tests.eval.test_report_gold import HashEmbedder

    monkeypatch.setattr(report, "Embedder", HashEmbedder)
    data = tmp_path / "r.jsonl"
    write_results([results(30)], data, "jsonl")
    assert report.main([str(data), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    load(browser, tmp_path / "out" / "report.html")
    widths = browser.execute_script("return [...document.images].map((img) => img.naturalWidth)")
    assert len(widths) == 2 and min(widths) > 100
    assert status(browser) == "1–30 of 30 rows" and severe(browser) == []
