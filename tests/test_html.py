"""The HTML report: one self-contained page, opened in a real headless Chromium (Debian's, driven by Playwright)."""

import json
import shutil

import pytest
from click.testing import CliRunner

from trlprep.converters.cli import main as convert_main
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main as inspect_main
from trlprep.inspector.methods import METHOD, METHODS

pytest.importorskip("altair", reason="the html extra (uv sync --extra html) is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def open_in_chromium(page_path, screenshot):
    """Load the page with every network request refused: its console errors, uncaught exceptions, the requests it
    tried, the plots drawn, the verdict table's methods and the pictures shown; a full-page screenshot is saved."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's: apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors, requests = [], []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))

        def refuse(route):
            requests.append(route.request.url)
            route.abort()

        page.route("http*://**", refuse)
        page.goto(page_path.as_uri())
        page.wait_for_selector(".vega-embed svg", timeout=20_000)
        page.wait_for_timeout(300)  # every chart's promise settled
        drawn = page.locator(".vega-embed svg").count()
        methods = page.locator("#verdicts tbody tr td:first-child").all_inner_texts()
        pictures = page.locator("img").evaluate_all("images => images.filter(i => i.naturalWidth > 0).length")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return {"errors": errors, "requests": requests, "plots": drawn, "methods": methods, "pictures": pictures}


@pytest.mark.slow
def test_the_inspect_page_renders_offline_with_its_plots_verdicts_and_masks(shared_data, tiny_model, tmp_path):
    page = tmp_path / "report.html"
    done = CliRunner().invoke(inspect_main, ["--dataset", str(shared_data / "kto_en_demo.json"), "--html", str(page),
                                             "--model", str(tiny_model), "--max-length", "256"])
    assert done.exit_code == 0, done.output
    assert f"wrote {page}" in done.stderr and "trained tokens marked" not in done.stdout  # masks: the page's only
    text = page.read_text()
    assert "<script src" not in text and "<link" not in text  # everything inline
    seen = open_in_chromium(page, tmp_path / "report.png")
    assert seen["errors"] == [] and seen["requests"] == []
    # shapes, characters of prompt, completion and total, tokens, turns, roles, KTO labels, the sampled scatter
    assert seen["plots"] == 9
    assert seen["methods"] == [m + ("*" if METHOD[m].experimental else "") for m in METHODS]
    assert "Tokens per row (36 over max_length 256)" in text and "What the trainer learns" in text
    assert (tmp_path / "report.png").stat().st_size > 50_000


@pytest.mark.slow
def test_the_convert_page_accounts_for_every_row_and_draws_the_rejected_one(shared_data, tmp_path):
    page = tmp_path / "glaive.html"
    done = CliRunner().invoke(convert_main, ["--dataset", str(shared_data / "glaive_toolcall_en_demo.json"),
                                             "--to", "sft", "--output", str(tmp_path / "out.jsonl"),
                                             "--html", str(page)])
    assert done.exit_code == 0, done.output
    text = page.read_text()
    assert "rows in 44 = kept 43 + rejected 1; rows written 43" in text
    # Row 41's (the source's 260) function call breaks its tool's schema: the call's turn is outlined, the type it breaks marked.
    rejected = text[text.index("rejected: row 41"):]
    assert "<div class='turn  offending'><div class='role'>function_call</div>" in rejected
    assert "&quot;<mark>number</mark>&quot;" in rejected
    assert str(tmp_path / "out.jsonl") in text and ".staging" not in text and "trlprep-" not in text
    seen = open_in_chromium(page, tmp_path / "glaive.png")
    assert seen["errors"] == [] and seen["plots"] >= 7


def test_format_html_prints_the_page_and_a_page_path_is_checked_before_reading(shared_data, tmp_path):
    printed = CliRunner().invoke(inspect_main, ["--dataset", str(shared_data / "dpo_en_demo.json"), "--format",
                                                "html"])
    assert printed.exit_code == 0 and printed.stdout.startswith("<!DOCTYPE html>")
    for path, message in ((tmp_path / "nowhere" / "r.html", "no such folder"), (tmp_path / "r.txt", "end in .html")):
        refused = CliRunner().invoke(inspect_main, ["--dataset", str(shared_data / "dpo_en_demo.json"),
                                                    "--html", str(path)])
        assert refused.exit_code == 2 and message in refused.output


def test_the_profile_counts_every_row(shared_data):
    """Histograms are counts of all rows (the overflow bin included); only the scatter plot samples."""
    profile = inspect_dataset(shared_data / "kto_en_demo.json", profile=True).profile
    for part in ("prompt", "completion", "total"):
        histogram = profile["characters"][part]
        assert sum(histogram["counts"]) + histogram["overflow"] == histogram["rows"] == 37
    assert profile["labels"] == {"true": 21, "false": 16} and sum(profile["turns"].values()) == 37
    pairs = inspect_dataset(shared_data / "dpo_en_demo.json", profile=True).profile
    assert pairs["pair_difference"]["rows"] == 38 and pairs["labels"] is None



def test_the_json_report_carries_the_profile_the_page_plots(shared_data, tmp_path):
    import jsonschema

    from tests.test_cli import REPORT_SCHEMA

    done = CliRunner().invoke(inspect_main, ["--dataset", str(shared_data / "glaive_toolcall_en_demo.json"),
                                             "--html", str(tmp_path / "r.html"), "--near-duplicates",
                                             "--format", "json"])
    report = json.loads(done.stdout)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert report["profile"]["rows"] == 44 and report["profile"]["roles"]["tool"] > 0
    assert sum(report["near_duplicates"]["cluster_sizes"].values()) == report["near_duplicates"]["clusters"]
    assert "example_rows" not in report  # the rows are drawn in the page, not repeated in the JSON


@pytest.mark.slow
def test_train_writes_the_page_of_the_data_it_converted(shared_data, tmp_path):
    from trlprep.train.api import train
    from tests.tiny_model import TOOL_CHAT_TEMPLATE, build_tiny_model

    # Tool-call data: a model whose template renders the calls (train refuses one that leaves them out, TP522).
    model = build_tiny_model(tmp_path / "model", template=TOOL_CHAT_TEMPLATE)
    result = train(method="sft", model=str(model), dataset=str(shared_data / "glaive_toolcall_en_demo.json"),
                   output_dir=tmp_path / "run", html=tmp_path / "data.html", dry_run=True, max_length=64,
                   max_dropped=1.0)
    text = (tmp_path / "data.html").read_text()
    assert result.ledger["rows_rejected"] == 1 and "rows in 44 = kept 43 + rejected 1" in text
    assert "trlprep convert → sft" in text


def test_a_broken_line_is_drawn_as_it_is_in_the_file():
    from pathlib import Path

    broken = Path(__file__).resolve().parent.parent / "examples" / "broken_chat.jsonl"
    text = inspect_dataset(str(broken), profile=True).to_html()
    import html

    line = broken.read_text().splitlines()[4]  # row 5, cut off mid-string (TP001)
    assert f"<pre class='offending'>{html.escape(line)}</pre>" in text and "UnreadableRow" not in text
    # The role a template does not know (TP106) is the turn outlined, not the whole row.
    assert "<div class='turn  offending'><div class='role'>bot</div>" in text
