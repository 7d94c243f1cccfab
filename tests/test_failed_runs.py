"""A failed `train` leaves none of the data it converted behind, and never removes what was there before."""

import pytest
from click.testing import CliRunner

from trlprep.train.api import DataRefused, train
from trlprep.train.cli import main

# gsm8k's answers at 64 tokens of the tiny vocabulary: the preflight refuses, after the data was converted.
REFUSED = {"method": "sft", "max_steps": 1, "max_length": 64}


@pytest.mark.parametrize("existing", [None, "kept"])
def test_a_refused_run_removes_the_data_and_every_folder_it_made(shared_data, tiny_model, tmp_path, existing):
    if existing:
        (tmp_path / existing).mkdir()
    out = tmp_path / (existing or "x") / "a" / "b" / "c"
    done = CliRunner().invoke(main, ["--method", "sft", "--model", str(tiny_model), "--dataset",
                                     str(shared_data / "gsm8k_test.jsonl"), "--output-dir", str(out),
                                     "--max-steps", "1", "--max-length", "64"])
    assert done.exit_code == 1 and "SFTTrainer would drop 30 of 30 rows" in done.output
    assert list(tmp_path.rglob("*")) == ([tmp_path / existing] if existing else [])


def test_a_refused_run_keeps_what_was_in_its_folder_before(shared_data, tiny_model, tmp_path):
    notes = tmp_path / "data" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("mine")
    (tmp_path / "checkpoint-500").mkdir()
    with pytest.raises(DataRefused, match="would drop 30 of 30 rows"):
        train(model=str(tiny_model), dataset=shared_data / "gsm8k_test.jsonl", output_dir=tmp_path, **REFUSED)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == [
        "checkpoint-500", "data", "data/notes.txt"]
    assert notes.read_text() == "mine"


@pytest.mark.parametrize("share", ["50%", "0.5"])
def test_max_dropped_takes_a_share_as_the_config_file_writes_it(shared_data, tiny_model, tmp_path, share):
    done = CliRunner().invoke(main, ["--method", "sft", "--model", str(tiny_model), "--dataset",
                                     str(shared_data / "gsm8k_test.jsonl"), "--output-dir", str(tmp_path / "out"),
                                     "--max-steps", "1", "--max-length", "64", "--max-dropped", share])
    assert done.exit_code == 1 and "would drop 30 of 30 rows" in done.output
    assert "more than --max-dropped 50%" in done.output


@pytest.mark.parametrize("share", ["150%", "2", "half"])
def test_max_dropped_out_of_range_is_bad_usage(share):
    done = CliRunner().invoke(main, ["--method", "sft", "--model", "m", "--dataset", "d.jsonl", "--max-dropped", share])
    assert done.exit_code == 2 and "Invalid value for '--max-dropped': expected a share of rows such as" in done.output
