"""`train --recipe`: stages one after another, every stage's data checked before the first trains."""

import json

import pytest
import yaml
from click.testing import CliRunner

from trlprep.errors import DataRefused, UsageError
from tests.conftest import in_fresh_python
from tests.tiny_model import CHAT_TEMPLATE
from trlprep.train.cli import main
from trlprep.train.recipe import load_recipe, run_recipe, weights_digest

pytestmark = pytest.mark.slow  # the slow tier (--slow): recipes train stage after stage, and export GGUF

FAST = {"max_steps": 2, "batch_size": 2, "max_length": 64, "max_dropped": 1.0}


def test_sft_mixture_then_dpo_then_gguf_runs_end_to_end(shared_data, tiny_model, tmp_path):
    """The chain the project was made for: SFT on a mixture, DPO from the SFT model, a q8_0 GGUF of the result that
    reads back and whose logits match the trained model's."""
    gguf = pytest.importorskip("gguf", reason="the gguf extra (uv sync --extra gguf) is not installed")
    alpaca, v1 = str(shared_data / "alpaca_en_demo.json"), str(shared_data / "v1_sft_demo.jsonl")
    recipe = {"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "datasets": [{"path": alpaca, "weight": 0.7}, {"path": v1, "weight": 0.3}], **FAST},
        {"method": "dpo", "dataset": str(shared_data / "dpo_en_demo.json"), "set": {"beta": 0.05}, **FAST},
        # The tiny tokenizer was trained here, so llama.cpp cannot recognise it: the stage names its pre-tokenizer.
        {"export": "gguf", "outtype": "q8_0", "pre_tokenizer": "qwen2"}]}
    said = []
    result = run_recipe(recipe, announce=said.append)
    sft, dpo, export = result.stages
    assert sft["model"] == str(tiny_model) and dpo["model"] == str(tmp_path / "run" / "1-sft")
    assert sft["started_from_weights"] == weights_digest(tiny_model)
    assert dpo["started_from_weights"] == sft["saved_weights"] != sft["started_from_weights"]
    assert dpo["saved_weights"] != dpo["started_from_weights"]  # stage 2 trained
    # 41 alpaca rows and 32 v1 rows at 0.7/0.3: the largest mixture that repeats no row has 41 + 18.
    assert sft["rows_mixed"] == {alpaca: 41, v1: 18} and sft["rows_out"] == 59
    # Each stage's ledger and what its trainer will do at max_length, all before the first stage trains.
    assert said[0] == ("data: rows in 73 = kept 73 + rejected 0; rows written 73; "
                       f"mixed 59 = 41 of 41 from {alpaca} + 18 of 32 from {v1} (14 left out by the weights)")
    assert said[1].startswith("SFTTrainer at max_length=64") and said[2].startswith("SFTTrainer cost: ")
    assert said[3] == f"stage 1 (sft, {alpaca} + {v1}): checked, 59 rows ready"
    assert said[4].startswith("data: rows in 38 = kept 38") and said[5].startswith("DPOTrainer at max_length=64")
    assert said[6].startswith("DPOTrainer cost: ")
    assert said[8] == f"stage 1 (sft): training from {tiny_model}"
    stage_one = json.loads((tmp_path / "run" / "1-sft" / "trlprep-run.json").read_text())
    assert [(s["source"], s["rows_out"], s["rows_mixed"]) for s in stage_one["ledger"]["sources"]] == [
        (alpaca, 41, 41), (v1, 32, 18)]
    stage_two = json.loads((tmp_path / "run" / "2-dpo" / "trlprep-run.json").read_text())
    assert stage_two["model"] == str(tmp_path / "run" / "1-sft") and stage_two["config"]["beta"] == 0.05
    # The GGUF of stage 2's model, checked by this test too, not only by the recipe.
    assert export["model"] == str(tmp_path / "run" / "2-dpo") and export["outtype"] == "q8_0"
    reader = gguf.GGUFReader(export["path"])
    assert reader.get_field("general.architecture").contents() == "qwen2" and len(reader.tensors) == 26
    assert reader.get_field("tokenizer.chat_template").contents() == CHAT_TEMPLATE
    assert len(export["checks"]) == 4 and all(check["same_tokens"] for check in export["checks"])
    assert all(check["logit_difference"] <= 0.05 for check in export["checks"])
    summary = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert [s.get("method", "gguf") for s in summary["stages"]] == ["sft", "dpo", "gguf"]
    assert all(s["finished"] for s in summary["stages"])


def test_unusable_stage_two_data_is_refused_before_stage_one_trains(shared_data, tiny_model, tmp_path):
    """c4's plain texts cannot become DPO pairs: the recipe stops naming stage 2, and stage 1 saved no model."""
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), **FAST},
        {"method": "dpo", "dataset": str(shared_data / "c4_demo.jsonl"), **FAST}]}))
    code = ("import sys\nfrom trlprep.train.recipe import DataRefused, run_recipe\n"
            "try:\n    run_recipe(sys.argv[1])\nexcept DataRefused as refused:\n    print('refused:', refused)")
    done, loaded = in_fresh_python(code, str(path))
    assert done.stdout.startswith("refused: recipe stage 2 (dpo): ") and "c4_demo.jsonl: not usable for dpo" in done.stdout
    assert loaded == []  # no model, no torch, no trl: refused in about a second (1.05 s from the command line here)
    assert not (tmp_path / "run").exists()
    refused = CliRunner().invoke(main, ["--recipe", str(path)])
    assert refused.exit_code == 1 and "recipe stage 2 (dpo)" in refused.output


def test_dry_run_checks_every_stage_and_trains_none(shared_data, tiny_model, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), **FAST},
        {"method": "kto", "dataset": str(shared_data / "kto_en_demo.json"), **FAST}]}))
    shown = CliRunner().invoke(main, ["--recipe", str(path), "--dry-run", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    plan = json.loads(shown.stdout)
    assert plan["dry_run"] and [p["ledger"]["rows_out"] for p in plan["planned"]] == [41, 37]
    assert plan["stages"][1]["model"] == str(tmp_path / "run" / "1-sft")
    assert not (tmp_path / "run" / "1-sft" / "model.safetensors").exists()
    text = CliRunner().invoke(main, ["--recipe", str(path), "--dry-run"]).output
    assert "recipe: 2 stage(s)" in text and "2. kto on" in text


@pytest.mark.parametrize("recipe,message", [
    ({"model": "m", "stages": [{"method": "sft", "dataset": "d", "max_step": 5}]},
     "recipe stage 1 (sft): unknown key 'max_step'; did you mean max_steps?"),
    ({"model": "m", "stage": []}, "recipe: unknown key 'stage'; did you mean stages?"),
    ({"model": "m", "stages": [{"method": "ppo", "dataset": "d"}]}, "recipe stage 1: `method` must be one of"),
    ({"model": "m", "stages": [{"method": "sft"}]},
     "recipe stage 1 (sft): give `dataset` (one source) or `datasets` (a mixture), one of the two"),
    ({"model": "m", "stages": [{"method": "sft", "datasets": [{"path": "a", "weight": 0.7}, {"path": "b"}]}]},
     "recipe stage 1 (sft): datasets: give every source a weight, or none (all of each): b has none"),
    ({"model": "m", "stages": [{"method": "sft", "datasets": [{"path": "a", "wieght": 0.7}]}]},
     "recipe stage 1 (sft): datasets: unknown key 'wieght' in a; did you mean weight?"),
    ({"model": "m", "stages": [{"method": "sft", "dataset": "d", "lora": True, "merge": False},
                               {"method": "dpo", "dataset": "d"}]},
     "recipe stage 1 (sft): the stages after it start from a full model, so its adapter is merged"),
    ({"model": "m", "stages": [{"method": "sft", "dataset": "d", "merge": True}]},
     "recipe stage 1 (sft): `merge` is for a LoRA stage's adapter"),
    ({"model": "m", "stages": [{"method": "reward", "dataset": "d"}, {"method": "dpo", "dataset": "d"}]},
     "recipe stage 1 (reward): a reward stage trains a scorer"),
    ({"model": "m", "stages": [{"export": "gguf"}, {"method": "dpo", "dataset": "d"}]},
     "recipe stage 1 (gguf export): export stages come after every training stage"),
    ({"model": "m", "stages": [{"method": "sft", "dataset": "d"}, {"export": "onnx"}]},
     "recipe stage 2 (gguf export): `export` can be gguf (got 'onnx')"),
    ({"model": "m", "stages": [{"method": "sft", "dataset": "d"}, {"export": "gguf", "outtype": "q4"}]},
     "recipe stage 2 (gguf export): outtype 'q4': choose f32, f16, bf16, q8_0 (written here) or a llama-quantize"),
    ({"model": "m", "stages": [{"method": "sft", "dataset": "d"}, {"export": "gguf", "out_type": "q8_0"}]},
     "recipe stage 2 (gguf export): unknown key 'out_type'; did you mean outtype?"),
])
def test_recipe_mistakes_are_named(recipe, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        load_recipe(recipe)


def test_a_trl_field_typo_in_a_stage_is_answered_before_any_data_is_read(tiny_model, tmp_path):
    recipe = {"model": str(tiny_model), "stages": [
        {"method": "dpo", "dataset": str(tmp_path / "nowhere.jsonl"), "set": {"betta": 0.1}}]}
    with pytest.raises(UsageError, match=r"recipe stage 1 \(dpo\): --set: 'betta' is not a field of DPOConfig; "
                                         r"did you mean beta"):
        run_recipe(recipe)


def test_a_recipe_refuses_every_option_it_would_ignore(tmp_path):
    given = CliRunner().invoke(main, ["--recipe", "r.yaml", "--output-dir", str(tmp_path / "out"), "--set",
                                      "warmup_ratio=0.1", "--lora", "--max-length", "64", "--max-dropped", "0.5",
                                      "--max-steps", "1", "--dry-run"])
    assert given.exit_code == 2
    assert ("drop --output-dir, --max-steps, --max-length, --set, --lora, --max-dropped and set them there as keys"
            in given.output)
    assert not (tmp_path / "out").exists()


def test_recipe_and_single_run_options_do_not_mix(tmp_path):
    mixed = CliRunner().invoke(main, ["--recipe", "r.yaml", "--method", "sft"])
    assert mixed.exit_code == 2 and "drop --method and set them there as keys" in mixed.output
    neither = CliRunner().invoke(main, ["--method", "sft"])
    assert neither.exit_code == 2 and "Missing option --model, --dataset (or give a --recipe)" in neither.output


def test_a_lora_stage_is_merged_before_the_export_and_a_k_quant_gets_its_llama_quantize_command(
        shared_data, tiny_model, tmp_path):
    pytest.importorskip("gguf", reason="the gguf extra (uv sync --extra gguf) is not installed")
    recipe = {"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), "lora": True, "lora_r": 4, **FAST},
        {"export": "gguf", "outtype": "Q4_K_M", "pre_tokenizer": "qwen2"}]}
    result = run_recipe(recipe)
    sft, export = result.stages
    merged = tmp_path / "run" / "1-sft" / "merged"
    assert sft["adapter_of"] == str(tiny_model) and sft["merged"] == str(merged)
    assert (tmp_path / "run" / "1-sft" / "adapter_model.safetensors").is_file()
    assert sft["merged_weights"] == weights_digest(merged) != weights_digest(tiny_model)
    # The k-quant needs llama.cpp's C++ tool: the f16 file is written and verified, and the command printed.
    assert export["model"] == str(merged) and export["written_type"] == "f16"
    command = f"llama-quantize {tmp_path / 'run' / '2-gguf' / 'model-f16.gguf'} " \
              f"{tmp_path / 'run' / '2-gguf' / 'model-Q4_K_M.gguf'} Q4_K_M"
    assert export["quantize_command"] == command and command in result.to_text()
    assert all(check["logit_difference"] <= 5e-3 for check in export["checks"])


def test_a_tokenizer_llama_cpp_does_not_know_is_refused_before_stage_one_trains(shared_data, tiny_model, tmp_path):
    pytest.importorskip("gguf", reason="the gguf extra (uv sync --extra gguf) is not installed")
    recipe = {"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), **FAST},
        {"export": "gguf", "outtype": "q8_0"}]}
    with pytest.raises(UsageError, match=r"recipe stage 2 \(gguf export\): .*llama.cpp's converter refuses its "
                                         r"tokenizer \(BPE pre-tokenizer was not recognized.*pre_tokenizer: qwen2"):
        run_recipe(recipe)
    assert not (tmp_path / "run" / "1-sft" / "model.safetensors").exists()


def test_a_gguf_that_does_not_match_its_model_is_rejected(tiny_model, tmp_path):
    """The check can fail: a GGUF compared with another model of the same shape and tokenizer."""
    pytest.importorskip("gguf", reason="the gguf extra (uv sync --extra gguf) is not installed")
    from tests.tiny_model import build_tiny_model
    from trlprep.train.export import ExportRejected, export_gguf, plan_export, verify_gguf

    exported = export_gguf(tiny_model, tmp_path / "gguf", plan_export("f16", "qwen2"))
    other = build_tiny_model(tmp_path / "other")  # fresh random weights
    with pytest.raises(ExportRejected, match=r"model-f16.gguf does not match .*other: next-token logits after "
                                             r"'The capital of France is' differ by"):
        verify_gguf(exported.path, other, "f16")


def test_resume_continues_at_the_first_stage_not_finished(shared_data, tiny_model, tmp_path):
    recipe = {"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), **FAST},
        {"method": "kto", "dataset": str(shared_data / "kto_en_demo.json"), **FAST}]}
    first = run_recipe(recipe)
    said = []
    again = run_recipe(recipe, resume=True, announce=said.append)
    assert said == ["resume: stage(s) 1, 2 finished; continuing at stage 3"] and again.stages == first.stages
    # Stage 2's weights are gone (a run stopped in it): only stage 2 trains again, from stage 1's saved model.
    (tmp_path / "run" / "2-kto" / "model.safetensors").unlink()
    said.clear()
    resumed = run_recipe(recipe, resume=True, announce=said.append)
    assert said[0] == "resume: stage(s) 1 finished; continuing at stage 2"
    assert f"stage 2 (kto): training from {tmp_path / 'run' / '1-sft'}" in said
    assert not any(line.startswith("stage 1 (sft)") for line in said)
    assert resumed.stages[0] == first.stages[0]
    assert resumed.stages[1]["started_from_weights"] == first.stages[0]["saved_weights"]
    assert resumed.stages[1]["saved_weights"] == weights_digest(tmp_path / "run" / "2-kto")
    with pytest.raises(UsageError, match="--resume: .*recipe.json does not exist"):
        run_recipe({**recipe, "output_dir": str(tmp_path / "elsewhere")}, resume=True)


def test_a_chat_template_changed_by_a_stage_is_reported_and_the_next_stage_checked_against_it(
        shared_data, tiny_model, tmp_path):
    template = tmp_path / "template.jinja"
    template.write_text(CHAT_TEMPLATE.replace("<|im_start|>{{ message['role'] }}\n", "<|im_start|>{{ message['role'] }}:\n"))
    recipe = {"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"),
         "set": {"chat_template_path": str(template)}, **FAST},
        {"method": "dpo", "dataset": str(shared_data / "dpo_en_demo.json"), **FAST}]}
    said = []
    sft, dpo = run_recipe(recipe, announce=said.append).stages
    assert sft["chat_template_changed"] and not dpo["chat_template_changed"]
    at = said.index("stage 1 saved another chat template: stages 2 are checked again against its tokenizer")
    assert said[at + 1].startswith("data: rows in 38") and said[at + 4].startswith("stage 2 (dpo, ")
    saved = json.loads((tmp_path / "run" / "2-dpo" / "tokenizer_config.json").read_text()).get("chat_template")
    saved = saved or (tmp_path / "run" / "2-dpo" / "chat_template.jinja").read_text()
    assert saved == template.read_text()


def test_mixture_sources_that_convert_to_different_shapes_are_refused(shared_data, tiny_model, tmp_path):
    recipe = {"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "datasets": [str(shared_data / "alpaca_en_demo.json"),
                                       str(shared_data / "glaive_toolcall_en_demo.json")], **FAST}]}
    with pytest.raises(DataRefused, match=r"recipe stage 1 \(sft\): datasets: the sources convert to different sft "
                                          r"shapes \(.*alpaca_en_demo.json: completion, prompt; "
                                          r".*glaive_toolcall_en_demo.json: messages, tools\)"):
        run_recipe(recipe)


def test_an_exported_mixture_is_mixed_by_trl_as_the_local_run_mixes_it(shared_data, tiny_model, tmp_path):
    """`--export-trl-config` writes TRL's own `datasets:` list; TRL's get_dataset gives back the local mixture."""
    from trl.scripts.utils import DatasetMixtureConfig, get_dataset

    from trlprep.train.api import prepare_data, train

    sources = [{"path": str(shared_data / "alpaca_en_demo.json"), "weight": 0.7},
               {"path": str(shared_data / "v1_sft_demo.jsonl"), "weight": 0.3}]
    train(method="sft", model=str(tiny_model), dataset=sources, export_trl_config=tmp_path / "run.yaml",
          max_length=64, max_dropped=1.0)
    config = yaml.safe_load((tmp_path / "run.yaml").read_text())
    assert [source.get("fraction") for source in config["datasets"]] == [0.7, 0.3] and "dataset_name" not in config
    by_trl = get_dataset(DatasetMixtureConfig(datasets=config["datasets"]))["train"]
    _, ledger, _, files = prepare_data("sft", sources, output_dir=tmp_path / "local")
    local = [json.loads(line) for line in files["train"].read_text().splitlines()]
    assert len(by_trl) == ledger["rows_mixed"] == 59 and by_trl.to_list() == local


def test_hf_jobs_pushes_the_checked_data_and_runs_the_recipe_on_it(shared_data, tiny_model, tmp_path, monkeypatch):
    """The dry run describes the push and the job; the recipe the job runs, on the files it pushes, trains here."""
    monkeypatch.setenv("HF_TOKEN", "hf_do_not_leak_me")
    alpaca, v1 = str(shared_data / "alpaca_en_demo.json"), str(shared_data / "v1_sft_demo.jsonl")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({
        "model": str(tiny_model), "output_dir": str(tmp_path / "run"),
        "hf_jobs": {"data_repo": "me/assistant-data", "output_bucket": "me/runs", "flavor": "l4x1"},
        "stages": [{"method": "sft", "datasets": [{"path": alpaca, "weight": 0.7}, {"path": v1, "weight": 0.3}],
                    **FAST},
                   {"method": "dpo", "dataset": str(shared_data / "dpo_en_demo.json"), "test_size": 0.1, **FAST}]}))
    shown = CliRunner().invoke(main, ["--recipe", str(path), "--launcher", "hf-jobs", "--dry-run", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert "hf_do_not_leak_me" not in shown.output
    job = json.loads(shown.stdout)["job"]
    spec = job["spec"]
    assert spec["script"] == "trlprep" and spec["script_args"] == ["train", "--recipe", "/data/recipe.yaml"]
    assert spec["dependencies"] == [f"trlprep[train,gguf] @ file:///data/{job['wheel']}"]
    assert spec["secrets"] == ["HF_TOKEN"] and spec["flavor"] == "l4x1"
    assert spec["volumes"] == [{"type": "dataset", "source": "me/assistant-data", "mount_path": "/data"},
                               {"type": "bucket", "source": "me/runs", "mount_path": "/outputs"}]
    assert sorted(job["uploads"]) == ["stage-1/train.jsonl", "stage-2/test.jsonl", "stage-2/train.jsonl"]
    assert job["recipe"]["output_dir"] == "/outputs/run"
    assert job["recipe"]["stages"][0]["dataset"] == "/data/stage-1/train.jsonl"
    assert job["recipe"]["stages"][1]["eval_dataset"] == "/data/stage-2/test.jsonl"
    text = CliRunner().invoke(main, ["--recipe", str(path), "--launcher", "hf-jobs", "--dry-run"]).output
    assert "push to me/assistant-data (private dataset)" in text and "dry run: nothing pushed" in text
    # The job's recipe, with /data as the pushed files and /outputs as a folder here: it loads and trains.
    pushed = tmp_path / "pushed"
    for target, source in job["uploads"].items():
        (pushed / target).parent.mkdir(parents=True, exist_ok=True)
        (pushed / target).write_bytes(open(source, "rb").read())
    as_run = json.loads(json.dumps(job["recipe"]).replace('"/data/', f'"{pushed}/')
                        .replace('"/outputs/', f'"{tmp_path / "outputs"}/'))
    ran = run_recipe(as_run)
    assert ran.stages[0]["rows_out"] == 59 and ran.stages[1]["model"] == str(tmp_path / "outputs" / "run" / "1-sft")


def test_hf_jobs_refuses_an_offline_hub_before_pushing_anything(shared_data, tiny_model, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from trlprep.inspector import SourceError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    recipe = {"model": str(tiny_model), "output_dir": str(tmp_path / "run"),
              "hf_jobs": {"data_repo": "me/data", "output_bucket": "me/runs"},
              "stages": [{"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), **FAST}]}
    with pytest.raises(SourceError, match="--launcher hf-jobs: cannot reach the Hugging Face Hub.*nothing was submitted"):
        run_recipe(recipe, launcher="hf-jobs")
    with pytest.raises(UsageError, match="needs hf_jobs.output_bucket"):
        run_recipe({**recipe, "hf_jobs": {"data_repo": "me/data"}}, launcher="hf-jobs")


def test_a_recipe_exported_for_trls_cli_chains_its_stages_and_keeps_the_mixture(shared_data, tiny_model, tmp_path):
    alpaca, v1 = str(shared_data / "alpaca_en_demo.json"), str(shared_data / "v1_sft_demo.jsonl")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "datasets": [{"path": alpaca, "weight": 0.7}, {"path": v1, "weight": 0.3}], **FAST},
        {"method": "dpo", "dataset": str(shared_data / "dpo_en_demo.json"), **FAST}]}))
    done = CliRunner().invoke(main, ["--recipe", str(path), "--export-trl-config", str(tmp_path / "trl")])
    assert done.exit_code == 0, done.output
    sft = yaml.safe_load((tmp_path / "trl" / "1-sft.yaml").read_text())
    dpo = yaml.safe_load((tmp_path / "trl" / "2-dpo.yaml").read_text())
    assert [source["fraction"] for source in sft["datasets"]] == [0.7, 0.3]
    assert sft["model_name_or_path"] == str(tiny_model) and sft["output_dir"] == str(tmp_path / "run" / "1-sft")
    assert dpo["model_name_or_path"] == str(tmp_path / "run" / "1-sft")  # stage 2 from stage 1's output
    assert f"1. trl sft --config {tmp_path / 'trl' / '1-sft.yaml'}" in done.stdout
    assert not (tmp_path / "run" / "1-sft" / "model.safetensors").exists()
    with pytest.raises(UsageError, match=r"recipe stage 1 \(sft\): TRL's CLI does not merge a LoRA adapter"):
        run_recipe({"model": str(tiny_model), "stages": [{"method": "sft", "dataset": alpaca, "lora": True},
                                                          {"method": "dpo", "dataset": alpaca}]},
                   export_trl_config=tmp_path / "trl2")
