"""Agent data in the five tool-calling dialects (`tests/data/agents/`, rows written from each project's documented
form): `convert` writes every call in the one form chat templates read (arguments as objects, call-only turns with
empty content, results named after their calls, `tools` as functions), which a tool-aware template renders."""

import json
from pathlib import Path

import pytest

from trlprep.converters import convert
from trlprep.errors import DataRefused
from trlprep.inspector import inspect_dataset

AGENTS = Path(__file__).parent / "data" / "agents"
DIALECTS = {"openai_tools.jsonl": "trl", "hermes_function_calling.jsonl": "hermes",
            "xlam_function_calling.jsonl": "xlam", "anthropic_messages.jsonl": "anthropic",
            "swift_agent.jsonl": "swift"}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _messages(row: dict) -> list[dict]:
    return row.get("messages") or row["prompt"] + row["completion"]


@pytest.fixture(scope="module")
def tool_tokenizer(tmp_path_factory):
    """The tiny tokenizer with a template that renders `tools`, each call's arguments `| tojson`, and results by
    name: a string argument comes out JSON-encoded twice."""
    from transformers import AutoTokenizer

    from tests.tiny_model import TOOL_CHAT_TEMPLATE, build_tiny_model

    return AutoTokenizer.from_pretrained(build_tiny_model(tmp_path_factory.mktemp("tools"),
                                                          template=TOOL_CHAT_TEMPLATE))


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, list[dict]]:
    folder = tmp_path_factory.mktemp("agents")
    out = {}
    for name in DIALECTS:
        result = convert(AGENTS / name, to="sft", output=folder / name)
        assert result.rows_out == result.rows_in == len(_rows(AGENTS / name)) and not result.rejected_by_rule
        out[name] = _rows(folder / name)
    return out


@pytest.mark.parametrize("name", DIALECTS)
def test_each_dialect_is_read_from_its_values(name):
    assert inspect_dataset(AGENTS / name).dialect == DIALECTS[name]


@pytest.mark.parametrize("name", DIALECTS)
def test_calls_are_objects_and_tools_are_functions(converted, name):
    for row in converted[name]:
        calls = [c for m in _messages(row) for c in m.get("tool_calls") or ()]
        assert calls, "every row of the files calls a tool"
        for call in calls:
            assert call["type"] == "function" and isinstance(call["function"]["arguments"], dict)
        for message in _messages(row):
            if message.get("tool_calls"):
                assert message["content"] == "" or message["content"].strip()
            assert None not in message.values()
            if message["role"] == "tool":
                assert message["name"] in {c["function"]["name"] for c in calls}
        for tool in row["tools"]:
            assert tool["type"] == "function" and tool["function"]["parameters"]["type"] == "object"


@pytest.mark.parametrize("name", DIALECTS)
def test_a_tool_aware_template_renders_the_calls_as_objects(converted, tool_tokenizer, name):
    for row in converted[name]:
        rendered = tool_tokenizer.apply_chat_template(_messages(row), tools=row["tools"], tokenize=False)
        for message in _messages(row):
            for call in message.get("tool_calls") or ():
                function = call["function"]
                assert f"call {function['name']}({json.dumps(function['arguments'], ensure_ascii=False)})" in rendered
        assert '\\"' not in rendered  # no argument encoded twice
        for tool in row["tools"]:
            assert f"tool {tool['function']['name']}: " in rendered


def test_openai_string_arguments_are_parsed_and_results_matched_by_id(converted):
    """The API's own form: JSON-string arguments, `content: null` beside the calls, results that name their call
    by id (row 2 answers its parallel calls out of order)."""
    report = inspect_dataset(AGENTS / "openai_tools.jsonl")
    assert [(f.rule, f.rows) for f in report.findings] == [("TP605", [1, 2, 3])]
    assert report.methods["sft"]["status"] == "convertible"
    row = converted["openai_tools.jsonl"][1]
    assert row["messages"][1]["tool_calls"][1] == {"id": "call_b2", "type": "function", "function": {
        "name": "get_weather", "arguments": {"city": "Rome"}}}
    assert [(m["tool_call_id"], m["name"]) for m in row["messages"][2:4]] == [("call_b2", "get_weather"),
                                                                              ("call_b1", "get_weather")]


def test_hermes_tools_leave_the_system_prompt(converted):
    """Hermes writes the tools inside `<tools>` in the system prompt, as Python literals in its own rows: they move
    to `tools` (a tool-aware template renders them there) and the rest of the prompt stays."""
    first, second = converted["hermes_function_calling.jsonl"]
    system = first["messages"][0]
    assert system["role"] == "system" and "get_weather" not in system["content"]  # the list, not the prose
    assert system["content"].startswith("You are a function calling AI model.")
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "get_stock_price"]
    assert [c["function"]["name"] for c in second["messages"][2]["tool_calls"]] == ["get_stock_price", "get_weather"]
    assert [(m["role"], m["name"], m["content"]) for m in second["messages"][3:5]] == [
        ("tool", "get_stock_price", '{"price":251.3}'), ("tool", "get_weather", '{"temperature":24}')]
    assert first["category"] == "Weather"  # columns the dialect does not read are kept


def test_anthropic_blocks_become_calls_results_and_reasoning(converted):
    first, second = converted["anthropic_messages.jsonl"]
    assert first["messages"][0] == {"role": "system", "content": "You are a weather assistant."}
    assert "system" not in first  # read into the first message: TRL would drop the column
    assert first["messages"][2] == {"role": "assistant", "content": "Let me check.",
                                    "reasoning_content": "The user wants Paris weather; call get_weather.",
                                    "tool_calls": [{"id": "toolu_01", "type": "function", "function": {
                                        "name": "get_weather", "arguments": {"city": "Paris"}}}]}
    assert first["messages"][3] == {"role": "tool", "content": "18°C, clear", "tool_call_id": "toolu_01",
                                    "name": "get_weather"}
    assert first["tools"][0]["function"]["parameters"]["required"] == ["city"]  # input_schema
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert second["messages"][3]["content"] == "3°C"  # a result's text blocks


def test_swift_tool_call_turns_join_one_assistant_turn(converted):
    first, second = converted["swift_agent.jsonl"]
    assert [m["role"] for m in first["messages"]] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [c["function"]["arguments"]["city"] for c in first["messages"][1]["tool_calls"]] == ["Beijing",
                                                                                              "Shanghai"]
    assert second["messages"][2]["content"] == "I'll look up the price."  # the text before the call stays its content
    assert second["messages"][2]["tool_calls"][0]["function"]["name"] == "get_stock_price"


def test_xlam_notation_becomes_json_schema(converted, tmp_path):
    """SFT learns the calls as the completion; GRPO prompts with the query and keeps the calls as the reference."""
    first, second = converted["xlam_function_calling.jsonl"]
    assert first["prompt"] == [{"role": "user", "content": "What's the weather in Paris, in celsius, for the next 3 "
                                                           "days?"}]
    assert first["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city."},
        "days": {"type": "integer", "description": "Days ahead.", "default": 1},
        "unit": {"type": "string", "description": "celsius or fahrenheit.", "default": "celsius"},
        "hourly": {"type": "array", "items": {"type": "integer"}, "description": "Hours to include."}},
        "required": ["city"]}
    assert [c["function"]["arguments"] for c in second["completion"][0]["tool_calls"]] == [{"a": 3, "b": 4.5},
                                                                                          {"n": 7}]
    result = convert(AGENTS / "xlam_function_calling.jsonl", to="grpo", output=tmp_path / "grpo.jsonl")
    grpo = _rows(Path(result.output))[1]
    assert grpo["prompt"] == second["prompt"] and grpo["tools"] == second["tools"]
    assert [c["function"]["name"] for c in json.loads(grpo["reference"])] == ["add", "is_prime"]


def test_a_call_that_is_not_json_is_refused_not_guessed(write_jsonl, tmp_path):
    """A Hermes call and an ms-swift call whose bodies are not JSON, and an xLAM row whose answers are not: each
    row is rejected with its reason, none written as text."""
    hermes = {"conversations": [{"from": "human", "value": "TSLA?"},
                                {"from": "gpt", "value": "<tool_call>\nget_stock_price(TSLA)\n</tool_call>"}]}
    swift = {"messages": [{"role": "user", "content": "TSLA?"}, {"role": "tool_call", "content": "price TSLA"}]}
    xlam = {"query": "TSLA?", "answers": "get_stock_price(TSLA)", "tools": "[]"}
    for row, reason in ((hermes, "messages[1]: a call with no name, arguments 'get_stock_price(TSLA)'"),
                        (swift, "messages[1]: a call with no name, arguments 'price TSLA'"),
                        (xlam, "answers is not a list of {name, arguments} calls, nor the JSON of one")):
        output = tmp_path / f"{len(reason)}.jsonl"
        with pytest.raises(DataRefused, match="every row was rejected, nothing written"):
            convert(write_jsonl([row]), to="sft", output=output)
        assert not output.exists()
        [rejected] = _rows(output.with_suffix(".rejects.jsonl"))
        assert rejected["reason"] == reason


@pytest.fixture(scope="module")
def tool_model(tmp_path_factory):
    from tests.tiny_model import TOOL_CHAT_TEMPLATE, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tool-model"), template=TOOL_CHAT_TEMPLATE)


@pytest.mark.slow
@pytest.mark.parametrize("name", DIALECTS)
def test_train_takes_each_dialect_through_trls_sft_trainer(name, tool_model, tmp_path):
    """`train` converts the file and runs TRL's SFTTrainer on a tiny model whose template renders the tools: a step
    on every dialect, every row accounted for."""
    from trlprep.train.api import train

    result = train(method="sft", model=str(tool_model), dataset=AGENTS / name, output_dir=tmp_path, max_steps=1,
                   batch_size=2, max_length=512, max_dropped=0.0)
    assert result.metrics["train_loss"] == result.metrics["train_loss"]  # a number, not NaN
    ledger = json.loads((tmp_path / "trlprep-run.json").read_text())["ledger"]
    assert ledger["rows_in"] == ledger["rows_kept"] == len(_rows(AGENTS / name))


def _call_row(arguments, *, call_id="c1", name="get_weather", tools=True, **result):
    """An OpenAI row: a call, its result (with `result`'s keys), an answer."""
    row = {"messages": [{"role": "user", "content": "Weather?"},
                        {"role": "assistant", "content": None, "tool_calls": [
                            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
                        {"role": "tool", "tool_call_id": call_id, "content": "18C", **result},
                        {"role": "assistant", "content": "18C."}]}
    return {**row, "tools": [WEATHER]} if tools else row


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "tz": {"type": "string"}}}}}
HARD_ROWS = [  # (row, the rule that rejects it, or None when it is written)
    (_call_row('{"city": "Paris"}', tools=False), None),
    (_call_row("[1, 2]", tools=False), "TP602"),  # the JSON of a list: no arguments object
    (_call_row('"{\\"city\\": \\"Paris\\"}"', tools=False), "TP602"),  # encoded twice
    (_call_row({"city": "Paris"}, tool_call_id="zzz"), "TP606"),  # answers no call
    (_call_row({"city": "Paris"}, name="get_weather") | {"messages": _call_row({"city": "Paris"})["messages"][:2] + [
        {"role": "tool", "tool_call_id": "c1", "name": "get_time", "content": "18C"},
        {"role": "assistant", "content": "18C."}]}, "TP606"),  # named after another function than its call's
    ({"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [
        '{"name": "get_weather"}']}]}, "TP602"),  # a call that is a string
    ({**_call_row({}), "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "TP604"),  # server tool
    ({**_call_row({"city": "Paris"}), "tools": []}, "TP601"),  # a call beside a list of no tools
    ({"conversations": [{"from": "human", "value": "Weather?"}, {"from": "gpt", "value": (
        "<tool_call>\n{'name': 'get_weather', 'arguments': {'tags': {'a', 'b'}}}\n</tool_call>")}]},
     "TP602"),  # a Python set: no JSON form
    ({"conversations": [{"from": "human", "value": "Weather?"}, {"from": "gpt", "value": (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}')}]}, "TP602"),  # never closed
    ({"conversations": [{"from": "system", "value": "<tools>[{'name': 'get_weather'</tools>"},
                        {"from": "human", "value": "Weather?"}, {"from": "gpt", "value": (
                            '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>')}]},
     "TP604"),  # a list of tools that does not parse
]


@pytest.mark.parametrize("row, rule", HARD_ROWS, ids=range(1, len(HARD_ROWS) + 1))
def test_a_row_is_written_in_the_one_form_or_refused_with_its_reason(row, rule, write_jsonl, tmp_path):
    output = tmp_path / "out.jsonl"
    if rule is None:
        (written,) = _rows(Path(convert(write_jsonl([row]), to="sft", output=output).output))
        assert written["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
        return
    with pytest.raises(DataRefused, match="every row was rejected"):
        convert(write_jsonl([row]), to="sft", output=output)
    assert [r["rule"] for r in _rows(output.with_suffix(".rejects.jsonl"))] == [rule]


def test_parquet_nulls_are_not_arguments(tmp_path):
    """Parquet holds every key any row's arguments, schemas and messages have, the others null: the calls are
    written with their own arguments, the schemas without null keywords, plain turns without null tool keys."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [_call_row({"city": "Paris"}, call_id="c1"), _call_row({"tz": "UTC"}, call_id="c2"),
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
             "tools": [WEATHER]}]
    path = tmp_path / "calls.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    written = _rows(Path(convert(path, to="sft", output=tmp_path / "out.jsonl").output))
    assert [row["messages"][1]["tool_calls"][0]["function"]["arguments"] for row in written[:2]] == [
        {"city": "Paris"}, {"tz": "UTC"}]
    assert written[0]["tools"] == [WEATHER]
    assert written[2]["messages"] == rows[2]["messages"]


@pytest.mark.parametrize("row", [
    {"conversations": [{"from": "human", "value": "Weather?"}, {"from": "gpt", "value": (
        '<tool_call>{"name": "get_weather", "parameters": {"city": "Paris"}}</tool_call>')}]},
    {"query": "Weather?", "answers": '[{"name": "get_weather", "parameters": {"city": "Paris"}}]',
     "tools": '[{"name": "get_weather", "parameters": {"city": {"type": "str"}}}]'}],
    ids=["hermes", "xlam"])
def test_calls_may_name_their_arguments_parameters(row, tmp_path, write_jsonl):
    """Llama 3.1's JSON calls, and data that follows them, write `parameters`: they are the arguments."""
    (written,) = _rows(Path(convert(write_jsonl([row]), to="sft", output=tmp_path / "out.jsonl").output))
    (last,) = [m for m in written.get("messages") or written["completion"] if m.get("tool_calls")]
    assert last["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}


def test_anthropic_blocks_it_cannot_read_are_refused_and_errors_said(tmp_path, write_jsonl):
    use = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "map", "input": {}}]}
    rows = [{"messages": [{"role": "user", "content": "Map?"}, use, {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "map:"}, {
                    "type": "image", "source": {"type": "url", "url": "https://example.com/m.png"}}]}]},
                          {"role": "assistant", "content": "Here."}]},
            {"messages": [{"role": "user", "content": "Search"}, {"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"query": "x"}}]}]},
            {"messages": [{"role": "user", "content": "Map?"}, use, {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "is_error": True, "content": "timeout"}]},
                          {"role": "assistant", "content": "It failed."}]}]
    output = tmp_path / "out.jsonl"
    (written,) = _rows(Path(convert(write_jsonl(rows), to="sft", output=output).output))
    assert written["messages"][2] == {"role": "tool", "content": "Error: timeout", "tool_call_id": "t1",
                                      "name": "map"}
    assert [r["reason"] for r in _rows(output.with_suffix(".rejects.jsonl"))] == [
        "messages[2].content[0]: a tool result holding 'image' blocks: a tool message holds text",
        "messages[1].content[0]: a 'server_tool_use' block, which no chat template reads"]


def test_train_refuses_a_template_that_leaves_the_calls_out(tiny_model, tmp_path):
    """The tiny model's own template renders each message's content alone: every call and tool schema would go
    untrained, and `train` says so before loading the model."""
    from trlprep.train.api import train

    with pytest.raises(DataRefused, match=r"^TP522: row 1: the chat template leaves out"):
        train(method="sft", model=str(tiny_model), dataset=AGENTS / "hermes_function_calling.jsonl",
              output_dir=tmp_path, max_steps=1, batch_size=2, max_length=512)
    assert not (tmp_path / "model.safetensors").exists()


def test_a_sharegpt_function_call_may_hold_parallel_calls(tmp_path, write_jsonl):
    row = {"conversations": [{"from": "human", "value": "Weather in Oslo and Rome?"}, {"from": "function_call", "value": (
        '[{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_weather", "arguments": {"city": "Rome"}}]')},
        {"from": "observation", "value": "3C"}, {"from": "observation", "value": "24C"},
        {"from": "gpt", "value": "3C and 24C."}]}
    (written,) = _rows(Path(convert(write_jsonl([row]), to="sft", output=tmp_path / "out.jsonl").output))
    assert [c["function"]["arguments"]["city"] for c in written["messages"][1]["tool_calls"]] == ["Oslo", "Rome"]
    assert [m["name"] for m in written["messages"][2:4]] == ["get_weather", "get_weather"]
