"""A conversion row by row: each row converted for the method or rejected with its rule (`RowConverter`), every
row accounted for (`Ledger`), a file's rows read against its shape (`convert_part`), and the plan and refusals
`convert` prints. `converters.convert` and the shard steps (`converters.shards`) both run on it.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import orjson

from trlprep.converters.fast import fast_conversion
from trlprep.converters.output import (Staging, dumps)
from trlprep.converters.result import ConversionResult
from trlprep.converters.transforms import Reject, as_messages, fixed_text, through_last_answer, set_system, to_grpo, to_kto, to_preference, to_sft, traces_as
from trlprep.inspector.checks import check_row
from trlprep.inspector.dialects import Shape, classify_row, shape_key, to_trl, without_ids
from trlprep.errors import DataRefused, only_rule
from trlprep.inspector.decision import Engine, as_conversational, disagreement
from trlprep.inspector.fast import FastPath
from trlprep.inspector.images import ImageChecker, image_bytes, image_source
from trlprep.inspector.vision import image_mime
from trlprep.inspector.methods import METHOD, READY_TYPES, conversion_target, reading_steps, verdict
from trlprep.inspector.rules import ERROR, RULES
from trlprep.inspector.comparisons import Comparisons
from trlprep.converters.options import ConvertOptions
from trlprep.inspector.scan import FilePart, ReadPlan, line_of
from trlprep.inspector.sources import JsonLines, UnreadableRow, block_lines, numbered_blocks
from trlprep.inspector.rules.content import CUT_OFF_RESPONSE
from trlprep.inspector.rules.conversion import CONVERSION_FAILED, CONVERTED_ROW_INVALID
from trlprep.inspector.rules.images import NOT_VISION_SHAPE
from trlprep.inspector.rules.dataset import DUPLICATE_ROW, EVAL_CONTAMINATION, MIXED_SHAPE, NEAR_DUPLICATE_ROW
from trlprep.inspector.rules.structure import LABEL_NOT_BOOLEAN, MIXED_DATASET_FORMAT, MIXED_ROW_FORMAT
from trlprep.inspector.rules.tools import TOOL_CALLS_NOT_CANONICAL

PREVIEW_ROWS = 3


def _to_method(trl_row: dict, shape: Shape, to: str, style: str) -> list[dict]:
    """The rows `to`'s trainer takes of one row, written as for the method whose data it takes."""
    data_type = shape.type
    if data_type not in READY_TYPES[METHOD[to].base] and conversion_target(data_type, to, shape.format) is None:
        raise Reject(MIXED_SHAPE.id, f"a {shape.dialect} {data_type} row cannot become {to} data")
    if METHOD[to].style == "messages":
        # A trainer that reads only `messages` trains their last turn (GKD's collator): one conversation per row
        # `to_sft` writes, per-turn flags' rows included, each ending at the assistant turn it trains.
        return [through_last_answer(as_messages(row)) for row in to_sft(trl_row, data_type)]
    to = METHOD[to].base
    if to == "sft":
        return to_sft(trl_row, data_type, style)
    if to == "dpo":
        return to_preference(trl_row, data_type)
    if to == "reward":
        # RewardTrainer's native form is the implicit prompt: rows keep theirs, explicit or implicit.
        return [trl_row]
    if to == "kto":
        return to_kto(trl_row, data_type)
    if shape.dialect == "trl" and data_type in READY_TYPES["grpo"]:
        return [trl_row]
    return to_grpo(trl_row, data_type, shape.dialect)


REPAIRS = {MIXED_ROW_FORMAT.id: "strings wrapped as messages (TP107/TP108)",
           MIXED_DATASET_FORMAT.id: "strings wrapped as messages (TP107/TP108)",
           LABEL_NOT_BOOLEAN.id: "label made boolean (TP110)",
           NOT_VISION_SHAPE.id: "images placed as TRL's vision trainers read them: typed parts, `images` in order (TP710)",
           TOOL_CALLS_NOT_CANONICAL.id: "tool calls in the form chat templates read: arguments as objects, `tools` "
                                        "as functions (TP605)"}


# Rows the fast path accepts hold nothing `fix_text` changes (`hygiene.plainly_clean`): only the others are fixed.
TEXT_FIXED = "text repaired by ftfy: mojibake, control characters (TP210/TP212, --fix-text)"
# Nor a reasoning trace (no `<`, no `reasoning_content`): only the others are rewritten.
TRACES_WRITTEN = {"field": "reasoning traces moved into `reasoning_content`",
                  "inline": "reasoning traces written inline as <think>…</think>", "drop": "reasoning traces dropped"}


class RowConverter:
    """Per-row conversion with the options; `convert_row` returns output rows or raises Reject. Whether a row is
    kept is the inspector's decision for the method (`inspector.decision`), the one `inspect` counts. Each file
    is read against its own shape (`read`), the output is one shape for all."""

    def __init__(self, options: ConvertOptions):
        self.to, self.style, self.conversational = options.to, options.style, options.conversational
        self.system, self.drop_system, self.fix_text = options.system, options.drop_system, options.fix_text
        self.reasoning = options.reasoning
        self.dedup = options.dedup_kind
        self.image_root, self.decode_images = options.image_root, options.decode_images
        # Image paths are written relative to a JSON-lines output's folder, so that they still resolve where it
        # goes; other outputs embed the images (`converters.output.embed_images`), read from absolute paths.
        output = Path(options.output) if options.output is not None else None
        self.paths_relative_to = output.parent.resolve() if output is not None and output.suffix == ".jsonl" else None
        self.seen: set[int] = set()
        self.repaired: Counter = Counter()
        self.output_shape: Shape | None = None
        self.expected: Shape | None = None
        self.engine: Engine | None = None
        self.fast: FastPath | None = None

    @property
    def changes_rows(self) -> bool:
        """Whether an option changes or drops rows that are clean as they are (which the fast conversion of lines
        would write unchanged)."""
        return self.system is not None or self.drop_system or bool(self.dedup) or self.conversational

    def read(self, shape: Shape, example: dict | None = None, folder: Path | None = None,
             image_data: bool | None = None) -> None:
        """Convert rows read against `shape` next (a file's, see `read_plan`, whose image paths are relative to
        `folder` unless `--image-root` says otherwise), those like `example` through inspect's fast path: without
        --conversational no repair applies to the rows it accepts, so they may skip the checks."""
        self.expected = shape
        root = Path(self.image_root) if self.image_root is not None else folder
        self.engine = Engine(shape, ImageChecker(root, full_decode=self.decode_images), image_data)
        self.fast = None if self.conversational or example is None else FastPath.for_row(shape, example)

    def _finish_outputs(self, outputs: list[dict]) -> list[dict]:
        if self.system is not None or self.drop_system:
            outputs = [set_system(out, self.system, self.drop_system) for out in outputs]
        if self.expected is not None and self.expected.reads_images:
            outputs = [{**out, "images": [staged_image(image, self.engine.images, self.paths_relative_to)
                                          for image in out.get("images") or ()]} for out in outputs]
        return outputs

    def _dedup(self, row: dict) -> None:
        if self.dedup:
            digest = hash(orjson.dumps(without_ids(row), option=orjson.OPT_SORT_KEYS, default=str))
            if digest in self.seen:
                raise Reject(DUPLICATE_ROW.id, "repeats an earlier row (--dedup)")
            self.seen.add(digest)

    def convert_row(self, row: Any) -> list[dict]:
        if self.fast is not None and type(row) is dict and self.fast.value(row) is not None:
            # A clean row of the expected shape, as inspect's fast path knows it: no checks left to run, and it
            # converts to the shape that the row the fast path was built from converted to (the first such row
            # sets the output's shape, as `_guard` sets it for the others).
            self._dedup(row)
            outputs = self._finish_outputs(_to_method(to_trl(row, self.expected), self.expected, self.to, self.style))
            if self.output_shape is None and outputs:
                self.output_shape = classify_row(outputs[0])
            return outputs
        decision = self.engine.decide(row)
        rejection = self.engine.rejection(decision, self.to)
        if rejection is not None:
            raise Reject(*rejection)
        trl_row, shape = decision.trl_row, decision.shape
        if self.conversational and shape.dialect == "trl" and shape.format == "standard" \
                and shape.type != "language_modeling":
            trl_row = as_conversational(trl_row)
            shape = classify_row(trl_row)
        self._dedup(trl_row)
        try:
            outputs = self._finish_outputs(_to_method(trl_row, shape, self.to, self.style))
        except Reject:
            raise
        except Exception as error:  # a bug of ours on this row: the row is rejected, the others go on
            raise Reject(CONVERSION_FAILED.id, f"{type(error).__name__}: {error}") from None
        if self.fix_text:
            fixed = [fixed_text(out) for out in outputs]
            if fixed != outputs:
                self.repaired[TEXT_FIXED] += 1
                outputs = fixed
        if self.reasoning:
            moved = [traces_as(out, self.reasoning) for out in outputs]
            if moved != outputs:
                self.repaired[f"{TRACES_WRITTEN[self.reasoning]} (--reasoning {self.reasoning})"] += 1
                outputs = moved
        self._guard(outputs)
        self.repaired.update({REPAIRS[rule] for rule in decision.repairs})
        return outputs

    def _guard(self, outputs: list[dict]) -> None:
        """Converted rows must be valid rows of one shape: `inspect` predicted the rows kept, and a row that
        breaks a rule after all is rejected (TC103) rather than written."""
        for out in outputs:
            out_shape = classify_row(out)
            if out_shape is None:
                raise Reject(CONVERTED_ROW_INVALID.id, "converts to a row of no known shape")
            errors = [issue for issue in check_row(out, out_shape)[0] if RULES[issue[0]].severity == ERROR]
            if errors:
                raise Reject(CONVERTED_ROW_INVALID.id, f"the converted row breaks {errors[0][0]}: {errors[0][1]}")
            if self.output_shape is None:
                self.output_shape = out_shape
            elif shape_key(out_shape) != shape_key(self.output_shape):
                raise Reject(CONVERTED_ROW_INVALID.id, "converts to a " + disagreement(self.output_shape, out_shape)[1])


def staged_image(value: Any, checker: ImageChecker, relative_to: Path | None) -> str:
    """An image as a converted row writes it, a string JSON lines can hold: a file's path (relative to
    `relative_to` when given, else absolute), an http(s) URL as it is, any other image (bytes, a data URL, a
    decoded image) as a data URL, which the processors read. The row's images were checked: each is readable.

    >>> from trlprep.inspector.images import ImageChecker
    >>> staged_image("img/a.png", ImageChecker(Path("/data")), Path("/data/out"))
    '../img/a.png'
    >>> staged_image(b"\\x89PNG\\r\\n\\x1a\\n", ImageChecker(None), None)
    'data:image/png;base64,iVBORw0KGgo='
    """
    source = image_source(value)
    if source.kind == "url":
        return source.value
    if source.kind == "path":
        path = checker.resolve(source.value)
        return os.path.relpath(path, relative_to) if relative_to is not None else str(path)
    data = image_bytes(source, checker)
    return f"data:{image_mime(data)};base64,{base64.b64encode(data).decode()}"


def option_steps(options: ConvertOptions, renames: dict | None = None, role_map: dict | None = None) -> list[str]:
    """What convert's options do, in the words of the plan (`renames` and `role_map` parsed from its `--map` and
    `--roles`).

    >>> option_steps(ConvertOptions(system="Be brief.", limit=10))
    ["system message set to 'Be brief.'", 'first 10 rows only']
    """
    dedup = options.dedup_kind
    steps = [
        options.conversational and "standard strings wrapped as messages",
        renames and f"columns renamed: {renames}",
        role_map and f"roles renamed: {role_map}",
        options.system is not None and f"system message set to {options.system!r}",
        options.drop_system and "system messages dropped",
        dedup and ("exact duplicate rows dropped" if dedup == "exact" else
                   f"near-duplicate rows dropped (similarity >= {options.near_threshold}), the first row of each "
                   "cluster kept"),
        options.fix_text and "mojibake repaired and control characters removed (ftfy)",
        options.reasoning and TRACES_WRITTEN[options.reasoning] + (
            f" ({options.model}'s chat template reads them so)" if options.reasoning_from_model else ""),
        options.drop_cut_off and "answers cut off by a length cap dropped",
        options.shuffle and f"shuffled (seed {options.seed})",
        options.test_size and ("test split of " + (f"{options.test_size:g}" if options.test_size < 1 else
                                                   f"{int(options.test_size)} rows")),  # a count: 3, not 3.0
        options.limit and f"first {options.limit} rows only"]
    return [step for step in steps if step]


def conversion_plan(plan: ReadPlan, to: str, style: str, options: list[str]) -> list[str]:
    expected = plan.expected
    steps = [f"detected: {_shape_words(expected)}"] + [note for part in plan.parts for note in part.source.notes]
    if len(plan.parts) > 1:
        steps += [f"  {part.name}: {_shape_words(part.shape)}" + (
            "" if part.judged_as == part.shape else " (not the dataset's shape: its rows are rejected, TP404)")
            for part in plan.parts]
    steps += [f"{part.name}: {part.expansion.name}, several rows a line: numbered in order, each `where` naming "
              "its line" for part in plan.parts if part.expansion is not None and part.expansion.several]
    steps += ["read " + step for step in reading_steps(expected.dialect, expected.reads_images)]
    if expected.reads_images:
        steps.append("images checked; each image part where its image stood, `images` in order")
    target = conversion_target(expected.type, to, expected.format)
    if target:
        steps.append(target)
    base, style = METHOD[to].base, METHOD[to].style or style
    if base in ("dpo", "kto") and expected.implicit_prompt:
        steps.append("implicit prompt extracted message by message")
    if base == "sft" and style == "messages" and target is None:
        steps.append("prompt and completion merged into `messages`")
    return steps + options


def _shape_words(shape: Shape | None) -> str:
    if shape is None:
        return "no known shape"
    return f"{shape.dialect} {shape.format} {shape.type}" + (" (implicit prompt)" if shape.implicit_prompt else "")


def refuse_unconvertible(expected: Shape | None, to: str, name: str, columns: set[str]) -> None:
    """Refuse data whose shape (and first rows' `columns`) no conversion makes usable for `to`."""
    if expected is None:
        raise DataRefused(f"{name}: no known dataset shape; run `inspect` to see the columns", rule=MIXED_SHAPE.id)
    # Only the shape decides here: row errors and KTO label balance are known after the pass, when the
    # ledger rejects the rows and the output's own inspection refuses a single label class.
    status = verdict(to, data_type=expected.type, fmt=expected.format, dialect=expected.dialect,
                     implicit_prompt=expected.implicit_prompt, rows=1, rejected={}, repaired={},
                     labels={True: 1, False: 1}, source=None, images=expected.reads_images, columns=columns)
    if status["status"] == "incompatible":
        raise DataRefused(f"{name}: cannot convert to {to}: {status['reason']}")


class Ledger:
    """Every row accounted for: converted (and written to the staging file) or rejected with its reason and
    where it is (`file:line`); rows are numbered across files as `inspect` numbers them."""

    def __init__(self, converter: RowConverter, staging: Staging | None, rejects_handle, compared: Comparisons):
        self.converter, self.staging, self.rejects_handle = converter, staging, rejects_handle
        self.compared = compared  # evaluation leakage (--drop-contaminated) and near-duplicates (--dedup near)
        self.rows_in = self.kept = self.rows_out = 0
        self.rejected: Counter = Counter()
        self.preview: list[dict] = []
        self.part: FilePart | None = None
        self.name, self.offset, self.last = "", 0, 0

    def read(self, part: FilePart) -> None:
        """The rows that come next are those of `part`."""
        self.part = part
        self.name, self.offset, self.last = part.name, self.offset + self.last, 0

    def convert(self, number: int, value: Any) -> None:
        """One row (`number` in its file) through the full conversion."""
        self.rows_in += 1
        self.last = number
        try:
            row = self.offset + number
            if row in self.compared.leaked:
                raise Reject(EVAL_CONTAMINATION.id, self.compared.leaked[row])
            if row in self.compared.cut_off:
                raise Reject(CUT_OFF_RESPONSE.id, self.compared.cut_off[row])
            near = self.compared.near
            repeats = near.dropped(row) if near is not None and self.converter.dedup == "near" else None
            if repeats is not None:
                raise Reject(NEAR_DUPLICATE_ROW.id, repeats)
            outputs = self.converter.convert_row(value)
            if near is not None:
                near.keep(row)
        except Reject as reject:
            self.rejected[reject.rule] += 1
            if self.rejects_handle:
                content = value.text if isinstance(value, UnreadableRow) else value
                where = f"{self.name}:{line_of(self.part.lines, number)}"
                self.rejects_handle.write(dumps({"row": row, "where": where,
                                                 "rule": reject.rule, "reason": reject.detail,
                                                 "content": content}))
            return
        self.kept += 1
        self.rows_out += len(outputs)
        if len(self.preview) < PREVIEW_ROWS:
            self.preview.extend(outputs[: PREVIEW_ROWS - len(self.preview)])
        if self.staging:
            cluster = self.compared.near.kept_row.get(row) if self.compared.near is not None else None
            self.staging.write_block(outputs, cluster)

    def keep_lines(self, lines: list[bytes], last: int) -> None:
        """Rows the fast conversion wrote as JSON lines, up to line `last` of the file."""
        self.rows_in += len(lines)
        self.kept += len(lines)
        self.rows_out += len(lines)
        self.last = last
        if len(self.preview) < PREVIEW_ROWS or self.converter.output_shape is None:
            rows = [orjson.loads(line) for line in lines[:PREVIEW_ROWS]]
            self.preview.extend(rows[: PREVIEW_ROWS - len(self.preview)])
            # Rows of another shape are rejected against the first row written, whichever way it came.
            self.converter.output_shape = self.converter.output_shape or classify_row(rows[0])
        if self.staging:
            self.staging.write_lines(lines)

    def summary(self) -> dict:
        """The counts, the first output rows, and the number of the last row read (of the last file)."""
        return {"rows_in": self.rows_in, "kept": self.kept, "rows_out": self.rows_out, "rejected": self.rejected,
                "preview": self.preview, "last_row": self.last}


def convert_part(plan: ReadPlan, part: FilePart, ledger: Ledger, *, line_conversion: bool,
                 advance: Callable[[int], None] = lambda n: None) -> None:
    """Every row of one file of the plan through the ledger, read against what the plan judged the file to be;
    clean JSON lines through the fast conversion when `line_conversion` (no option changes rows)."""
    converter = ledger.converter
    converter.read(part.judged_as, part.example, part.folder, plan.expected is not None and plan.expected.reads_images)
    ledger.read(part)
    conversion = fast_conversion(converter.fast, part.judged_as, converter.to) \
        if part.mode == "lines" and line_conversion else None
    if conversion is not None:
        _run_lines(part.source.lines_path, ledger, conversion, advance)
    else:
        for number, value in plan.rows(part, advance):
            ledger.convert(number, value)


def _run_lines(path: Path, ledger: Ledger, conversion: Callable[[bytes], bytes | None], advance) -> None:
    """A JSON-lines file a block of lines at a time: clean lines through the fast conversion, the others (and
    every line it declines) through the full one."""
    decoder = JsonLines(str(path), whole_file=False)  # the head, read first, has shown the file to be JSON lines
    with open(path, "rb") as handle:
        for number, block, count in numbered_blocks(handle, advance=advance):
            lines = block_lines(block)
            converted = list(map(conversion, lines))
            if None not in converted:
                ledger.keep_lines(converted, number + count)
                continue
            for line, written in zip(lines, converted):
                number += 1
                if written is not None:
                    ledger.keep_lines([written], number)
                    continue
                value = decoder.decode(number, line)
                if value is not decoder.BLANK:
                    ledger.convert(number, value)


def strict_refusal(rejected: Counter, result: ConversionResult | None = None) -> DataRefused:
    """--strict met rejected rows (`rejected`: rows by rule)."""
    return DataRefused(f"--strict: {sum(rejected.values())} row(s) rejected ("
                       + ", ".join(f"{rule}: {count}" for rule, count in sorted(rejected.items())) + ")", result,
                       rule=only_rule(rejected))


def every_row_rejected(name: str, rejects: Path, result: ConversionResult) -> DataRefused:
    return DataRefused(f"{name}: every row was rejected, nothing written; the reasons are in {rejects}", result,
                       rule=only_rule(result.rejected_by_rule))



def verify(report, result: ConversionResult) -> None:
    """The output's own inspection (`report`) into `result.verification`; a refusal unless it is ready."""
    status = report.methods[result.to]
    result.verification = {"status": status["status"], "reason": status["reason"]}
    if status["status"] != "ready":
        problems = "; ".join(f"{f.rule} x{f.count}" for f in report.findings if f.severity == "error")
        raise DataRefused(f"converted data is not ready for {result.to}: {status['reason']}"
                          + (f" ({problems})" if problems else "") + "; nothing was written")


