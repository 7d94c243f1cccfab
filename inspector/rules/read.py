"""Reading a row (TP0xx): a line that is not JSON, a value that is not an object, a key written twice.

The readers (`inspector.sources`) find these; `inspector.decision` words each as the row's one finding.
"""

from __future__ import annotations

from trlprep.inspector.rules.catalog import ERROR, WARNING, by_structure, register, Rule
from trlprep.inspector.rules.examples import CHAT, flagged

INVALID_JSON = register(Rule("TP001", "invalid-json", ERROR, "the row is not valid JSON", "repair or remove the line", "read",
         why="no reader can load the line; `datasets` stops the whole file at it",
         blocking=True, example=flagged(CHAT, '{"messages": [', CHAT, at=(2,)),
         proof=by_structure("a line the typed decode reads is JSON, and an Arrow row was read already")))

NOT_AN_OBJECT = register(Rule("TP002", "not-an-object", ERROR, "the row is not a JSON object (null, a list or a scalar)",
         "every row must be an object with named fields", "read",
         why="a trainer reads columns by name; a row without names has none", blocking=True,
         example=flagged(CHAT, "null", "[1, 2]", CHAT, at=(2, 3)),
         proof=by_structure("the typed decode and the column plans take objects only")))

DUPLICATE_KEY = register(Rule("TP003", "duplicate-key", WARNING, "the row's object repeats a key; the last value is used",
         "remove the repeated key: other readers may keep the first value", "read",
         why="readers disagree on which value wins, so what you trained on depends on the library",
         example=flagged(CHAT, '{"text": "first", "text": "second"}', {"text": "third"}, at=(2,)),
         proof=by_structure("an accepted line is searched for repeated keys (`sources.duplicate_keys`), and an Arrow row cannot repeat one")))
