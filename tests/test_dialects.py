"""Dialects are registered objects: one can be added as one object, the registry asks them in the documented
priority order, and each reads the example row it carries as its TRL type."""

import json

import pytest

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.dialects import Dialect, Field, Shape, classify_row, dialects, registered, to_trl
from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.messages import assistant_message, user_message


class HumanBot(Dialect):
    """A made-up dialect: one exchange a row, written `{"human": ..., "bot": ...}`."""

    name = "human_bot"
    description = "human/bot exchanges as conversational prompt-completion"
    priority = 2450  # between question_answer and `text`: no earlier dialect claims these columns
    example = {"human": "2+2?", "bot": "4", "source": "made up"}

    def detect(self, row: dict) -> Shape | None:
        if isinstance(row.get("human"), str) and isinstance(row.get("bot"), str):
            return Shape(self.name, "prompt_completion", "conversational", False, (
                Field("human", "text"), Field("bot", "text")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return {"prompt": [user_message(row["human"])], "completion": [assistant_message(row["bot"])],
                **extra_columns(row, shape)}


def test_a_dialect_added_as_one_object_is_detected_read_and_converted(tmp_path):
    rows = [{"human": "2+2?", "bot": "4"}, {"human": "Capital of France?", "bot": "Paris"}]
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert classify_row(rows[0]) is None  # unknown before it is registered

    with registered(HumanBot()):
        report = inspect_dataset(str(source))
        assert report.dialect == "human_bot"
        assert to_trl(rows[0], classify_row(rows[0])) == {
            "prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}]}
        convert(str(source), to="sft", output=tmp_path / "sft.jsonl")
    written = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert written[1]["prompt"] == [{"role": "user", "content": "Capital of France?"}]
    assert written[1]["completion"] == [{"role": "assistant", "content": "Paris"}]
    assert classify_row(rows[0]) is None  # and gone after the block


# The order `inspector.dialects` states, of the dialects shipped with trlprep (a plug-in may come in between).
DOCUMENTED_ORDER = [
    "message_tree", "openai_preference", "math_shepherd", "prm800k", "task_instances", "trl",
    "sharegpt", "message_pair", "ultrafeedback", "transcript", "trl",
    "paired_conversations", "paired_responses", "colossalchat", "ultrafeedback", "trl", "trl", "rated_completions",
    "trl", "bfcl", "xlam", "mt_bench", "turn_pairs", "context_answer",
    "hermes", "anthropic", "swift", "sharegpt", "prompt_messages", "turn_flags", "typed_content", "messages_label", "trl", "messages_column",
    "alpaca", "instruction_response", "graded_answers", "multiple_choice", "question_answer", "transcript", "trl",
]


def test_the_registry_asks_the_dialects_in_the_documented_priority_order():
    assert [d.name for d in dialects()] == DOCUMENTED_ORDER
    priorities = [d.priority for d in dialects()]
    assert priorities == sorted(set(priorities))
    with pytest.raises(ValueError, match="priority 2400"):
        with registered(HumanBot.__new__(type("Clash", (HumanBot,), {"priority": 2400}))):
            pass


@pytest.mark.parametrize("row, dialect, data_type", [
    # `chosen`/`rejected` make a preference pair before `prompt`/`completion` make prompt-completion
    ({"prompt": "2+2?", "completion": "4", "chosen": "4", "rejected": "5"}, "trl", "preference"),
    # a conversation tree's prompt and replies before TRL's `prompt`
    ({"prompt": [{"role": "user", "content": "Hi"}], "replies": [{"text": "Yo", "rank": 0}]}, "message_tree",
     "preference"),
    # a conversation column before alpaca's columns beside it
    ({"messages": [{"role": "user", "content": "Hi"}], "instruction": "Hi", "output": "Yo"}, "prompt_messages",
     "prompt_only"),
    # an hh-rlhf transcript in `text` before `text` as a document
    ({"text": "\n\nHuman: Hi\n\nAssistant: Yo"}, "transcript", "language_modeling"),
    # ShareGPT's `from` turns before a KTO label makes a conversation messages_label
    ({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}], "label": True},
     "sharegpt", "unpaired_preference"),
])
def test_the_first_dialect_in_the_order_claims_a_row_that_fits_several(row, dialect, data_type):
    shape = classify_row(row)
    assert (shape.dialect, shape.type) == (dialect, data_type)


@pytest.mark.parametrize("dialect", dialects(), ids=lambda d: f"{d.priority}-{d.name}")
def test_every_dialect_detects_and_reads_its_example_as_trl(dialect):
    shape = dialect.detect(dialect.example)
    assert shape is not None and shape.dialect == dialect.name
    assert classify_row(dialect.example) == shape  # no dialect before it claims the example
    read = to_trl(dialect.example, shape)
    again = classify_row(read)
    assert (again.dialect, again.type) == ("trl", shape.type)
    assert to_trl(read, again) == read  # TRL's rows read as themselves
