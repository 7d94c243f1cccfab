"""`inspect --model` and `convert --model` on reasoning traces, against tiny tokenizers built in-process whose chat
templates render `reasoning_content` in `<think>` tags, ignore it, or keep only the last exchange's trace."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from trlprep.converters import convert
from trlprep.converters.cli import main as convert_main
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main as inspect_main
from tests.tiny_model import CHAT_TEMPLATE, build_tiny_models

# Renders `reasoning_content` in `<think>` tags before the answer, in every assistant turn.
READS = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' and message.get('reasoning_content') is string %}"
    "<think>\n{{ message['reasoning_content'] }}\n</think>\n\n{% endif %}"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# As Qwen3's: the trace from `reasoning_content` or split off the content at `</think>`, rendered only in the
# assistant turns after the last user turn.
LAST_ONLY = (
    "{%- set ns = namespace(last_user=-1) %}{%- for m in messages %}{%- if m['role'] == 'user' %}"
    "{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}"
    "{% set content = message['content'] %}{% set reasoning = message.get('reasoning_content') %}"
    "{% if reasoning is not string and '</think>' in content %}"
    "{% set reasoning = content.split('</think>')[0].split('<think>')[-1] %}"
    "{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{% if loop.index0 > ns.last_user and reasoning is string %}<think>\n{{ reasoning }}\n</think>\n\n{% endif %}"
    "{{ content }}{% else %}{{ message['content'] }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TRIGGERED = {"TP512", "TP513"}  # tests/test_tokens.py holds every TP5xx rule to a test


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _answer(content: str, **fields) -> dict:
    return {"role": "assistant", "content": content, **fields}


FIELD_ROWS = [{"messages": [_user("what is two and three"), _answer("five", reasoning_content="two and three")]},
              {"messages": [_user("what is one and one"), _answer("two")]},
              {"messages": [_user("what is two and two"), _answer("four", reasoning_content="two and two")]}]
INLINE_ROWS = [{"messages": [_user("what is two and three"), _answer("<think>two and three</think>\n\nfive")]}]
MULTI_TURN_ROWS = [
    {"messages": [_user("what is one"), _answer("one", reasoning_content="count")]},
    {"messages": [_user("what is one"), _answer("one", reasoning_content="count"), _user("and two"),
                  _answer("<think>count on</think>two"), _user("and three"), _answer("three", reasoning_content="on")]},
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("reasoning-templates")
    built = build_tiny_models(root, {"reads": READS, "ignores": CHAT_TEMPLATE, "last_only": LAST_ONLY})
    return {name: str(folder) for name, folder in built.items()}


def _write(tmp_path, rows, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _findings(report) -> dict[str, list[int]]:
    return {f.rule: f.rows for f in report.findings if f.rule in TRIGGERED}


def test_a_template_that_ignores_reasoning_content_is_flagged_on_the_rows_that_hold_it(models, tmp_path):
    report = inspect_dataset(_write(tmp_path, FIELD_ROWS), model=models["ignores"])
    assert _findings(report) == {"TP512": [1, 3]}
    finding = next(f for f in report.findings if f.rule == "TP512")
    assert finding.examples[0]["detail"] == "messages[1]: `reasoning_content` is not rendered, so the trace is not trained"
    assert report.tokens["template"]["reasoning"]["reads_reasoning_content"] is False


def test_a_template_that_renders_reasoning_content_is_not_flagged(models, tmp_path):
    report = inspect_dataset(_write(tmp_path, FIELD_ROWS + MULTI_TURN_ROWS), model=models["reads"])
    assert _findings(report) == {}
    assert report.tokens["template"]["reasoning"] == {
        "reads_reasoning_content": True, "strips_earlier_traces": {"field": False, "inline": False}}


def test_inline_traces_are_rendered_by_a_template_that_ignores_the_field(models, tmp_path):
    assert _findings(inspect_dataset(_write(tmp_path, INLINE_ROWS), model=models["ignores"])) == {}


def test_a_template_that_keeps_only_the_last_trace_names_the_earlier_turns(models, tmp_path):
    report = inspect_dataset(_write(tmp_path, MULTI_TURN_ROWS), model=models["last_only"])
    assert _findings(report) == {"TP513": [2]}
    finding = next(f for f in report.findings if f.rule == "TP513")
    assert finding.examples[0]["detail"] == ("messages[1], messages[3]: the template drops the trace of this earlier "
                                             "turn, so it trains the answer alone")
    assert report.tokens["template"]["reasoning"] == {
        "reads_reasoning_content": True, "strips_earlier_traces": {"field": True, "inline": True}}


def test_the_command_reports_the_template_and_the_rows(models, tmp_path):
    path = _write(tmp_path, FIELD_ROWS)
    result = CliRunner().invoke(inspect_main, ["--dataset", str(path), "--model", models["ignores"], "--format", "json"])
    report = json.loads(result.output)
    assert {f["rule"]: f["rows"] for f in report["findings"] if f["rule"] in TRIGGERED} == {"TP512": [1, 3]}


WORDS = {"inline": "written inline as <think>…</think>", "field": "moved into `reasoning_content`"}


@pytest.mark.parametrize("model, rows, form, changed, written", [
    ("ignores", FIELD_ROWS, "inline", 2, _answer("<think>\ntwo and three\n</think>\n\nfive")),
    ("reads", INLINE_ROWS, "field", 1, _answer("five", reasoning_content="two and three")),
])
def test_convert_with_a_model_writes_the_form_its_template_reads(models, model, rows, form, changed, written,
                                                                 tmp_path):
    output = tmp_path / "out.jsonl"
    result = convert(_write(tmp_path, rows), to="sft", output=output, style="messages", model=models[model])
    assert json.loads(output.read_text().splitlines()[0])["messages"][1] == written
    assert f"reasoning traces {WORDS[form]} ({models[model]}'s chat template reads them so)" in result.plan
    assert result.repaired == {f"reasoning traces {WORDS[form]} (--reasoning {form})": changed}


def test_convert_reasoning_overrides_the_models_form(models, tmp_path):
    output = tmp_path / "out.jsonl"
    result = convert(_write(tmp_path, FIELD_ROWS), to="sft", output=output, style="messages",
                     model=models["ignores"], reasoning="drop")
    assert [json.loads(line)["messages"][1] for line in output.read_text().splitlines()] == [
        _answer("five"), _answer("two"), _answer("four")]
    assert result.repaired == {"reasoning traces dropped (--reasoning drop)": 2}
    assert "reasoning traces dropped" in result.plan


def test_convert_names_the_model_in_its_summary(models, tmp_path):
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(convert_main, ["--dataset", str(_write(tmp_path, INLINE_ROWS)), "--to", "sft",
                                               "--style", "messages", "--output", str(output),
                                               "--model", models["reads"]])
    assert result.exit_code == 0, result.output
    assert "repaired      1  reasoning traces moved into `reasoning_content` (--reasoning field)" in result.output
