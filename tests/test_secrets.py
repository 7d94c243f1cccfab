"""Tokens never appear in logs, reports, dataset cards or exported configs."""

import json

import yaml
from click.testing import CliRunner

from trlprep.converters.cli import main as convert_main
from trlprep.inspector.cli import main as inspect_main

SECRET = "hf_THIS_MUST_NEVER_BE_PRINTED_123"


def test_no_token_in_reports_summaries_runs_or_configs(shared_data, tiny_model, tmp_path, monkeypatch):
    from trlprep.converters.hub import dataset_card
    from trlprep.inspector.dialects import classify_row
    from trlprep.train.api import train

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", SECRET)
    source = shared_data / "dpo_en_demo.json"
    seen = []
    for fmt in ("json", "text", "markdown"):
        seen.append(CliRunner().invoke(inspect_main, ["-d", str(source), "--format", fmt]).output)
    converted = CliRunner().invoke(convert_main, ["-d", str(source), "--to", "dpo", "-o", str(tmp_path / "o.jsonl"),
                                                  "--format", "json"])
    seen.append(converted.output)
    from trlprep.converters import convert

    result = convert(source, to="dpo", output=tmp_path / "o2.jsonl")
    seen.append(dataset_card(result, "me/data", classify_row({"prompt": "q", "chosen": "a", "rejected": "b"})))
    run = train(method="dpo", model=str(tiny_model), dataset=source, output_dir=tmp_path / "run",
                overrides=(f"hub_token={SECRET}", "push_to_hub=false"), export_trl_config=tmp_path / "run.yaml",
                max_steps=1, batch_size=2, max_dropped=1.0)
    seen.append((tmp_path / "run.trlprep-run.json").read_text())
    seen.append((tmp_path / "run.yaml").read_text())
    seen.append(json.dumps(run.to_dict(), default=str))
    assert "hub_token" not in yaml.safe_load((tmp_path / "run.yaml").read_text())
    for text in seen:
        assert SECRET not in text
