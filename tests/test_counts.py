"""Counts that add up: every kept / dropped line names its base and each cause between the rows read and the rows
trained (rejects, KTO unpairing, the test split, a mixture's weights, the trainer's own drops), and the JSON
reports carry the same numbers."""

import json

import pytest
from click.testing import CliRunner

from trlprep.converters import convert
from trlprep.converters.cli import main as convert_main
from trlprep.train.api import train

FAST = {"max_steps": 1, "batch_size": 2, "max_length": 64, "max_dropped": 1.0}


def lines_in(path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def test_a_kto_split_counts_the_rows_its_files_hold_and_the_pairs_they_came_from(shared_data, tmp_path):
    output = tmp_path / "kto.jsonl"
    shown = CliRunner().invoke(convert_main, ["--dataset", str(shared_data / "dpo_en_demo.json"), "--to", "kto",
                                              "--test-size", "0.1", "--output", str(output)])
    assert shown.exit_code == 0, shown.output
    train_rows, test_rows = lines_in(tmp_path / "kto.train.jsonl"), lines_in(tmp_path / "kto.test.jsonl")
    assert (train_rows, test_rows) == (66, 10)  # the slice's 38 pairs, 2 rows each; 5 pairs held out whole
    assert "rows in 38 = kept 38 + rejected 0; rows written 76 = kept 38 + 38 from KTO unpairing" in shown.output
    assert "train 66 rows + test 10 rows = 76 written (from 33 + 5 kept rows)" in shown.output
    result = convert(shared_data / "dpo_en_demo.json", to="kto", test_size=0.1, output=tmp_path / "again.jsonl")
    ledger = result.to_dict()
    assert ledger["rows_out"] == ledger["rows_kept"] + ledger["rows_added"] == train_rows + test_rows
    assert ledger["rows_added_by"] == "KTO unpairing"
    assert ledger["split"]["train"] + ledger["split"]["test"] == ledger["rows_out"]
    assert ledger["split"]["train_kept"] + ledger["split"]["test_kept"] == ledger["rows_kept"]


def test_a_conversion_that_writes_a_row_per_kept_row_adds_none(shared_data, tmp_path):
    result = convert(shared_data / "dpo_en_demo.json", to="dpo", test_size=0.05, output=tmp_path / "dpo.jsonl")
    assert (result.rows_added, result.rows_added_by) == (0, None)
    assert result.split["train"] == lines_in(tmp_path / "dpo.train.jsonl") == result.split["train_kept"] == 36
    assert "rows written 38\n" in result.to_text()


def adds_up(counts: dict) -> bool:
    return (counts["rows_in"] - counts["rejected"] + counts["added"] - counts["held_out_for_test"]
            - counts["left_out_by_weights"] - counts["dropped_by_trainer"] == counts["trained"])


def trained(tmp_path, **options):
    said = []
    result = train(model=options.pop("model"), output_dir=tmp_path / "run", announce=said.append,
                   **{**FAST, **options})
    saved = json.loads((tmp_path / "run" / "trlprep-run.json").read_text())
    assert saved["accounting"] == result.accounting and saved["rows_trained"] == result.accounting["trained"]
    return result.accounting, next(line for line in said if "Trainer kept " in line)


@pytest.mark.slow
def test_the_test_split_is_named_apart_from_the_trainers_drops(shared_data, tiny_model, tmp_path):
    counts, line = trained(tmp_path, method="dpo", model=str(tiny_model), dataset=shared_data / "dpo_en_demo.json",
                           test_size=0.05)
    assert adds_up(counts) and counts["held_out_for_test"] == 2 and counts["train_rows"] == 36
    assert counts["dropped_by_trainer"] > 0  # prompts that fill 64 tokens of this tiny vocabulary
    dropped = counts["dropped_by_trainer"]
    assert line == (f"DPOTrainer kept {36 - dropped} of the 36 train rows ({dropped} dropped while tokenizing): "
                    f"rows in 38 - 2 held out for the test split - {dropped} dropped while tokenizing = "
                    f"{36 - dropped}")


@pytest.mark.slow
def test_kto_unpairing_and_its_split_add_up_to_the_pairs_read(shared_data, tiny_model, tmp_path):
    counts, line = trained(tmp_path, method="kto", model=str(tiny_model), dataset=shared_data / "dpo_en_demo.json",
                           test_size=0.1, max_length=512)
    assert adds_up(counts)
    assert (counts["rows_in"], counts["added"], counts["held_out_for_test"], counts["train_rows"]) == (38, 38, 10, 66)
    assert line.startswith(f"KTOTrainer kept {counts['trained']} of the 66 train rows")
    assert "rows in 38 + 38 from KTO unpairing - 10 held out for the test split" in line


@pytest.mark.slow
def test_rows_a_mixtures_weights_leave_out_are_not_the_trainers_drops(shared_data, tiny_model, tmp_path):
    sources = [{"path": str(shared_data / "alpaca_en_demo.json"), "weight": 0.9},
               {"path": str(shared_data / "dpo_en_demo.json"), "weight": 0.1}]
    counts, line = trained(tmp_path, method="sft", model=str(tiny_model), dataset=sources, max_length=1024)
    assert adds_up(counts)
    # The slices' 41 + 38 rows kept; at 0.9/0.1 the largest mixture repeating none has all 41 alpaca rows and 5
    # others.
    assert (counts["rows_in"], counts["left_out_by_weights"], counts["train_rows"]) == (79, 33, 46)
    dropped = counts["dropped_by_trainer"]  # rows whose answer 1024 tokens of this tiny vocabulary cut away
    assert line == (f"SFTTrainer kept {46 - dropped} of the 46 rows mixed ({dropped} dropped while tokenizing): "
                    f"rows in 79 - 33 left out by the mixture weights - {dropped} dropped while tokenizing = "
                    f"{46 - dropped}")


def test_the_counts_page_shows_what_its_command_prints(tmp_path, monkeypatch):
    """docs/counts.md's example, run as printed (from the repo root: here from a copy of examples/ in a temporary
    folder, so that the output goes there)."""
    from tests.conftest import REPO

    page = (REPO / "docs" / "counts.md").read_text()
    command = next(line for line in page.splitlines() if line.startswith("uv run convert "))
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "preference_pairs.jsonl").write_bytes(
        (REPO / "examples" / "preference_pairs.jsonl").read_bytes())
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(convert_main, command.split()[3:])
    assert shown.exit_code == 0, shown.output
    printed = [line for line in shown.output.splitlines() if not line.startswith(("examples/", "  detected",
                                                                                    "  each", "  test split",
                                                                                    "inspected"))]
    assert "```text\n" + "\n".join(printed) + "\n```" in page
