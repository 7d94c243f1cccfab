"""`inspect --model` on tool-call data: the first tool-call row rendered through the chat template, as TRL renders
it, against real tiny tokenizers whose templates are written here (tool-aware, double-encoding, raising, none)."""

import json

import pytest
from click.testing import CliRunner

from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main
from tests.tiny_model import CHAT_TEMPLATE, TOOL_CHAT_TEMPLATE, build_tiny_model, build_tiny_models

# Each test below triggers the rule(s) named here (tests/test_tokens.py requires every TP5xx rule to be).
TRIGGERED = {"TP520", "TP521", "TP522"}
# Renders a string's arguments as they are and an object's with `tojson`, as Qwen3's template does.
STRING_AWARE = TOOL_CHAT_TEMPLATE.replace(
    "{{ call['function']['arguments'] | tojson }}",
    "{% if call['function']['arguments'] is string %}{{ call['function']['arguments'] }}"
    "{% else %}{{ call['function']['arguments'] | tojson }}{% endif %}")
# Refuses object arguments, as DeepSeek-V3's original template does (it concatenates them to a string).
STRINGS_ONLY = TOOL_CHAT_TEMPLATE.replace(
    "{{ call['function']['arguments'] | tojson }}",
    "{% if call['function']['arguments'] is not string %}"
    "{{ raise_exception('tool call arguments must be a string') }}{% endif %}{{ call['function']['arguments'] }}")
# Walks the arguments as a mapping: a JSON string has no .items().
MAPPING_ONLY = TOOL_CHAT_TEMPLATE.replace(
    "{{ call['function']['arguments'] | tojson }}",
    "{% for key, value in call['function']['arguments'].items() %}{{ key }}={{ value }} {% endfor %}")
# Reads tools as bare function schemas: a tool in function form has no `name` of its own to upper-case.
BARE_TOOLS_ONLY = TOOL_CHAT_TEMPLATE.replace("tool {{ tool['function']['name'] }}", "tool {{ tool['name'].upper() }}")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "the weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city"]}}}
PLAIN_CHAT = {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}


def tool_chat(arguments) -> dict:
    return {"messages": [
        {"role": "user", "content": "what is the weather in paris"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": arguments}}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1", "name": "get_weather"},
        {"role": "assistant", "content": "it is sunny in paris"}], "tools": [WEATHER]}


OBJECT_ARGUMENTS = {"city": "Paris", "unit": "celsius"}
# The OpenAI API's form: compact, keys in another order than the schema's; the value is what is compared.
STRING_ARGUMENTS = '{"unit":"celsius","city":"Paris"}'


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tool-templates")
    return build_tiny_models(root, {
        "tool_aware": TOOL_CHAT_TEMPLATE, "string_aware": STRING_AWARE, "strings_only": STRINGS_ONLY,
        "mapping_only": MAPPING_ONLY, "bare_tools_only": BARE_TOOLS_ONLY, "no_tools": CHAT_TEMPLATE})


@pytest.fixture
def tool_file(write_jsonl):
    """A chat row, then the tool-call row (line 2), then another chat row."""
    return lambda arguments: write_jsonl([PLAIN_CHAT, tool_chat(arguments), PLAIN_CHAT])


def tool_findings(report) -> dict:
    return {f.rule: f for f in report.findings if f.rule in TRIGGERED}


def test_a_tool_aware_template_given_object_arguments_is_clean(models, tool_file):
    report = inspect_dataset(tool_file(OBJECT_ARGUMENTS), model=str(models["tool_aware"]))
    assert tool_findings(report) == {}
    assert report.tokens["template"]["tool_row"] == {"row": 2, "rendered": "ok", "tools": "rendered",
                                                     "calls": "rendered"}


def test_string_arguments_through_tojson_are_double_encoded(models, tool_file):
    report = inspect_dataset(tool_file(STRING_ARGUMENTS), model=str(models["tool_aware"]))
    (finding,) = tool_findings(report).values()
    assert finding.rule == "TP520" and finding.rows == [2] and report.exit_code == 1
    assert finding.examples[0]["detail"] == ('the chat template renders the arguments of the call to get_weather '
                                             'as a JSON string: '
                                             '"{\\"unit\\":\\"celsius\\",\\"city\\":\\"Paris\\"}"')
    assert report.tokens["template"]["tool_row"]["calls"] == "double-encoded"


def test_string_arguments_rendered_as_they_are_are_not_double_encoded(models, tool_file):
    report = inspect_dataset(tool_file(STRING_ARGUMENTS), model=str(models["string_aware"]))
    assert tool_findings(report) == {}


@pytest.mark.parametrize("template, arguments, part, message", [
    ("strings_only", OBJECT_ARGUMENTS, "tool calls", "tool call arguments must be a string"),
    ("mapping_only", STRING_ARGUMENTS, "tool calls", "'str object' has no attribute 'items'"),
    ("bare_tools_only", OBJECT_ARGUMENTS, "`tools`", "'dict object' has no attribute 'name'")])
def test_a_template_that_raises_on_the_calls_names_the_row_and_its_error(models, tool_file, template, arguments,
                                                                         part, message):
    report = inspect_dataset(tool_file(arguments), model=str(models[template]))
    (finding,) = tool_findings(report).values()
    assert finding.rule == "TP521" and finding.rows == [2]
    detail = finding.examples[0]["detail"]
    assert detail.startswith(f"the chat template fails on this row's {part} (it renders the row without them): ")
    assert message in detail and "\n" not in detail
    # As written, the same row is one the trainer stops at; the other rows render. `convert` writes arguments as
    # objects (TP605), which a template that takes only mappings renders: as converted, the row renders.
    assert [f.rows for f in report.findings if f.rule == "TP502"] == ([[2]] if arguments == OBJECT_ARGUMENTS else [])


def test_a_template_that_fails_on_every_row_is_not_blamed_on_the_calls(tmp_path, tool_file):
    folder = build_tiny_model(tmp_path / "raises", template="{{ raise_exception('this template renders nothing') }}")
    report = inspect_dataset(tool_file(OBJECT_ARGUMENTS), model=str(folder))
    assert tool_findings(report) == {} and report.tokens["template"]["tool_row"] == {"row": 2, "rendered": "error"}
    assert [f.rows for f in report.findings if f.rule == "TP502"] == [[1, 2, 3]]


def test_a_template_that_insists_on_tools_is_probed_without_failing(tmp_path, tool_file):
    template = "{% if not tools %}{{ raise_exception('this template needs tools') }}{% endif %}" + TOOL_CHAT_TEMPLATE
    folder = build_tiny_model(tmp_path / "needs_tools", template=template)
    report = inspect_dataset(tool_file(OBJECT_ARGUMENTS), model=str(folder))
    assert tool_findings(report) == {}
    assert report.tokens["template"]["tool_row"] == {"row": 2, "rendered": "ok", "tools": "rendered",
                                                     "calls": "rendered"}


def test_the_same_template_given_what_it_takes_is_clean(models, tool_file):
    assert tool_findings(inspect_dataset(tool_file(STRING_ARGUMENTS), model=str(models["strings_only"]))) == {}
    assert tool_findings(inspect_dataset(tool_file(OBJECT_ARGUMENTS), model=str(models["mapping_only"]))) == {}


def test_a_template_without_tool_support_leaves_out_the_calls_and_tools(models, tool_file):
    report = inspect_dataset(tool_file(OBJECT_ARGUMENTS), model=str(models["no_tools"]))
    (finding,) = tool_findings(report).values()
    assert finding.rule == "TP522" and finding.rows == [2] and report.exit_code == 1
    assert finding.examples[0]["detail"] == ("the chat template leaves out `tools` and the tool calls: the row "
                                             "renders the same without them")
    assert report.tokens["template"]["tool_row"] == {"row": 2, "rendered": "ok", "tools": "ignored",
                                                     "calls": "ignored"}


def test_a_prompt_with_tools_and_no_call_is_rendered_for_its_tools(models, write_jsonl):
    """GRPO prompts declare tools and hold no call yet: the template must show the model its tools."""
    rows = [{"prompt": [{"role": "user", "content": "what is the weather in paris"}], "tools": [WEATHER]}]
    assert set(tool_findings(inspect_dataset(write_jsonl(rows), model=str(models["no_tools"])))) == {"TP522"}
    report = inspect_dataset(write_jsonl(rows), model=str(models["tool_aware"]))
    assert tool_findings(report) == {}
    assert report.tokens["template"]["tool_row"] == {"row": 1, "rendered": "ok", "tools": "rendered"}


def trl_template(name: str) -> str:
    """A chat template TRL ships (`trl/chat_templates/`), read without importing trl (and torch)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("trl")
    if spec is None:
        pytest.skip("trl is not installed (uv sync --extra train)")
    return (Path(spec.submodule_search_locations[0]) / "chat_templates" / f"{name}.jinja").read_text()


@pytest.mark.parametrize("template, arguments, found", [
    ("qwen2_5", STRING_ARGUMENTS, {"TP520"}),  # `arguments | tojson` quotes a string
    ("qwen2_5", OBJECT_ARGUMENTS, set()),
    ("llama3_1", STRING_ARGUMENTS, {"TP520"}),
    ("gptoss", STRING_ARGUMENTS, {"TP520"}),
    ("qwen3", STRING_ARGUMENTS, set()),  # renders a string as it is
    ("deepseekv3", OBJECT_ARGUMENTS, {"TP521"}),  # concatenates the arguments to a string
    ("gemma3", OBJECT_ARGUMENTS, {"TP521"}),  # roles must alternate: a tool turn breaks it
    ("phi3", OBJECT_ARGUMENTS, {"TP522"})])  # renders role and content only
def test_the_templates_trl_ships(tmp_path, tool_file, template, arguments, found):
    folder = build_tiny_model(tmp_path / template, template=trl_template(template))
    assert set(tool_findings(inspect_dataset(tool_file(arguments), model=str(folder)))) == found


def test_data_without_tool_calls_is_not_probed(models):
    report = inspect_dataset([PLAIN_CHAT], model=str(models["no_tools"]))
    assert tool_findings(report) == {} and "tool_row" not in report.tokens["template"]


def test_the_cli_reports_the_double_encoded_call_in_json(models, tool_file):
    done = CliRunner().invoke(main, ["--dataset", str(tool_file(STRING_ARGUMENTS)), "--model",
                                     str(models["tool_aware"]), "--format", "json"])
    assert done.exit_code == 1, done.output
    report = json.loads(done.stdout)
    (finding,) = [f for f in report["findings"] if f["rule"] in TRIGGERED]
    assert (finding["rule"], finding["name"], finding["rows"]) == ("TP520", "tool-call-double-encoded", [2])
    assert report["tokens"]["template"]["tool_row"]["calls"] == "double-encoded"
