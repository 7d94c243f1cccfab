"""A `--map` that trlprep proposes is checked on the file's first rows, names the file's own columns, and, followed,
writes rows whose prompt and answer are the columns it named: never a fix that makes wrong data."""

import json
import re
import shlex
import string

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from trlprep.converters import DataRefused, convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main as inspect_main
from trlprep.inspector.mapping import SYNONYMS

# The file: messy meeting notes in `text`, and in `label` the YAML a model should write from them.
NOTES = [{"text": f"mtg {n}: bob -> ship v{n} fri?? alice: tests first. budget ~{n}k",
          "label": f"owner: bob\nversion: v{n}\nitems:\n  - ship\n  - tests\nbudget: {n * 1000}"}
         for n in range(1, 21)]
MEANING = re.compile(r"`([^`]+)` read as the prompt and `([^`]+)` as the completion")


def proposals(report) -> list[tuple[str | None, str, str, tuple[str, ...]]]:
    """Every command with a `--map` the report proposes, as (the method it converts for, None for an `inspect`
    command; prompt column; answer column; --map values), read from the verdicts, findings and fixes."""
    found = []
    texts = [(name, v["reason"]) for name, v in report.methods.items()]
    texts += [(None, text) for finding in report.findings for text in (finding.message, finding.fix)]
    for method, text in dict.fromkeys(texts):
        if "uv run" not in text or "--map" not in text:
            continue
        meaning = MEANING.search(text)
        words = shlex.split(text[text.index("uv run "):])
        maps = tuple(words[i + 1] for i, word in enumerate(words) if word == "--map")
        to = words[words.index("--to") + 1] if "--to" in words else None
        assert to is None or method in (None, to)  # data of no known shape: every verdict names `inspect`
        found.append((to, *(meaning.groups() if meaning else (None, None)), maps))
    return list(dict.fromkeys(found))


def followed(path, method, maps, tmp_path) -> list[dict]:
    """The rows `convert --to method --map ...` writes, the ledger balanced and no row rejected for its columns."""
    output = tmp_path / f"{method}.jsonl"
    try:
        result = convert(path, to=method, output=output, rename=maps, overwrite=True)
    except DataRefused as refused:  # every row rejected: for what it holds, never for the mapping
        result, rows = refused.result, []
    else:
        rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert result.rows_in == result.rows_kept + result.rows_rejected == len(rows) + result.rows_rejected
    assert not set(result.rejected_by_rule) & {"TP112", "TP404", "TP101"}
    return rows


def rejected_rows(tmp_path, method) -> set[int]:
    rejects = tmp_path / f"{method}.rejects.jsonl"
    return {json.loads(line)["row"] for line in rejects.read_text().splitlines()} if rejects.exists() else set()


def test_text_and_its_target_are_mapped_onto_prompt_and_completion(write_jsonl, tmp_path):
    path = write_jsonl(NOTES)
    report = inspect_dataset(path)
    (clash,) = [f for f in report.findings if f.rule == "TP112"]
    assert "label_stats" not in clash.fix  # the catalog's example is not this file's
    assert clash.fix.endswith("--map text=prompt --map label=completion")
    assert "`text` read as the prompt and `label` as the completion (checked on the first 20 rows)" in clash.fix
    assert report.methods["sft"]["reason"].endswith("--map text=prompt --map label=completion")
    rows = followed(path, "sft", ("text=prompt", "label=completion"), tmp_path)
    assert [(r["prompt"], r["completion"]) for r in rows] == [(n["text"], n["label"]) for n in NOTES]


def test_a_prompt_with_an_answer_is_offered_to_sft(write_jsonl, tmp_path):
    path = write_jsonl([{"prompt": f"What is {n} + {n}?", "answer": f"{n} + {n} = {2 * n}."} for n in range(5)])
    report = inspect_dataset(path)
    assert report.methods["grpo"]["status"] == "ready"  # `answer` goes to the reward functions as it is
    found = proposals(report)
    assert found == [(method, "prompt", "answer", ("answer=completion",)) for method in ("sft", "gold")]
    maps = found[0][3]
    preview = inspect_dataset(path, rename=maps)
    assert preview.methods["sft"]["status"] == "convertible"
    assert preview.methods["sft"]["command"].endswith("--to sft --output "
                                                      f"{tmp_path / 'data.sft.jsonl'} --map answer=completion")
    assert followed(path, "sft", maps, tmp_path)[0] == {"prompt": "What is 0 + 0?", "completion": "0 + 0 = 0."}


def test_a_clashing_column_that_is_no_answer_is_set_aside(write_jsonl, tmp_path):
    path = write_jsonl([{"text": f"Story {n}.", "labels": [n, 0]} for n in range(4)])
    (clash,) = inspect_dataset(path).findings
    assert clash.fix.endswith(f"uv run inspect --dataset {path} --map labels=labels_original")
    rows = followed(path, "sft", ("labels=labels_original",), tmp_path)
    assert rows[1] == {"text": "Story 1.", "labels_original": [1, 0]}


def test_columns_the_shape_already_reads_are_never_remapped():
    # Math-Shepherd's `input` and `label` are its steps and their tags: SFT refuses it (TC106), with no `--map`.
    report = inspect_dataset(REPO / "tests" / "data" / "methods" / "math_shepherd_samples_openr.jsonl")
    assert report.methods["sft"]["status"] == "incompatible"
    assert proposals(report) == []


def test_a_label_beside_the_answer_is_set_aside_never_trained(write_jsonl, tmp_path):
    # Found by an adversarial trial: `label` was proposed as the completion beside an `output` that holds it.
    path = write_jsonl([{"input": f"in {n}", "output": f"out {n}", "label": "bad"} for n in range(4)])
    found = proposals(inspect_dataset(path))
    assert {maps for _, _, _, maps in found} == {("input=prompt", "output=completion", "label=label_original")}
    rows = followed(path, "sft", found[0][3], tmp_path)
    assert rows[0] == {"prompt": "in 0", "completion": "out 0", "label_original": "bad"}


def test_a_document_with_its_summary_is_never_read_as_a_document_alone(write_jsonl, tmp_path):
    path = write_jsonl([{"document": f"Long report {n}.", "summary": f"Short {n}."} for n in range(4)])
    ((_, prompt, answer, maps),) = set(proposals(inspect_dataset(path)))
    assert (prompt, answer, maps) == ("document", "summary", ("document=prompt", "summary=completion"))
    # A `summary` beside `text`: the text is SFT data as it is, and the verdict says the summary is never trained.
    text = write_jsonl([{"text": f"Long report {n}.", "summary": f"Short {n}."} for n in range(4)], "text.jsonl")
    sft = inspect_dataset(text).methods["sft"]
    assert sft["status"] == "ready"
    assert "`summary` holds text beside it and is never trained: if it is the answer, `text` read as the prompt" \
        in sft["reason"] and sft["reason"].endswith("--map text=prompt --map summary=completion")


def test_messages_one_a_row_get_no_mapping(tmp_path):
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]))
    assert proposals(inspect_dataset(path)) == []


def test_the_text_report_shows_the_checked_command(write_jsonl):
    path = write_jsonl(NOTES)
    result = CliRunner().invoke(inspect_main, ["--dataset", str(path), "--method", "sft"], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "renamed, `text` read as the prompt and `label` as the completion" in result.output
    assert "--map text=prompt --map label=completion" in result.output


NAMES = sorted({name for names in SYNONYMS.values() for name in names} | {"notes", "id", "meta"})
TEXTS = st.text(string.ascii_letters + " .?\n", min_size=0, max_size=12)
VALUES = st.one_of(TEXTS, TEXTS, TEXTS, st.integers(), st.booleans(), st.lists(st.integers(), max_size=2))
# A column people name as a prompt, one they name as an answer, and any other: the columns a proposal is made of.
COLUMNS = st.tuples(st.sampled_from(SYNONYMS["prompt"]), st.sampled_from(SYNONYMS["completion"]),
                    st.lists(st.sampled_from(NAMES), max_size=1)).map(lambda c: list(dict.fromkeys([c[0], c[1], *c[2]])))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=COLUMNS, data=st.data())
def test_every_proposed_map_converts_the_first_rows_into_its_named_columns(columns, data, tmp_path_factory):
    values = TEXTS if data.draw(st.booleans()) else VALUES  # text in every cell, or anything anywhere
    rows = [{column: data.draw(values) for column in columns} for _ in range(3)]
    folder = tmp_path_factory.mktemp("proposal")
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    for method, prompt, answer, maps in proposals(inspect_dataset(path)):
        assert all(f"{old}=" in " ".join(maps) for old in (prompt, answer) if old not in (None, "prompt", "completion"))
        assert inspect_dataset(path, rename=maps).type != "unknown"  # renamed, the rows have a known shape
        if prompt is None:  # a column set aside, or renamed onto a pair, a conversation or a document
            continue
        written = followed(path, method or "sft", maps, folder)
        kept = [row for number, row in enumerate(rows, 1) if number not in rejected_rows(folder, method or "sft")]
        assert [(row["prompt"], row["completion"]) for row in written] == [(r[prompt], r[answer]) for r in kept]


def test_a_question_about_a_passage_is_asked_with_it(write_jsonl, tmp_path):
    # SQuAD's layout: trained on the question alone, the model would learn answers it was never given the text of.
    path = write_jsonl([{"context": f"Passage {n}.", "question": f"Question {n}?", "answer": f"A{n}"}
                        for n in range(3)])
    assert inspect_dataset(path).dialect == "question_answer"
    convert(path, to="sft", output=tmp_path / "sft.jsonl")
    row = json.loads((tmp_path / "sft.jsonl").read_text().splitlines()[0])
    assert row["prompt"] == [{"role": "user", "content": "Passage 0.\nQuestion 0?"}] and "context" not in row
