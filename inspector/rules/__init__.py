"""The rule catalog: every check trlprep runs, one registered entry each (`inspector.rules.catalog.Rule`).

Ids are never renumbered. A family of rules is one module, which registers its rules at import and holds the
pass that finds them: `read` (TP0xx, reading a row), `structure` (TP1xx, a row's own columns), `content` (TP2xx,
conversation content), `hygiene` (TP210-TP213, what a text picked up on its way), `preference` (TP3xx),
`dataset` (TP4xx, the whole dataset), `tokens` (TP5xx, the model's tokenizer and template), `tools` (TP6xx, tool
calls), `images` (TP7xx, where a row's images go and whether each is there and readable), `reasoning` (TP8xx,
reasoning traces) and `conversion` (TC1xx, what a conversion for one method leaves out).

Adding a rule is one entry in its family's module (or a `registered` block, for a plug-in or a test): give it a
`check` and a `proof`, and every scan path runs it while the fast paths stay on (`inspector.fast`,
`inspector.columnar`).

`python -m trlprep.inspector.rules` prints the rule table (the docs' rules page is built with it).
"""

from __future__ import annotations

from trlprep.inspector.rules import (content, conversion, dataset, hygiene, images, preference, read, reasoning,
                                     structure, tokens, tools)
from trlprep.inspector.rules.catalog import (
    ERROR,
    ROW_STAGES,
    RULES,
    STAGES,
    WARNING,
    Example,
    Proof,
    Rule,
    blocking_rules,
    by_structure,
    by_text,
    by_value_tests,
    declared_checks,
    error_rules,
    in_id_order,
    markdown_table,
    method_checks,
    register,
    registered,
    rejecting_rules,
    row_rules,
    select_rules,
    text_proofs,
    unproven,
    unproven_rules,
    unregistered,
)
from trlprep.inspector.rules.conversion import last_answer

FAMILIES = (read, structure, content, hygiene, preference, dataset, tokens, tools, images, reasoning, conversion)
in_id_order()

__all__ = ["ERROR", "ROW_STAGES", "RULES", "STAGES", "WARNING", "Example", "FAMILIES", "Proof", "Rule",
           "blocking_rules", "by_structure", "by_text", "by_value_tests", "declared_checks", "error_rules", "last_answer",
           "markdown_table", "method_checks", "register", "registered", "rejecting_rules", "row_rules",
           "select_rules", "text_proofs", "unproven", "unproven_rules", "unregistered"]
