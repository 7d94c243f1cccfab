"""Converting clean JSON lines without building Python rows: the line is decoded into inspect's typed structure
(`inspector.fast.FastPath`), rearranged, and encoded in C. Lines the fast path refuses, and shapes or methods
without a fast conversion, take the full path (`converters.conversion.RowConverter`); a property test holds the two to
the same output.
"""

from __future__ import annotations

from typing import Callable

import msgspec

from trlprep.inspector.dialects import SHAREGPT_ROLES, Shape, shared_prompt_length
from trlprep.inspector.fast import FastPath, Message

_encode = msgspec.json.encode


def fast_conversion(fast: FastPath | None, shape: Shape, to: str) -> Callable[[bytes], bytes | None] | None:
    """For a clean JSON line of `shape`, the JSON line of `to` data that the full conversion writes (None for a
    line that needs the full path); None when there is no fast conversion for this shape and method.

    >>> from trlprep.inspector.dialects import classify_row
    >>> row = {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}], "id": 7}
    >>> convert = fast_conversion(FastPath.for_row(classify_row(row), row), classify_row(row), "sft")
    >>> convert(b'{"id": 8, "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}')
    b'{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}],"id":8}'
    >>> convert(b'{"id": 8, "conversations": [{"from": "gpt", "value": "Yo"}, {"from": "gpt", "value": "Yo"}]}')
    """
    if fast is None:
        return None
    key = (shape.dialect, shape.type, shape.format, shape.implicit_prompt, to)
    extras = list(fast.extras.items())
    if key == ("trl", "language_modeling", "conversational", False, "sft"):
        return lambda line: line.rstrip(b"\r") if fast.clean(line) is not None else None  # SFT takes it as it is
    # ShareGPT's `tools` column is parsed from JSON on the full path.
    if key == ("sharegpt", "language_modeling", "conversational", False, "sft") and "tools" not in fast.extras.values():
        roles = {role: SHAREGPT_ROLES[role] for role in ("system", "human", "gpt")}

        def sharegpt(line: bytes) -> bytes | None:
            row = fast.clean(line)
            if row is None:
                return None
            messages = [Message(roles[turn.role], turn.content) for turn in row.conversations]
            return _encode({"messages": messages, **{name: getattr(row, attribute) for attribute, name in extras}})

        return sharegpt
    if key == ("trl", "preference", "conversational", True, "dpo"):

        def implicit(line: bytes) -> bytes | None:
            row = fast.clean(line)
            if row is None:
                return None
            chosen, rejected = row.chosen, row.rejected
            shared = shared_prompt_length(chosen, rejected)
            return _encode({"prompt": chosen[:shared], "chosen": chosen[shared:], "rejected": rejected[shared:],
                            **{name: getattr(row, attribute) for attribute, name in extras}})

        return implicit
    return None
