"""Every TRL trainer trlprep runs: the method table against the installed TRL, each method's verdicts, its
conversion, and one training step on CPU with the tiny model, on slices of real data shipped in
`tests/data/methods` (sources and licences in its README)."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.methods import METHOD, METHODS, REGISTRY, method_table
from trlprep.inspector.methods_cli import main as methods_main

DATA = Path(__file__).parent / "data" / "methods"
GSM8K = DATA / "gsm8k_test_24.jsonl"
PAIRS = DATA / "dpo_en_demo_16.json"
LABELLED = DATA / "kto_en_demo_16.json"
SHEPHERD = DATA / "math_shepherd_samples_openr.jsonl"
PRM800K = DATA / "prm800k_raw_samples_openr.jsonl"
CHATS = Path(__file__).parent.parent / "examples" / "sharegpt_chat.jsonl"
STEP = {"max_steps": 1, "batch_size": 2}


def step(method: str) -> dict:
    """One optimizer step on two rows; a trainer that generates, 16 tokens a completion (`--max-length` sets
    what it generates)."""
    return {**STEP, "max_length": 16} if METHOD[method].length_field != "max_length" else STEP


def test_methods_json_lists_every_method_with_its_types():
    shown = CliRunner().invoke(methods_main, ["--format", "json"])
    assert shown.exit_code == 0, shown.output
    rows = {row["method"]: row for row in json.loads(shown.output)}
    assert list(rows) == list(METHODS)
    assert rows["rloo"]["takes"] == ["prompt_completion", "prompt_only"] and rows["rloo"]["needs"] == ["reward"]
    assert rows["orpo"]["status"] == "experimental" and rows["orpo"]["takes"] == ["preference"]
    assert rows["distillation"]["status"] == "stable" and rows["distillation"]["needs"] == ["teacher"]
    assert rows["tpo"]["columns"] == ["reference"] and rows["sdft"]["columns"] == ["privileged_context"]
    assert all(row["installed"] for row in rows.values())  # TRL 1.16 has every one of them
    text = CliRunner().invoke(methods_main, []).output
    assert "ORPOTrainer (experimental)" in text and "RLOOTrainer" in text


def test_the_stable_methods_are_the_trainers_the_installed_trl_exports():
    import importlib

    import trl

    exported = {name for name in dir(trl) if name.endswith("Trainer")}
    assert exported == {entry.trainer for entry in REGISTRY if not entry.experimental}
    for entry in REGISTRY:  # every class and config named where the entry says
        module = importlib.import_module(entry.module)
        assert getattr(module, entry.trainer) and getattr(module, entry.config)


def test_gsm8k_gets_rloo_and_distillation_verdicts_and_pairs_get_orpo_and_cpo():
    math = inspect_dataset(GSM8K).methods
    assert math["rloo"]["status"] == math["distillation"]["status"] == "convertible"
    assert math["rloo"]["command"].endswith("--to rloo --output " + str(DATA / "gsm8k_test_24.rloo.jsonl"))
    assert math["orpo"]["status"] == "incompatible" and "chosen/rejected pairs" in math["orpo"]["reason"]
    assert math["sdft"]["status"] == "incompatible" and "`privileged_context` column" in math["sdft"]["reason"]
    pairs = inspect_dataset(PAIRS).methods
    assert pairs["orpo"]["status"] == pairs["cpo"]["status"] == pairs["dpo"]["status"] == "convertible"
    assert pairs["orpo"]["experimental"] and pairs["orpo"]["trainer"] == "ORPOTrainer"
    assert pairs["tpo"]["status"] == "incompatible" and "`reference` column" in pairs["tpo"]["reason"]
    assert pairs["rloo"]["status"] == "convertible"  # prompts of the pairs, as for GRPO
    text = inspect_dataset(PAIRS).to_text()
    assert "orpo*" in text and "ORPOTrainer: as for dpo" in text and "* the trainer is in trl.experimental" in text


def test_gkd_takes_conversations_only(write_jsonl):
    standard = write_jsonl([{"text": "The sum of two and three is five."}] * 3)
    assert inspect_dataset(standard).methods["gkd"]["reason"] == (
        "GKDTrainer reads conversations (`messages`); this is standard data")
    chats = inspect_dataset(CHATS).methods
    assert chats["gkd"]["status"] == "convertible" and chats["gold"]["status"] == "convertible"


def test_tpo_takes_pairs_with_a_reference_and_sdft_prompts_with_a_privileged_context(tmp_path):
    pairs = [json.loads(line) for line in open(convert(PAIRS, to="dpo", output=tmp_path / "p.jsonl").outputs["all"])]
    with_reference = tmp_path / "tpo.jsonl"
    with_reference.write_text("".join(json.dumps({**row, "reference": row["chosen"]}) + "\n" for row in pairs))
    assert inspect_dataset(with_reference).methods["tpo"]["status"] == "ready"
    converted = convert(with_reference, to="tpo", output=tmp_path / "tpo.out.jsonl")
    assert all("reference" in json.loads(line) for line in open(converted.outputs["all"]))


def test_stepwise_data_names_no_removed_trainer_and_becomes_sft_grpo_and_kto_rows(tmp_path):
    report = inspect_dataset(PRM800K)
    assert not any("PRMTrainer" in v["reason"] and "removed" not in v["reason"] for v in report.methods.values())
    assert "no TRL 1.16 trainer takes step labels" in report.methods["dpo"]["reason"]
    sft = convert(PRM800K, to="sft", output=tmp_path / "prm.sft.jsonl")
    rows = [json.loads(line) for line in open(sft.outputs["all"])]
    assert sft.rows_out == report.methods["sft"]["rows_kept"] == 6
    assert rows[0]["completion"].endswith("# Answer\n\n29") and rows[0]["prompt"].startswith("Three pencils")
    grpo = [json.loads(line) for line in open(convert(PRM800K, to="grpo", output=tmp_path / "g.jsonl").outputs["all"])]
    assert grpo[0]["answer"] == "29" and grpo[0]["reference"] == rows[0]["completion"]
    # Math-Shepherd's sample solutions each have a wrong step: no demonstration to imitate, said by TC106.
    shepherd = inspect_dataset(SHEPHERD).methods
    assert shepherd["sft"]["status"] == "incompatible" and shepherd["sft"]["rejected_by_rule"] == {"TC106": 7}


def test_kto_gets_correct_solutions_as_desirable_and_wrong_ones_cut_after_their_first_wrong_step(tmp_path):
    from trlprep.inspector.dialects import classify_row, to_trl

    # Both real files' rows in TRL's own stepwise columns: PRM800K's solutions are correct, Math-Shepherd's not.
    rows = []
    for path in (PRM800K, SHEPHERD):
        for line in open(path):
            value = json.loads(line)
            read = to_trl(value, classify_row(value))
            rows.append({key: read[key] for key in ("prompt", "completions", "labels")})
    stepwise = tmp_path / "steps.jsonl"
    stepwise.write_text("".join(json.dumps(row) + "\n" for row in rows))
    verdict = inspect_dataset(stepwise).methods["kto"]
    result = convert(stepwise, to="kto", output=tmp_path / "steps.kto.jsonl")
    written = [json.loads(line) for line in open(result.outputs["all"])]
    assert verdict["status"] == "convertible" and verdict["rows_kept"] == result.rows_out == 13
    assert [row["label"] for row in written] == [True] * 6 + [False] * 7
    wrong = rows[6]
    first_wrong = wrong["labels"].index(False)
    assert written[6]["completion"] == "\n".join(wrong["completions"][:first_wrong + 1])


def _type_files(folder: Path) -> dict[str, Path]:
    """A file of each TRL type, in TRL's own columns, converted from the real slices."""
    made = {"language_modeling": convert(CHATS, to="sft", style="messages", output=folder / "lm.jsonl"),
            "prompt_completion": convert(GSM8K, to="sft", output=folder / "pc.jsonl"),
            "prompt_only": convert(GSM8K, to="grpo", output=folder / "po.jsonl"),
            "preference": convert(PAIRS, to="dpo", output=folder / "pref.jsonl"),
            "unpaired_preference": convert(LABELLED, to="kto", output=folder / "unpaired.jsonl")}
    return {data_type: Path(result.outputs["all"]) for data_type, result in made.items()}


@pytest.fixture(scope="module")
def type_files(tmp_path_factory) -> dict[str, Path]:
    return _type_files(tmp_path_factory.mktemp("types"))


TAKEN = [(row["method"], data_type) for row in method_table() for data_type in row["takes"]]


@pytest.mark.slow
@pytest.mark.parametrize("method,data_type", TAKEN, ids=[f"{m}-{t}" for m, t in TAKEN])
def test_every_method_trains_a_step_on_each_type_it_takes(method, data_type, type_files, tiny_model, tmp_path):
    """The table holds to the installed trainers: each type it says a method takes as it is, that method's TRL
    trainer takes, for one optimizer step on CPU."""
    from trlprep.train.api import train

    source = type_files[data_type]
    entry = METHOD[method]
    for column in entry.columns:  # TPO's gold completion, SDFT's hint (text): the row's own answer stands for both
        rows = [json.loads(line) for line in open(source)]
        source = tmp_path / f"with-{column}.jsonl"
        source.write_text("".join(json.dumps({**row, column: row.get("chosen") if column == "reference" else
                                              row.get("reference") or row["completion"][-1]["content"]}) + "\n"
                                  for row in rows))
    assert inspect_dataset(source).methods[method]["status"] == "ready"
    needs = {"reward_funcs": ("length_penalty",)} if "reward" in entry.needs else {}
    if "teacher" in entry.needs:
        needs["teacher"] = str(tiny_model)
    result = train(method=method, model=str(tiny_model), dataset=source, output_dir=tmp_path / "run",
                   **step(method), **needs)
    assert result.rows_trained and result.metrics["train_steps_per_second"] > 0


def test_what_a_method_needs_beside_data_is_asked_for_before_any_data_is_read(tiny_model, tmp_path):
    from trlprep.train.cli import main

    runs = {
        ("--method", "distillation"): "distillation learns from a teacher model (--teacher)",
        ("--method", "orpo", "--teacher", "t"): "--teacher is for methods that take a teacher model (distillation, "
                                                "gkd, gold); orpo takes none",
        ("--method", "rloo"): "RLOOTrainer needs at least one --reward-func",
        ("--method", "orpo", "--export-trl-config", str(tmp_path / "o.yaml")):
            "TRL's command line has no `trl orpo`",
    }
    for args, message in runs.items():
        shown = CliRunner().invoke(main, [*args, "--model", str(tiny_model), "--dataset", "missing.jsonl"])
        assert shown.exit_code == 2 and message in shown.output, shown.output


@pytest.mark.slow
def test_rloo_and_distillation_export_configs_trl_runs(tiny_model, tmp_path):
    from trl import DistillationConfig, ModelConfig, RLOOConfig, TrlParser
    from trl.scripts.rloo import RLOOScriptArguments
    from trl.scripts.utils import ScriptArguments

    from trlprep.train.api import train

    rloo = train(method="rloo", model=str(tiny_model), dataset=GSM8K, reward_funcs=("answer_match",),
                 export_trl_config=tmp_path / "rloo.yaml", **step("rloo"))
    assert rloo.exported["command"] == f"trl rloo --config {tmp_path / 'rloo.yaml'}"
    script, config, _ = TrlParser((RLOOScriptArguments, RLOOConfig, ModelConfig)).parse_args_and_config(
        ["--config", str(tmp_path / "rloo.yaml"), "--use_cpu", "true"])
    assert script.reward_funcs == ["trlprep.train.rewards.answer_match"] and config.max_completion_length == 16
    train(method="distillation", model=str(tiny_model), dataset=GSM8K, teacher=str(tiny_model),
          export_trl_config=tmp_path / "d.yaml", **step("distillation"))
    _, config, _ = TrlParser((ScriptArguments, DistillationConfig, ModelConfig)).parse_args_and_config(
        ["--config", str(tmp_path / "d.yaml"), "--use_cpu", "true"])
    assert config.teacher_model_name_or_path == str(tiny_model)


@pytest.mark.slow
def test_a_recipe_takes_sft_then_orpo(tiny_model, tmp_path):
    from trlprep.train.cli import main

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(GSM8K), **STEP}, {"method": "orpo", "dataset": str(PAIRS), **STEP}]}))
    shown = CliRunner().invoke(main, ["--recipe", str(path), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert (tmp_path / "run" / "2-orpo" / "trlprep-run.json").exists()


def test_the_report_schema_names_every_method():
    schema = json.loads((Path(__file__).parent.parent / "schemas" / "report.schema.json").read_text())
    assert schema["properties"]["methods"]["propertyNames"]["enum"] == list(METHODS)


def test_a_vllm_run_is_checked_by_a_dry_run_and_refused_before_the_model_loads_without_vllm(tiny_model, tmp_path):
    from trlprep.errors import UsageError
    from trlprep.train.api import train

    options = {"method": "rloo", "model": str(tiny_model), "dataset": GSM8K, "reward_funcs": ("answer_match",),
               "overrides": ("use_vllm=true",), **step("rloo")}
    checked = train(**options, output_dir=tmp_path / "dry", dry_run=True)
    assert checked.dry_run and checked.config["use_vllm"] is True
    with pytest.raises(UsageError, match="use_vllm=true needs the vllm package"):
        train(**options, output_dir=tmp_path / "run")


STEP_CASES = [(method, batch, accumulation) for method in ("grpo", "rloo", "dpo", "kto", "reward", "orpo", "tpo")
              for batch, accumulation in ((4, 1), (6, 3))]


@pytest.mark.slow
@pytest.mark.parametrize("method,batch,accumulation", STEP_CASES)
def test_the_steps_train_prints_are_those_of_the_trainer(method, batch, accumulation, type_files, tiny_model,
                                                         tmp_path):
    from trlprep.train import config as run_config
    from trlprep.train.api import _build_trainer, prepare_run
    from trlprep.train.options import RunOptions

    source = type_files["prompt_only" if METHOD[method].base == "grpo" else
                        "unpaired_preference" if method == "kto" else "preference"]
    if method == "tpo":
        rows = [json.loads(line) for line in open(source)]
        source = tmp_path / "tpo.jsonl"
        source.write_text("".join(json.dumps({**row, "reference": row["chosen"]}) + "\n" for row in rows))
    said = []
    prepared = prepare_run(RunOptions(
        method=method, model=str(tiny_model), dataset=source, output_dir=tmp_path / "run", batch_size=batch,
        overrides=(f"gradient_accumulation_steps={accumulation}",), announce=said.append,
        reward_funcs=("length_penalty",) if "reward" in METHOD[method].needs else (),
        max_length=16 if METHOD[method].length_field != "max_length" else None))
    trainer = _build_trainer(method, str(tiny_model), prepared.trl_config, prepared.files, prepared.functions, None,
                             None)
    dataloader = trainer.get_train_dataloader()
    _, per_epoch, *_, steps = trainer.set_initial_training_values(trainer.args, dataloader)
    cost = prepared.result.tokens["cost"]
    assert (cost["batches_per_epoch"], cost["steps_per_epoch"], cost["steps"]) == (len(dataloader), per_epoch, steps)
    assert cost.get("rows", cost.get("prompts")) == len(trainer.train_dataset)
    assert any(line.startswith(f"{METHOD[method].trainer} cost: ") for line in said)
    assert run_config.public(prepared.trl_config)["per_device_train_batch_size"] == batch


def test_orpo_refuses_prompts_that_fill_max_length_whose_empty_answers_train_nan_weights(tiny_model, tmp_path):
    from trlprep.errors import DataRefused
    from trlprep.train.api import train

    with pytest.raises(DataRefused, match=r"ORPOTrainer keeps rows whose prompt alone fills max_length=32 \(\d+ of "
                                          r"16\) with an empty answer, whose loss is NaN"):
        train(method="orpo", model=str(tiny_model), dataset=PAIRS, output_dir=tmp_path, max_length=32, dry_run=True)


def test_tpo_references_and_sdft_contexts_are_checked_row_by_row_alike_in_inspect_and_convert(write_jsonl,
                                                                                              tmp_path):
    user, answer = {"role": "user", "content": "What is 1+1?"}, {"role": "assistant", "content": "2"}
    pair = {"chosen": [user, answer], "rejected": [user, {"role": "assistant", "content": "3"}],
            "reference": [user, {"role": "assistant", "content": "1+1 = 2"}]}
    pairs = write_jsonl([pair] * 4 + [{**pair, "reference": None}, {**pair, "reference": "1+1 = 2"}], "tpo.jsonl")
    verdict = inspect_dataset(pairs).methods["tpo"]
    result = convert(pairs, to="tpo", output=tmp_path / "tpo.out.jsonl")
    assert verdict["rejected_by_rule"] == result.rejected_by_rule == {"TC107": 2}
    written = json.loads(open(result.outputs["all"]).readline())
    assert written["prompt"] == [user] and written["reference"] == [{"role": "assistant", "content": "1+1 = 2"}]
    assert inspect_dataset(pairs).methods["dpo"]["rows_rejected"] == 0  # DPO reads no reference
    prompts = write_jsonl([{"prompt": [user], "privileged_context": "1+1 = 2"}] * 3
                          + [{"prompt": [user], "privileged_context": " "}], "sdft.jsonl")
    assert inspect_dataset(prompts).methods["sdft"]["rejected_by_rule"] == {"TC108": 1}
    assert convert(prompts, to="sdft", output=tmp_path / "sdft.out.jsonl").rejected_by_rule == {"TC108": 1}


def test_gkd_conversations_end_at_their_last_assistant_turn(write_jsonl, tmp_path):
    user, answer = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}
    chats = write_jsonl([{"messages": [user, answer, {"role": "user", "content": "Thanks"}]}, {"messages": [user, answer]}])
    result = convert(chats, to="gkd", output=tmp_path / "gkd.jsonl")
    assert [json.loads(line)["messages"][-1] for line in open(result.outputs["all"])] == [answer, answer]


def test_a_missing_teacher_is_a_usage_error_and_online_dpo_refuses_images(tiny_model):
    from trlprep.train.cli import main

    shown = CliRunner().invoke(main, ["--method", "gkd", "--model", str(tiny_model), "--dataset", str(GSM8K),
                                      "--teacher", "/nonexistent-teacher", "--dry-run"])
    assert shown.exit_code == 2 and "--teacher /nonexistent-teacher: no such folder" in shown.output
    images = inspect_dataset(Path(__file__).parent.parent / "examples" / "vision_llamafactory.jsonl").methods
    assert images["online_dpo"]["status"] == "incompatible" and images["rloo"]["status"] != "incompatible"


@pytest.mark.slow
def test_packed_sft_is_not_refused_for_rows_it_would_not_drop(tiny_model, tmp_path):
    from trlprep.train.api import train

    options = {"method": "sft", "model": str(tiny_model), "dataset": GSM8K, "max_length": 128, "dry_run": True}
    with pytest.raises(Exception, match="SFTTrainer would drop"):
        train(**options, output_dir=tmp_path / "plain")
    said = []
    train(**options, output_dir=tmp_path / "packed", overrides=("packing=true",), announce=said.append)
    assert any(line.startswith("SFTTrainer cost: 24 rows packed (bfd)") for line in said)
