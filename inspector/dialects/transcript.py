"""Anthropic's hh-rlhf transcripts: `Human:` / `Assistant:` turns written in one text, a document (`text`) or
the two sides of a preference pair (`chosen` and `rejected`, the prompt implicit in their shared start)."""

from __future__ import annotations

import re
from typing import Any

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.pairs import has_pair

TRANSCRIPT_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")


def looks_like_transcript(text: Any) -> bool:
    """True for `Human:` / `Assistant:` transcripts (the hh-rlhf style).

    >>> looks_like_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello")
    True
    >>> looks_like_transcript("A human and an assistant walk into a bar.")
    False
    """
    if not isinstance(text, str):
        return False
    speakers = {match.group(1) for match in TRANSCRIPT_TURN.finditer(text)}
    return speakers == {"Human", "Assistant"}


def transcript_to_messages(text: str) -> list[dict]:
    """A `Human:` / `Assistant:` transcript as messages.

    >>> transcript_to_messages("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    parts = TRANSCRIPT_TURN.split(text)
    # split() alternates text, speaker, text...; text before the first marker is a preamble.
    messages = []
    if parts[0].strip():
        messages.append({"role": "system", "content": parts[0].strip()})
    for speaker, content in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if speaker == "Human" else "assistant", "content": content.strip()})
    return messages


class Transcript(Dialect):
    """Read as messages: a preamble before the first turn is a system message."""

    name = "transcript"
    description = "`Human:`/`Assistant:` transcripts split into messages"

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        extras = extra_columns(row, shape)
        if shape.type == "language_modeling":
            return {"messages": transcript_to_messages(row["text"]), **extras}
        return {"chosen": transcript_to_messages(row["chosen"]), "rejected": transcript_to_messages(row["rejected"]),
                **extras}


class TranscriptPair(Transcript):
    """Among the `chosen`/`rejected` dialects, before TRL's, which would read the transcripts as plain text."""

    priority = 630
    example = {"chosen": "\n\nHuman: 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"}

    def detect(self, row: dict) -> Shape | None:
        if has_pair(row) and "prompt" not in row and looks_like_transcript(row["chosen"]) \
                and looks_like_transcript(row["rejected"]):
            return Shape("transcript", "preference", "conversational", True,
                         (Field("chosen", "text"), Field("rejected", "text")))
        return None


class TranscriptText(Transcript):
    """Just before TRL's `text`, which any other row with `text` is."""

    priority = 2500
    example = {"text": "\n\nHuman: Hi\n\nAssistant: Hello!"}

    def detect(self, row: dict) -> Shape | None:
        if "text" in row and looks_like_transcript(row["text"]):
            return Shape("transcript", "language_modeling", "conversational", False, (Field("text", "text"),))
        return None


register(TranscriptPair())
register(TranscriptText())
