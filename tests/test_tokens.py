"""`inspect --model`: the data against real tiny tokenizers and chat templates, built in-process."""

import json

import jsonschema
import pytest
from click.testing import CliRunner

from trlprep.inspector import SourceError, inspect_dataset
from trlprep.inspector.cli import main
from tests.conftest import REPO
from tests.tiny_model import CHAT_TEMPLATE, build_tiny_model, build_tiny_models

NO_MARKERS = CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
EOS_OUTSIDE = CHAT_TEMPLATE.replace("<|im_end|>{% endgeneration %}", "{% endgeneration %}<|im_end|>")
# Keeps <think> only in the last assistant message, as reasoning templates do: a prompt rendered alone keeps
# an earlier answer's thinking that the full conversation drops, so the prompt is not a token prefix.
NOT_PREFIX = (
    "{%- set ns = namespace(last=-1) %}{%- for m in messages %}{%- if m['role'] == 'assistant' %}"
    "{%- set ns.last = loop.index0 %}{%- endif %}{%- endfor %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' and loop.index0 != ns.last %}{{ message['content'].split('</think>')[-1] }}"
    "{% else %}{{ message['content'] }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SYSTEM_DROPPING = ("{% for message in messages %}{% if message['role'] != 'system' %}<|im_start|>{{ message['role'] }}\n"
                   "{{ message['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
                   "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
U = {"role": "user", "content": "what is the sum of two and three"}
A = {"role": "assistant", "content": "the answer is five"}
CHATS = [{"messages": [U, A]}, {"messages": [{"role": "system", "content": "be brief"}, U, A]}]
SCHEMA = json.loads((REPO / "schemas" / "report.schema.json").read_text())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("templates")
    return build_tiny_models(root, {
        "markers": CHAT_TEMPLATE, "no_markers": NO_MARKERS, "eos_outside": EOS_OUTSIDE, "not_prefix": NOT_PREFIX,
        "no_template": None, "drops_system": SYSTEM_DROPPING})


# Each test below triggers the rule(s) named here, tests/test_tokens_vision.py those of image data and
# tests/test_tokens_tools.py those of tool calls, tests/test_tokens_reasoning.py those of reasoning traces; a new
# TP5xx rule needs its test.
TRIGGERED = {"TP501", "TP502", "TP503", "TP504", "TP505", "TP506", "TP507", "TP508", "TP509"}


def test_every_tokenizer_rule_is_triggered_here():
    from trlprep.inspector.rules import RULES
    from tests.test_tokens_reasoning import TRIGGERED as ON_REASONING
    from tests.test_tokens_tools import TRIGGERED as ON_TOOL_CALLS
    from tests.test_tokens_vision import TRIGGERED as ON_IMAGE_DATA

    assert TRIGGERED | ON_IMAGE_DATA | ON_TOOL_CALLS | ON_REASONING == {
        rule for rule in RULES if rule.startswith("TP5")}


def rules(report):
    return {f.rule for f in report.findings}


def test_token_lengths_and_what_each_trainer_does(shared_data, models):
    report = inspect_dataset(shared_data / "gsm8k_test.jsonl", model=str(models["markers"]), max_length=512)
    tokens = report.tokens
    assert tokens["rows"] == 30 and tokens["max_length"] == 512
    assert tokens["p50"] <= tokens["p95"] <= tokens["p99"] <= tokens["max"]
    assert tokens["recommended_max_length"] >= tokens["p99"] and tokens["recommended_max_length"] % 64 == 0
    over = [f for f in report.findings if f.rule == "TP509"]
    assert over and over[0].count == tokens["over_max_length"] > 0
    effects = tokens["trainer_effects"]
    assert effects["sft"]["truncated"] == tokens["over_max_length"]
    assert effects["sft"]["dropped"] == effects["dpo"]["dropped"] < effects["sft"]["truncated"]
    assert effects["reward"]["dropped"] == tokens["over_max_length"]
    assert tokens["prompt"]["max"] < tokens["total"]["max"]
    jsonschema.validate(report.to_dict(), SCHEMA)


def test_prompts_that_fill_max_length_are_dropped_by_dpo_and_sft(shared_data, models):
    tokens = inspect_dataset(shared_data / "gsm8k_test.jsonl", model=str(models["markers"]), max_length=40).tokens
    prompt_fills = tokens["trainer_effects"]["dpo"]["dropped"]
    assert prompt_fills > 0 and tokens["trainer_effects"]["sft"]["dropped"] == prompt_fills


def test_template_with_markers_is_clean(models):
    report = inspect_dataset(CHATS, model=str(models["markers"]))
    assert rules(report) == set()
    assert report.tokens["template"] == {"has_chat_template": True, "generation_markers": True, "system_role": "kept"}


def test_no_generation_markers(models):
    assert "TP504" in rules(inspect_dataset(CHATS, model=str(models["no_markers"])))


def test_no_chat_template_is_an_error_for_conversational_data(models):
    report = inspect_dataset(CHATS, model=str(models["no_template"]))
    assert "TP501" in rules(report) and report.exit_code == 1
    standard = inspect_dataset([{"text": "plain text to learn"}], model=str(models["no_template"]))
    assert "TP501" not in rules(standard) and standard.tokens["rows"] == 1


def test_template_that_is_not_prefix_preserving(models):
    rows = [{"prompt": [U, {"role": "assistant", "content": "<think>two plus three</think>five"}, U],
             "completion": [{"role": "assistant", "content": "<think>again</think>five"}]}]
    finding = [f for f in inspect_dataset(rows, model=str(models["not_prefix"])).findings if f.rule == "TP505"]
    assert finding and finding[0].rows == [1]
    assert "TP505" not in rules(inspect_dataset(rows, model=str(models["markers"])))


def test_end_of_turn_outside_the_trained_span(models):
    assert "TP506" in rules(inspect_dataset(CHATS, model=str(models["eos_outside"])))
    assert "TP506" not in rules(inspect_dataset(CHATS, model=str(models["markers"])))


def test_template_that_drops_the_system_role(models):
    report = inspect_dataset(CHATS, model=str(models["drops_system"]))
    assert "TP503" in rules(report) and report.tokens["template"]["system_role"] == "ignored"


def test_template_errors_are_findings_with_the_templates_message(models, tmp_path):
    folder = build_tiny_model(tmp_path / "strict", template=(
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}{{ m['content'] }}{% endfor %}"))
    report = inspect_dataset(CHATS, model=str(folder))
    (finding,) = [f for f in report.findings if f.rule == "TP502"]
    assert finding.rows == [2] and "System role not supported" in finding.examples[0]["detail"]
    assert report.exit_code == 1


def test_special_token_strings_and_double_bos(models, tmp_path):
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    folder = build_tiny_model(tmp_path / "bos")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.bos_token = "<|endoftext|>"
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", tokenizer.convert_tokens_to_ids("<|endoftext|>"))])
    tokenizer.save_pretrained(folder)
    report = inspect_dataset([{"text": "<|endoftext|>the answer is five"}, {"text": "say <|im_start|> here"}],
                             model=str(folder))
    found = {f.rule: f.rows for f in report.findings}
    assert found["TP507"] == [1] and found["TP508"] == [1, 2]


def test_show_masks_marks_trained_tokens(models):
    rows = [{"prompt": [U], "completion": [A]}]
    report = inspect_dataset(rows, model=str(models["markers"]), show_masks=1)
    (preview,) = report.mask_previews
    assert preview["row"] == 1
    assert "[[the answer is five<|im_end|>" in preview["text"]
    assert preview["text"].startswith("<|im_start|>user\nwhat is the sum")


def test_cli_show_masks_uses_brackets_when_piped(shared_data, models):
    result = CliRunner().invoke(main, ["-d", str(shared_data / "gsm8k_test.jsonl"), "--model",
                                       str(models["markers"]), "--show-masks", "2", "--sample", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.count("(trained tokens marked):") == 2 and "[[" in result.output
    assert "\x1b[" not in result.output
    assert "tokens per row: p50" in result.output


def test_model_options_need_a_model_and_a_reachable_hub(monkeypatch):
    from huggingface_hub import constants

    assert CliRunner().invoke(main, ["-d", "x.jsonl", "--show-masks", "2"]).exit_code == 2
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(SourceError, match="--model Qwen/Qwen2.5-0.5B: no such folder, and cannot reach the Hugging Face Hub"):
        inspect_dataset([{"text": "hello"}], model="Qwen/Qwen2.5-0.5B")


def test_rows_of_another_shape_are_not_blamed_on_the_template(models):
    rows = CHATS * 3 + [{"prompt": "what is two and three", "completion": "five"}, {"messages": []}]
    report = inspect_dataset(rows, model=str(models["markers"]))
    assert "TP502" not in rules(report)
    assert {"TP404", "TP111"} <= rules(report)
    assert report.tokens["rows"] == 6
