"""Settings from a config file, found and layered as ruff, pytest and mypy find theirs: the `[tool.trlprep]` table
of a `pyproject.toml`, or a `trlprep.toml` (the same keys at its top level), in the dataset's folder or the nearest
folder above it (the current folder for a Hub id); then the command line over it.

`resolve_settings` is the whole of it, a pure function of the values given on the command line and where the data
is: it returns each setting with where it came from (`Setting.origin`), which `--show-settings` prints. Every key is
one `Key` entry of `KEYS` (its type, default, the commands that read it and its docs); every gate one `GateKind` of
`GATES`. `docs/configuration.md` is the user's page.

>>> settings = resolve_settings("inspect", given={"near_threshold": 0.9}, isolated=True)
>>> settings["near-threshold"], settings.origin("near-threshold"), settings.origin("max-rows")
(0.9, 'command line', 'default')
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from trlprep.errors import UsageError
from trlprep.files import read_small_file
from trlprep.inspector.methods import METHOD, METHODS
from trlprep.inspector.options import InspectOptions
from trlprep.inspector.rules import ERROR, RULES, WARNING
from trlprep.inspector.rules.catalog import closest_rule, names_rule
from trlprep.options import MAX_DROPPED, NEAR_THRESHOLD, NEAR_THRESHOLDS, BadValue, count, fraction
from trlprep.options import shown as _shown

CONFIG_FILE = "trlprep.toml"
PYPROJECT = "pyproject.toml"
DEFAULT = "default"
COMMAND_LINE = "command line"
COMMANDS = ("inspect", "convert", "train")


class ConfigError(UsageError):
    """A config file that cannot be read or says something trlprep does not take (exit 2)."""

    kind = "config"


# --- Readers: a value as the TOML file holds it -> the option's value, or BadValue saying what is wrong ----------
# (`trlprep.options` holds those of numbers and shares, which the options and the command line read too)

def _rule_matches(pattern: str) -> bool:
    return any(names_rule(pattern, rule) for rule in RULES.values())


def _no_rule(pattern: str, forms: str = "id, id prefix or name", note: str = "") -> BadValue:
    nearest = closest_rule(pattern)
    hint = f"nearest: {nearest}" if nearest else "`inspect --explain ID` shows one"
    return BadValue(f"no rule has the {forms} {_shown(pattern)} ({note}{hint})")


def rules(value: Any) -> tuple[str, ...]:
    """Rules as `--select` takes them: ids, id prefixes or names, each naming at least one rule."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadValue(f"expected a list of rule ids, id prefixes or names, such as [\"TP3\", \"TP401\"], "
                       f"got {_shown(value)}")
    for pattern in value:
        if not pattern.strip():  # an empty prefix would match every rule
            raise BadValue("an empty rule; give an id (\"TP301\"), an id prefix (\"TP3\") or a name")
        if not _rule_matches(pattern):
            raise _no_rule(pattern)
    return tuple(value)


def severity(rule: str, value: Any) -> str:
    """A rule's severity, overriding the catalog's (`rule` is one rule's id or name: a prefix names many)."""
    if not _known_rule(rule):
        raise _no_rule(rule, "id or name", "a severity is set for one rule, by its id such as TP401 or its name "
                                           "such as duplicate-row, not an id prefix; ")
    if value not in (ERROR, WARNING):
        raise BadValue(f"expected \"{ERROR}\" or \"{WARNING}\", got {_shown(value)}")
    return value


def rule_id(rule: str) -> str:
    return RULES[rule.upper()].id if rule.upper() in RULES else next(r.id for r in RULES.values() if r.name == rule)


# --- The keys ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """One key of the config file: its `type` as the docs and errors say it, its `default`, the `commands` that
    read it, its `docs`, and `read`, which turns the file's value into the option's (BadValue when it cannot)."""

    name: str
    type: str
    default: Any
    commands: tuple[str, ...]
    docs: str
    read: Callable[[Any], Any]
    table: bool = False  # a table of sub-keys (`[tool.trlprep.severity]`): each is its own setting

    @property
    def option(self) -> str:
        """The option's name in the Python API and the command line's flag, with underscores."""
        return self.name.replace("-", "_")


KEYS = {key.name: key for key in (
    Key("select", "list of rules", (), ("inspect",),
        "Run only these rules: ids (`TP301`), id prefixes (`TP3`) or names. `--select` replaces it.", rules),
    Key("ignore", "list of rules", (), ("inspect",),
        "Skip these rules (same forms as `select`). `--ignore` replaces it.", rules),
    Key("severity", "table: rule = `\"error\"` or `\"warning\"`", None, ("inspect",),
        "A rule's severity (an id or a name) instead of the catalog's: an error finding fails `inspect` (exit 1), "
        "a warning does not.", severity, table=True),
    Key("max-rows", "integer >= 1", InspectOptions.max_rows, ("inspect",),
        "Example rows kept per rule (`--max-rows`).", count),
    Key("near-threshold", "number, 0.5 to 1.0", NEAR_THRESHOLD, ("inspect", "convert"),
        "How similar two rows must be to count as near-duplicates (`--near-threshold`; `inspect --near-duplicates`, "
        "`convert --dedup near`).", NEAR_THRESHOLDS),
    Key("max-length", "integer >= 1", None, ("inspect", "train"),
        "The token budget per row (`--max-length`; unset: TRL's 1024): `inspect --model` checks the rows against "
        "it (`inspect` reads it only with `--model`), `train` trains at it.", count),
    Key("max-dropped", "share of rows", MAX_DROPPED, ("train",),
        "`train` refuses to run when its trainer would drop more than this share of rows at max-length "
        "(`--max-dropped`).", fraction),
    Key("gates", "table: method = table of gates", None, ("inspect",),
        "Limits the data must meet for a method, checked by `inspect --method M` (see Gates).", None, table=True),
)}


# --- Gates ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GateKind:
    """A kind of gate: its `limit` reader, its docs, and `measure`, which reads (the measured value, what it is in
    words) from an inspection's report for a method, or None with the option it needs to be measured."""

    name: str
    type: str
    docs: str
    limit: Callable[[Any], Any]
    measure: Callable[[Any, str], tuple[float, str] | None]
    needs: str | None = None
    at_most: bool = True  # the measured value must not exceed the limit (else: must reach it)


def _share(part: int, whole: int, what: str) -> tuple[float, str]:
    return (part / whole if whole else 0.0), f"{part / whole if whole else 0:.1%} ({part} of {whole} rows {what})"


GATES = {gate.name: gate for gate in (
    GateKind("max-rejected", "share of rows", "The share of rows the conversion for the method rejects.",
             fraction, lambda report, method: _share(report.methods[method].get("rows_rejected", 0),
                                                     report.rows_checked, f"rejected for {method}")),
    GateKind("min-rows", "integer >= 1", "The rows the method keeps after its conversion: fewer fails.",
             count, lambda report, method: (report.methods[method].get("rows_kept", 0),
                                            f"{report.methods[method].get('rows_kept', 0)} rows kept for {method}"),
             at_most=False),
    GateKind("max-over-length", "share of rows", "With `--model`: the share of rows longer than max-length tokens.",
             fraction, lambda report, method: report.tokens and _share(
                 report.tokens["over_max_length"], report.tokens["rows"],
                 f"over max_length={report.tokens['max_length']}"), needs="--model"),
    GateKind("max-dropped", "share of rows",
             "With `--model`: the share of rows the method's trainer drops at max-length.",
             fraction, lambda report, method: report.tokens and _share(
                 report.tokens["trainer_effects"][METHOD[method].effect_key]["dropped"], report.tokens["rows"],
                 f"dropped at max_length={report.tokens['max_length']}"), needs="--model"),
)}


@dataclass(frozen=True)
class Gate:
    """One gate in force: `method`'s `kind` gate at `limit`, from the file `origin`."""

    method: str
    kind: str
    limit: float | int
    origin: str

    @property
    def name(self) -> str:
        return f"gates.{self.method}.{self.kind}"

    def check(self, report: Any) -> dict:
        """The gate against an inspection's report: {gate, limit, measured, passed, origin, line}; `passed` is None
        when the report cannot measure it (it lacks `--model`, or the data cannot be used for the method)."""
        kind = GATES[self.kind]
        limit = shown_value(self.limit, kind.limit).strip('"')
        verdict = report.methods.get(self.method, {})
        unchecked = {"gate": self.name, "limit": limit, "measured": None, "passed": None, "origin": self.origin}
        if verdict.get("status") == "incompatible":  # its measures would say nothing: no row is converted
            return unchecked | {"line": f"{self.name} not checked: the data cannot be used for {self.method} "
                                        f"({verdict.get('reason')})"}
        measured = kind.measure(report, self.method) if verdict else None
        if not measured:
            return unchecked | {"line": f"{self.name} not checked: it is measured with {kind.needs}"}
        value, words = measured
        passed = value <= self.limit if kind.at_most else value >= self.limit
        bound = "at most" if kind.at_most else "at least"
        return {"gate": self.name, "limit": limit, "measured": value, "passed": passed, "origin": self.origin,
                "line": f"{self.name} {'passed' if passed else 'failed'}: {words}; limit {bound} {limit} "
                        f"({self.origin})"}


def markdown_tables() -> tuple[str, str]:
    """The configuration page's tables of the keys and of the gates (docs/configuration.md).

    >>> markdown_tables()[1].splitlines()[2]
    '| `max-rejected` | share of rows | The share of rows the conversion for the method rejects. |'
    """
    keys = ["| key | type | default | read by | what it sets |", "| --- | --- | --- | --- | --- |"]
    for key in KEYS.values():
        default = "none" if key.default is None else f"`{shown_value(key.default, key.read)}`"
        keys.append(f"| `{key.name}` | {key.type} | {default} | {', '.join(key.commands)} | {key.docs} |")
    gates = ["| gate | limit | what is measured |", "| --- | --- | --- |"]
    gates += [f"| `{gate.name}` | {gate.type} | {gate.docs} |" for gate in GATES.values()]
    return "\n".join(keys) + "\n", "\n".join(gates) + "\n"


def shown_value(value: Any, read: Callable | None = None) -> str:
    """A value as the docs and `--show-settings` write it: a share as a percentage, the rest as TOML would."""
    if read is fraction:
        return f"\"{value * 100 + 0.0:g}%\""
    if value is None:
        return "(unset)"
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


# --- Finding and reading the file -------------------------------------------------------------------------------

def shown_path(path: Path) -> str:
    """A config file's path as messages name it: relative to the current folder when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def search_start(dataset: Any, cwd: Path) -> Path:
    """Where the search for a config file starts: a local dataset's folder (a file's own, a glob's), else (a Hub
    id, a URL, data in memory) the current folder."""
    if not isinstance(dataset, (str, os.PathLike)):
        return cwd
    path = Path(cwd, dataset)
    if not path.exists() and any(char in str(dataset) for char in "*?["):
        while not path.exists() and path != path.parent:
            path = path.parent
    if not path.exists():
        return cwd
    return path if path.is_dir() else path.parent


def find_config(dataset: Any = None, cwd: str | Path | None = None) -> Path | None:
    """The nearest `trlprep.toml`, or `pyproject.toml` with a `[tool.trlprep]` table, from where the data is
    upward (a `trlprep.toml` first in a folder holding both); None when there is none."""
    cwd = Path(cwd or Path.cwd()).resolve()
    try:
        start = search_start(dataset, cwd).resolve()
        for folder in (start, *start.parents):
            if (folder / CONFIG_FILE).is_file():
                return folder / CONFIG_FILE
            pyproject = folder / PYPROJECT
            if pyproject.is_file() and _table(pyproject) is not None:
                return pyproject
    except PermissionError:  # the search stops at a folder we may not look into; reading the data says why
        return None
    return None


def _load(path: Path) -> dict:
    try:
        return tomllib.loads(read_small_file(path, "config file"))
    except FileNotFoundError:
        raise ConfigError(f"{shown_path(path)}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{shown_path(path)}: cannot read the config file: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{shown_path(path)}: not valid TOML: {error}") from None


def _table(path: Path) -> dict | None:
    """The file's trlprep table: a `trlprep.toml`'s top level, a `pyproject.toml`'s `[tool.trlprep]` (None when
    it has none)."""
    document = _load(path)
    if path.name != PYPROJECT:
        return document
    table = document.get("tool", {}).get("trlprep") if isinstance(document.get("tool"), dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{shown_path(path)}: tool.trlprep must be a table, got {_shown(table)}")
    return table


def _unknown(kind: str, name: str, known: list[str]) -> BadValue:
    nearest = difflib.get_close_matches(name.lower(), known, n=1)  # keys and methods are lower case
    hint = f"; did you mean {nearest[0]}?" if nearest else ""
    return BadValue(f"unknown {kind}{hint} ({kind}s: {', '.join(known)})")


def read_config(path: str | Path) -> list[Setting]:
    """The settings a config file holds, each read and checked (`ConfigError` naming the file and the key: an
    unknown key, a value of the wrong type, a rule or method that does not exist, invalid TOML)."""
    path = Path(path)
    table = _table(path)
    where = shown_path(path)
    if table is None:
        raise ConfigError(f"{where}: has no [tool.trlprep] table")
    prefix = "tool.trlprep." if path.name == PYPROJECT else ""
    found: list[Setting] = []
    for name, value in table.items():
        try:
            found += _entries(name, value, where)
        except BadValue as error:
            dotted = f"{prefix}{error.args[1] if len(error.args) > 1 else name}"
            raise ConfigError(f"{where}: {dotted}: {error.args[0]}") from None
    return found


def _entries(name: str, value: Any, origin: str) -> list[Setting]:
    """The settings of one top-level key: one, or one per entry of a table key (`severity`, `gates`)."""
    key = KEYS.get(name)
    if key is None:
        raise _unknown("key", name, list(KEYS))
    if not key.table:
        return [Setting(name, key.read(value), origin)]
    if not isinstance(value, dict):
        raise BadValue(f"expected a table ({key.type}), got {_shown(value)}")
    if name == "severity":
        by_rule: dict[str, list[str]] = {}  # rule id -> the keys that set it (an id, a name)
        levels = []
        for rule, level in value.items():
            level = _at(f"severity.{rule}", severity, rule, level)
            by_rule.setdefault(rule_id(rule), []).append(rule)
            levels.append(Setting(f"severity.{rule_id(rule)}", level, origin))
        for rule, keys in by_rule.items():
            if len(keys) > 1:  # an id and a name of one rule: which wins is not for the keys' order to say
                raise BadValue(f"severity for {rule} set twice ({', '.join(keys)})", "severity")
        return levels
    entries = []
    for method, gates in value.items():
        if method not in METHODS:
            raise BadValue(*_unknown("method", method, list(METHODS)).args, f"gates.{method}")
        if not isinstance(gates, dict):
            raise BadValue(f"expected a table of gates ({', '.join(GATES)}), got {_shown(gates)}",
                           f"gates.{method}")
        for gate, limit in gates.items():
            dotted = f"gates.{method}.{gate}"
            if gate not in GATES:
                raise BadValue(*_unknown("gate", gate, list(GATES)).args, dotted)
            entries.append(Setting(dotted, _at(dotted, GATES[gate].limit, limit), origin))
    return entries


def _known_rule(rule: str) -> bool:
    return rule.upper() in RULES or any(r.name == rule for r in RULES.values())


def _at(dotted: str, read: Callable, *values: Any) -> Any:
    """`read(*values)`, its BadValue naming the sub-key `dotted`."""
    try:
        return read(*values)
    except BadValue as error:
        raise BadValue(error.args[0], dotted) from None


# --- Resolution -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One setting in force: its `name` as the file writes it (`max-rows`, `severity.TP401`,
    `gates.sft.max-over-length`), its `value` and its `origin`: "default", "command line" or a config file."""

    name: str
    value: Any
    origin: str


@dataclass(frozen=True)
class Settings:
    """The settings of one command, each with its origin; `config_file` is the file read (None: none)."""

    command: str
    entries: tuple[Setting, ...]
    config_file: str | None = None
    by_name: dict[str, Setting] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {entry.name: entry for entry in self.entries})

    def __getitem__(self, name: str) -> Any:
        return self.by_name[name].value

    def origin(self, name: str) -> str:
        return self.by_name[name].origin

    @property
    def severity(self) -> dict[str, str]:
        """The rules whose severity the config sets: {rule id: "error" | "warning"}."""
        return {entry.name.split(".", 1)[1]: entry.value for entry in self.entries
                if entry.name.startswith("severity.")}

    @property
    def gates(self) -> tuple[Gate, ...]:
        return tuple(Gate(*entry.name.split(".")[1:], entry.value, entry.origin) for entry in self.entries
                     if entry.name.startswith("gates."))

    def to_dict(self) -> dict:
        return {"command": self.command, "config_file": self.config_file,
                "settings": {entry.name: {"value": list(entry.value) if isinstance(entry.value, tuple)
                                          else entry.value, "origin": entry.origin} for entry in self.entries}}

    def to_text(self) -> str:
        """As `--show-settings` prints them: the file read, then each setting, its value and where it came from."""
        lines = [f"{self.command}: settings from {self.config_file}" if self.config_file
                 else f"{self.command}: no config file read: defaults and the command line"]
        width = max(len(entry.name) for entry in self.entries)
        shown = [shown_value(entry.value, _reader(entry.name)) for entry in self.entries]
        value_width = max(map(len, shown))
        lines += [f"  {entry.name:<{width}} = {value:<{value_width}}  # {entry.origin}"
                  for entry, value in zip(self.entries, shown)]
        return "\n".join(lines) + "\n"


def _reader(name: str) -> Callable | None:
    if name.startswith("gates."):
        return GATES[name.rsplit(".", 1)[1]].limit
    key = KEYS.get(name)
    return key.read if key is not None else None


def resolve_settings(command: str, dataset: Any = None, given: dict[str, Any] | None = None, *,
                     config: str | Path | None = None, isolated: bool = False,
                     cwd: str | Path | None = None) -> Settings:
    """The settings `command` (inspect, convert or train) runs with, on data at `dataset` (a path, a Hub id, or
    None): the values `given` on the command line (by option name: `{"near_threshold": 0.9}`), over those of the
    config file (`config`, else the one found from the data upward; none with `isolated`), over the defaults.

    Raises `ConfigError` for a config file that cannot be read or holds what trlprep does not take, `UsageError`
    for an unknown command or option.
    """
    if command not in COMMANDS:
        raise UsageError(f"unknown command {command!r}; choose one of {', '.join(COMMANDS)}")
    if config is not None and isolated:
        raise UsageError("--settings and --isolated: give one (a config file to use, or none at all)")
    keys = [key for key in KEYS.values() if command in key.commands]
    given = dict(given or {})
    unknown = sorted(set(given) - {key.option for key in keys if not key.table})
    if unknown:
        raise UsageError(f"{command} takes no setting {unknown[0]!r} on the command line")
    path = None if isolated else Path(config) if config is not None else find_config(dataset, cwd)
    from_file = read_config(path) if path is not None else []
    entries: list[Setting] = []
    for key in keys:
        if key.table:
            entries += [entry for entry in from_file if entry.name.startswith(f"{key.name}.")]
        elif key.option in given:
            entries.append(Setting(key.name, given[key.option], COMMAND_LINE))
        else:
            entries.append(next((entry for entry in from_file if entry.name == key.name),
                                Setting(key.name, key.default, DEFAULT)))
    return Settings(command, tuple(entries), shown_path(path) if path is not None else None)


def apply_to_report(report: Any, severities: dict[str, str] | None, gates: tuple[Gate, ...],
                    method: str | None) -> Any:
    """The report with the config's severities in its findings, and its method's gates checked (`report.gates`;
    its exit code is 1 when one fails)."""
    if severities:  # the scan counted the rows that break error rules with them (`findings.build_report`)
        for finding in report.findings:
            finding.severity = severities.get(finding.rule, finding.severity)
        report.findings.sort(key=lambda f: (f.severity != ERROR, f.rule))
    report.gates = [gate.check(report) for gate in gates if gate.method == method]
    return report
