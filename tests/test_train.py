"""`train` end to end on CPU with a real tiny model, on the real shared datasets."""

import json
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from trlprep.train.api import DataRefused, train
from tests.conftest import in_fresh_python
from trlprep.train.cli import main

pytestmark = pytest.mark.slow  # the slow tier (--slow): every test trains or resolves a run with TRL

# Short rows keep CPU training fast; this 400-token vocabulary makes rows ~4x longer than a real tokenizer would,
# so the preflight's drop limit is lifted here and tested on its own below.
FAST = {"max_steps": 2, "batch_size": 2, "max_length": 64, "max_dropped": 1.0}


def run_file(output_dir):
    return json.loads((output_dir / "trlprep-run.json").read_text())


@pytest.mark.parametrize("method,name,extra", [
    ("sft", "alpaca_en_demo.json", {}),
    ("dpo", "dpo_en_demo.json", {}),
    ("kto", "kto_en_demo.json", {}),
    ("reward", "dpo_en_demo.json", {"max_length": 768}),  # RewardTrainer drops pairs over max_length
    ("grpo", "gsm8k_test.jsonl", {"reward_funcs": ("answer_match", "think_format")}),
])
def test_every_method_trains_end_to_end(shared_data, tiny_model, tmp_path, method, name, extra):
    result = train(method=method, model=str(tiny_model), dataset=shared_data / name, output_dir=tmp_path,
                   **{**FAST, **extra})
    assert result.metrics["train_loss"] == result.metrics["train_loss"]  # a number, not NaN
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "tokenizer.json").exists()
    saved = run_file(tmp_path)
    assert saved["report"]["methods"][method]["status"] == "convertible"
    assert saved["ledger"]["rows_in"] == saved["ledger"]["rows_kept"] + saved["ledger"]["rows_rejected"]
    assert saved["config"]["max_steps"] == 2 and saved["config"]["use_cpu"] is True
    assert saved["metrics"]["train_loss"] == result.metrics["train_loss"]


def test_a_run_whose_rows_all_exceed_max_length_is_refused(shared_data, tiny_model, tmp_path):
    with pytest.raises(DataRefused, match="RewardTrainer dropped every row"):
        train(method="reward", model=str(tiny_model), dataset=shared_data / "dpo_en_demo.json",
              output_dir=tmp_path, max_steps=1, batch_size=2, max_length=8, max_dropped=1.0)


def test_preflight_refuses_when_the_trainer_would_drop_too_many_rows(shared_data, tiny_model, tmp_path):
    with pytest.raises(DataRefused, match=r"SFTTrainer would drop 30 of 30 rows at max_length=64 .*"
                                          r"more than --max-dropped 5%.*try --max-length"):
        train(method="sft", model=str(tiny_model), dataset=shared_data / "gsm8k_test.jsonl", output_dir=tmp_path,
              max_steps=1, max_length=64)
    result = train(method="sft", model=str(tiny_model), dataset=shared_data / "gsm8k_test.jsonl",
                   output_dir=tmp_path, max_length=1024, dry_run=True)
    assert result.tokens["trainer_effects"]["sft"]["dropped"] == 0 and result.tokens["rows"] == 30


def test_unusable_data_is_refused_in_seconds_without_torch(shared_data, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # train's default output folder, runs/<method>, is under the working directory
    code = ("import sys\nfrom trlprep.train.api import DataRefused, train\n"
            "try:\n    train(method='dpo', model=sys.argv[1], dataset=sys.argv[2])\n"
            "except DataRefused as refused:\n    print('refused:', refused)")
    done, loaded = in_fresh_python(code, str(tiny_model), str(shared_data / "c4_demo.jsonl"))
    assert "refused: " in done.stdout and "DPO needs chosen/rejected pairs" in done.stdout
    assert loaded == []


def test_cli_refusal_exit_code(shared_data, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # train's default output folder, runs/<method>, is under the working directory
    result = CliRunner().invoke(main, ["--method", "kto", "--model", str(tiny_model), "-d",
                                       str(shared_data / "alpaca_en_demo.json")])
    assert result.exit_code == 1 and "not usable for kto" in result.output


def test_an_unknown_accelerate_preset_is_bad_usage_from_python_and_the_cli(shared_data, tiny_model, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)  # train's default output folder, runs/<method>, is under the working directory
    from trlprep.errors import UsageError
    from trlprep.train.api import train

    with pytest.raises(UsageError, match="--accelerate-config 'zero4': choose one of single_gpu"):
        train(method="sft", model=str(tiny_model), dataset=str(shared_data / "alpaca_en_demo.json"),
              accelerate_config="zero4")
    result = CliRunner().invoke(main, ["--method", "sft", "--model", str(tiny_model), "-d",
                                       str(shared_data / "alpaca_en_demo.json"), "--accelerate-config", "zero4"])
    assert result.exit_code == 2 and "zero4" in result.output


def test_set_and_yaml_reach_the_trl_config(shared_data, tiny_model, tmp_path):
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text("max_grad_norm: 0.5\nlr_scheduler_type: constant\n")
    result = train(method="dpo", model=str(tiny_model), dataset=shared_data / "dpo_en_demo.json",
                   output_dir=tmp_path / "out", config=str(run_yaml), overrides=("beta=0.25", "max_grad_norm=0.7"),
                   dry_run=True, **FAST)
    assert result.config["beta"] == 0.25
    assert result.config["max_grad_norm"] == 0.7  # --set wins over the YAML
    assert result.config["lr_scheduler_type"] == "constant"
    assert not (tmp_path / "out" / "model.safetensors").exists()
    with pytest.raises(ValueError, match="'betta' is not a field of DPOConfig; did you mean beta"):
        train(method="dpo", model=str(tiny_model), dataset=shared_data / "dpo_en_demo.json",
              output_dir=tmp_path / "out", overrides=("betta=0.1",), dry_run=True)


def test_resume_lora_and_eval(shared_data, tiny_model, tmp_path):
    out = tmp_path / "run"
    long_enough = {**FAST, "max_length": 512}  # GSM8K questions alone exceed 64 tokens of this tokenizer
    train(method="sft", model=str(tiny_model), dataset=shared_data / "gsm8k_test.jsonl", output_dir=out,
          **long_enough)
    assert (out / "checkpoint-2").is_dir()
    resumed = train(method="sft", model=str(tiny_model), dataset=shared_data / "gsm8k_test.jsonl",
                    output_dir=out, resume=True, **{**long_enough, "max_steps": 3})
    assert resumed.resumed_from.endswith("checkpoint-2")
    assert (out / "checkpoint-3").is_dir()
    lora = train(method="sft", model=str(tiny_model), dataset=shared_data / "alpaca_en_demo.json",
                 output_dir=tmp_path / "lora", lora=True, lora_r=4, lora_alpha=8, test_size=0.1, **FAST)
    adapter = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8
    assert "eval_loss" in lora.metrics
    with pytest.raises(ValueError, match="--resume: no checkpoint"):
        train(method="sft", model=str(tiny_model), dataset=shared_data / "alpaca_en_demo.json",
              output_dir=tmp_path / "fresh", resume=True, dry_run=True, max_dropped=1.0)


def test_grpo_reward_functions_are_checked_against_columns(shared_data, tiny_model, tmp_path):
    rewards = tmp_path / "my_rewards.py"
    rewards.write_text("def needs_solution(completions, solution, **kwargs):\n    return [0.0] * len(completions)\n"
                       "def by_reference(completions, reference, **kwargs):\n    return [1.0] * len(completions)\n")
    with pytest.raises(ValueError, match=r"needs column\(s\) solution, which the data lacks"):
        train(method="grpo", model=str(tiny_model), dataset=shared_data / "gsm8k_test.jsonl",
              output_dir=tmp_path / "a", reward_funcs=(f"{rewards}:needs_solution",), dry_run=True)
    with pytest.raises(ValueError, match="GRPOTrainer needs at least one --reward-func"):
        train(method="grpo", model=str(tiny_model), dataset=shared_data / "gsm8k_test.jsonl",
              output_dir=tmp_path / "b", dry_run=True)
    ok = train(method="grpo", model=str(tiny_model), dataset=shared_data / "gsm8k_test.jsonl",
               output_dir=tmp_path / "c", reward_funcs=(f"{rewards}:by_reference", "length_penalty"), dry_run=True)
    assert ok.config["num_generations"] == 8  # TRL's default group size divides the default batch


def test_export_trl_config_parses_with_trls_own_parser(shared_data, tiny_model, tmp_path):
    from trl import DPOConfig, ModelConfig, ScriptArguments, TrlParser

    run_yaml = tmp_path / "run.yaml"
    result = train(method="dpo", model=str(tiny_model), dataset=shared_data / "dpo_en_demo.json",
                   output_dir=tmp_path / "out", export_trl_config=run_yaml, accelerate_config="zero3",
                   lora=True, test_size=0.1, **FAST)
    assert result.exported["command"] == f"trl dpo --config {run_yaml} --accelerate_config zero3"
    config = yaml.safe_load(run_yaml.read_text())
    assert (tmp_path / "run-data" / "train.jsonl").exists() and (tmp_path / "run-data" / "test.jsonl").exists()
    assert config["dataset_name"] == str(tmp_path / "run-data") and config["use_peft"] is True
    script_args, dpo_config, model_config = TrlParser((ScriptArguments, DPOConfig, ModelConfig)).parse_args_and_config(
        ["--config", str(run_yaml), "--use_cpu", "true"])  # the config is for GPU machines; this one has none
    assert model_config.model_name_or_path == str(tiny_model) and model_config.lora_r == 16
    assert dpo_config.max_steps == 2 and script_args.dataset_test_split == "test"
    assert not (tmp_path / "out").exists()  # nothing but the YAML and what is beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-data", "run.trlprep-run.json", "run.yaml"]
    assert sorted(p.name for p in (tmp_path / "run-data").iterdir()) == ["test.jsonl", "train.jsonl"]
    import datasets  # TRL's CLI loads the data folder whole: it must hold the splits and nothing else

    assert datasets.load_dataset(str(tmp_path / "run-data"))["test"].num_rows == 5


def test_hf_jobs_spec_names_secrets_but_never_their_values(monkeypatch):
    from trlprep.train.launch import job_spec

    monkeypatch.setenv("HF_TOKEN", "hf_do_not_leak_me")
    spec = job_spec(method="sft", model="Qwen/Qwen2.5-0.5B", dataset="trl-lib/Capybara",
                    settings={"max_steps": 100, "learning_rate": 2e-5, "use_cpu": True, "output_dir": "x"},
                    lora={"r": 8, "alpha": 16, "targets": None}, reward_funcs=(), flavor="a10g-large",
                    timeout="4h", split=None, config_name=None)
    text = json.dumps(spec.to_dict())
    assert "hf_do_not_leak_me" not in text
    assert spec.secrets == ["HF_TOKEN"] and spec.flavor == "a10g-large" and spec.timeout == "4h"
    args = spec.script_args
    assert spec.script == "trl" and args[0] == "sft"
    assert args[args.index("--dataset_name") + 1] == "trl-lib/Capybara"
    assert args[args.index("--push_to_hub") + 1] == "true" and args[args.index("--bf16") + 1] == "true"
    assert args[args.index("--lora_r") + 1] == "8" and "--use_cpu" not in args
    assert spec.dependencies == ["trl", "peft"]
    with pytest.raises(ValueError, match="reward functions must be importable in the job"):
        job_spec(method="grpo", model="m", dataset="d/x", settings={}, lora=None, reward_funcs=("answer_match",),
                 flavor="a10g-large", timeout="1h", split=None, config_name=None)


def test_hf_jobs_refuses_local_data_and_an_offline_hub(shared_data, monkeypatch):
    from huggingface_hub import constants

    with pytest.raises(ValueError, match="--launcher hf-jobs trains on a Hub dataset"):
        train(method="sft", model="m", dataset=str(shared_data / "c4_demo.jsonl"), launcher="hf-jobs")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    from trlprep.inspector import SourceError

    with pytest.raises(SourceError, match="cannot reach the Hugging Face Hub"):
        train(method="sft", model="m", dataset="trl-lib/Capybara", launcher="hf-jobs")


@pytest.mark.parametrize("arguments,message", [
    (("--method", "grpo"), "GRPOTrainer needs at least one --reward-func"),
    (("--method", "dpo", "--set", "betta=0.1"), "--set: 'betta' is not a field of DPOConfig; did you mean beta?"),
])
def test_usage_mistakes_are_answered_before_any_data_is_read_or_trl_imported(shared_data, tmp_path, arguments,
                                                                            message):
    code = ("import sys\nfrom trlprep.train.cli import main\n"
            "try:\n    main(sys.argv[1:], standalone_mode=False)\n"
            "except Exception as error:\n    print('refused:', error)")
    output = tmp_path / "run"
    done, loaded = in_fresh_python(code, *arguments, "--model", "no/such-model", "--dataset",
                                   str(shared_data / "gsm8k_test.jsonl"), "--output-dir", str(output))
    assert f"refused: {message}" in done.stdout
    assert loaded == [] and not output.exists()


def test_the_config_field_table_is_the_installed_trls():
    """`train/trl_fields.json` answers key typos without importing TRL; it must say what TRL says
    (regenerate: uv run --extra train python -m trlprep.train.config)."""
    from trlprep.train.config import FIELDS_FILE, installed_fields, installed_trl_version

    table = json.loads(FIELDS_FILE.read_text())
    assert (table["trl_version"], table["fields"]) == (installed_trl_version(), installed_fields())


def test_train_tells_the_ledger_and_the_truncation_before_training_and_json_keeps_stdout_clean(
        shared_data, tiny_model, tmp_path):
    arguments = ["--method", "sft", "--model", str(tiny_model), "--dataset", str(shared_data / "alpaca_en_demo.json"),
                 "--output-dir", str(tmp_path / "text"), "--max-steps", "1", "--batch-size", "2",
                 "--max-length", "128", "--max-dropped", "1"]
    text = CliRunner().invoke(main, arguments)
    lines = text.stdout.splitlines()
    assert text.exit_code == 0, text.output
    assert lines[0] == "data: rows in 41 = kept 41 + rejected 0; rows written 41"
    truncates = next(line for line in lines if line.startswith("SFTTrainer at max_length=128: truncates "))
    truncated = int(truncates.split("truncates ")[1].split(" of ")[0])
    saved = run_file(tmp_path / "text")
    assert truncated == saved["tokens"]["trainer_effects"]["sft"]["truncated"] > 0
    kept = f"SFTTrainer kept {saved['rows_trained']} of the 41 rows written"
    assert lines.index(truncates) < lines.index(next(line for line in lines if line.startswith(kept)))
    assert lines[-1].startswith("trained sft")
    done = subprocess.run([sys.executable, "-c", "from trlprep.train.cli import main; main()", *arguments[:-6], "--output-dir",
                           str(tmp_path / "json"), "--max-steps", "2", "--batch-size", "2", "--max-length", "128",
                           "--max-dropped", "1", "--format", "json"], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)  # stdout is the one JSON document: TRL's step logs went to stderr
    assert report["rows_trained"] == saved["rows_trained"] and "'loss'" in done.stderr
    assert lines[0] in done.stderr


def test_flagged_turns_cannot_be_trained_whole(shared_data, tiny_model, tmp_path):
    with pytest.raises(ValueError, match="per-turn training flags .* completion_only_loss=False"):
        train(method="sft", model=str(tiny_model), dataset=shared_data / "v1_sft_demo.jsonl", output_dir=tmp_path,
              overrides=("completion_only_loss=false",), dry_run=True, **FAST)


def test_train_summary_as_markdown(shared_data, tiny_model, tmp_path):
    result = CliRunner().invoke(main, ["--method", "dpo", "--model", str(tiny_model), "--dataset",
                                       str(shared_data / "dpo_en_demo.json"), "--output-dir", str(tmp_path),
                                       "--max-length", "768", "--max-dropped", "1", "--dry-run", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:3] == [
        f"**dpo** on `{tiny_model}`", "", "- data: rows in 38 = kept 38 + rejected 0; rows written 38"]
    assert "- DPOTrainer at max_length=768: truncates " in result.stdout
    assert result.stdout.rstrip().endswith("nothing trained (" + str(tmp_path) + "/trlprep-run.json)")
