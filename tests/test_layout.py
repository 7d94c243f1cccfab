"""The code's shape, held: a rule's id is written only in its entry, rule and dialect code is short functions, and
the modules import one another in one direction."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("trlprep", "inspector", "converters", "train")
RULE_ID = re.compile(r"""["']T[PC]\d{3}["']""")


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def rule_id_literals(path: Path) -> list[str]:
    """The string literals of a module that are a rule id and nothing else (`"TP201"`), as `file:line`; ids named
    inside prose (a docstring, a message) are not literals of their own."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return [f"{path.relative_to(REPO)}:{token.start[0]}" for token in tokens
            if token.type == tokenize.STRING and RULE_ID.fullmatch(token.string)]


def long_functions(path: Path, limit: int = 60) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


def test_rule_ids_are_written_only_in_the_rule_modules():
    outside = [found for path in _modules(*PACKAGES) if "rules" not in path.relative_to(REPO).parts
               for found in rule_id_literals(path)]
    assert outside == [], "refer to a rule by its entry (e.g. `DUPLICATE_ROW.id`), not by its id"


def test_rule_and_dialect_code_has_no_function_over_60_lines():
    assert [found for path in _modules("inspector/rules", "inspector/dialects") for found in long_functions(path)] == []


def _module_name(path: Path) -> str:
    """The name a module is imported by: the stages are `trlprep.inspector`, `trlprep.converters`, `trlprep.train`."""
    parts = path.relative_to(REPO).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts if parts[0] == "trlprep" else ("trlprep", *parts))


def import_graph() -> dict[str, set[str]]:
    """Each of the project's modules -> the project's modules it imports, at the top, in a function or under
    TYPE_CHECKING alike."""
    paths = {_module_name(path): path for path in _modules(*PACKAGES)}
    graph = {}
    for name, path in paths.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        graph[name] = {module for module in imported if module in paths and module != name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another, directly or through others (Tarjan's strongly connected
    components of more than one module).

    >>> import_circles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_no_import_circles():
    graph = import_graph()
    assert sum(map(len, graph.values())) > 200, "the graph lost its edges: are the modules named as imported?"
    assert import_circles(graph) == []
