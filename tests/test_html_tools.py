"""The HTML page of agent and reasoning data: each tool call a block with its function's name and its arguments as a
pretty-printed JSON object, tool results labelled with the call they answer, reasoning folded under its turn; the
data's text never runs as HTML."""

import json
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main
from tests.test_html import open_in_chromium

pytest.importorskip("altair", reason="the html extra (uv sync --extra html) is not installed")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "the weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ATTACK = "<script>document.title = 'ran'</script>"
ROWS = [
    # Row 1, OpenAI's form: the arguments a JSON string, holding an argument the schema lacks (TP602 draws it).
    {"messages": [{"role": "user", "content": "What is the weather in Paris?"},
                  {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "id": "call_1", "function": {
                      "name": "get_weather", "arguments": json.dumps({"city": "Paris", "note": ATTACK})}}]},
                  {"role": "tool", "content": "18 degrees", "tool_call_id": "call_1", "name": "get_weather"},
                  {"role": "assistant", "content": "It is 18 degrees in Paris."}], "tools": [WEATHER]},
    # Row 2: arguments that are not JSON (TP602).
    {"messages": [{"role": "user", "content": "And in Rome?"},
                  {"role": "assistant", "content": "", "tool_calls": [
                      {"type": "function", "function": {"name": "get_weather", "arguments": "city=Rome"}}]},
                  {"role": "tool", "content": "21 degrees", "name": "get_weather"},
                  {"role": "assistant", "content": "It is 21 degrees in Rome."}], "tools": [WEATHER]},
    # Rows 3 and 4 end with an unanswered question (TP205): a trace in `reasoning_content`, and one inline.
    {"messages": [{"role": "user", "content": "What is 2 + 2?"},
                  {"role": "assistant", "reasoning_content": f"Two and two make four. {ATTACK}", "content": "It is 4."},
                  {"role": "user", "content": "And 3 + 3?"}]},
    {"messages": [{"role": "user", "content": "What is 3 + 3?"},
                  {"role": "assistant", "content": "<think>Three and three make six.</think>\nIt is 6."},
                  {"role": "user", "content": "Thanks"}]},
]


class Elements(HTMLParser):
    """Each element of a CSS class on the page: its attributes and the text a reader sees in it (entities
    decoded). The blocks looked for hold no void elements (<img>, <br>), so start and end tags pair up."""

    def __init__(self, page: str, css_class: str):
        super().__init__(convert_charrefs=True)
        self.css_class, self.open_tags, self.found = css_class, [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if self.open_tags:
            self.open_tags.append(tag)
        elif self.css_class in (dict(attrs).get("class") or "").split():
            self.open_tags = [tag]
            self.found.append({"attrs": dict(attrs), "text": ""})

    def handle_endtag(self, tag):
        if self.open_tags:
            self.open_tags.pop()

    def handle_data(self, data):
        if self.open_tags:
            self.found[-1]["text"] += data


def texts(page: str, css_class: str) -> list[str]:
    return [element["text"] for element in Elements(page, css_class).found]


@pytest.fixture
def page_from_api(write_jsonl):
    return inspect_dataset(write_jsonl(ROWS), profile=True).to_html()


def test_each_call_is_a_block_with_its_name_and_its_arguments_as_an_object(page_from_api):
    calls = texts(page_from_api, "call")  # a row is drawn under each finding that names it: TP602, TP605, ...
    first, second = dict.fromkeys(calls)
    # The name line, then the JSON string parsed and shown as the object it holds, one argument a line.
    assert first == f'call get_weather · call_1{{\n  "city": "Paris",\n  "note": "{ATTACK}"\n}}'
    assert second == "call get_weather arguments not JSONcity=Rome"  # as it is, said to be no JSON


def test_a_tool_result_names_the_call_it_answers(page_from_api):
    assert "tool get_weather · call_1" in texts(page_from_api, "tool")[0]
    assert list(dict.fromkeys(texts(page_from_api, "ref"))) == ["get_weather · call_1", "get_weather"]


def test_reasoning_is_folded_under_its_turn_and_the_answer_is_the_turns_text(page_from_api):
    folded = Elements(page_from_api, "reasoning").found
    assert [element["text"] for element in folded] == [
        f"reasoning · {len('Two and two make four. ' + ATTACK)} characters" + f"Two and two make four. {ATTACK}",
        "reasoning · 25 charactersThree and three make six."]
    assert all("open" not in element["attrs"] for element in folded)  # collapsed until clicked
    turns = texts(page_from_api, "assistant")
    assert any(turn.endswith("Three and three make six.It is 6.") for turn in turns)
    assert not any("<think>" in turn for turn in turns)


def test_a_trace_holding_the_value_a_finding_quotes_is_open_with_the_value_marked(write_jsonl):
    rows = [{"messages": [{"role": "user", "content": "hi"},
                          {"role": "assistant", "content": "<think>they wrote <|im_start|> here</think>Hello."}]}]
    page = inspect_dataset(write_jsonl(rows), profile=True).to_html()  # TP207 quotes '<|im_start|>'
    (folded,) = Elements(page, "reasoning").found
    assert "open" in folded["attrs"] and "<mark>&lt;|im_start|&gt;</mark>" in page


def test_the_datas_markup_is_text_on_the_page(page_from_api):
    escaped = "&lt;script&gt;document.title = &#x27;ran&#x27;&lt;/script&gt;"
    # In row 1's arguments and row 3's trace, however many findings draw them.
    calls, traces = texts(page_from_api, "call"), [e["text"] for e in Elements(page_from_api, "reasoning").found]
    assert any(ATTACK in text for text in calls) and any(ATTACK in text for text in traces)
    assert escaped in page_from_api and ATTACK not in page_from_api


def test_the_cli_page_draws_the_same_and_no_data_runs_in_a_browser(write_jsonl, tmp_path, page_from_api):
    page = tmp_path / "out.html"
    done = CliRunner().invoke(main, ["--dataset", str(write_jsonl(ROWS)), "--html", str(page)])
    assert done.exit_code == 1, done.output  # TP602
    written = page.read_text()
    assert texts(written, "call") == texts(page_from_api, "call")
    assert texts(written, "reasoning") == texts(page_from_api, "reasoning")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    seen = open_in_chromium(page, tmp_path / "out.png")
    assert seen["errors"] == [] and seen["requests"] == []
    with sync_api.sync_playwright() as playwright:
        from tests.test_html import CHROMIUM

        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        view = browser.new_page()
        view.goto(page.as_uri())
        view.locator("details:has(details.reasoning) > summary").first.click()  # the finding drawing the row
        folded, trace = view.locator("details.reasoning summary").first, view.locator("details.reasoning pre").first
        assert view.title() != "ran" and folded.is_visible() and not trace.is_visible()
        folded.click()
        assert trace.is_visible() and ATTACK in trace.inner_text()
        browser.close()
