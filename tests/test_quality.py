"""Quality checks no peer makes before training: tool calls against their tools, evaluation leakage,
near-duplicates."""

import json

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.ngrams import strings
from tests.differential import check_dataset

ADD = {"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}


def _call(name, arguments, call_id=None):
    return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", **({"id": call_id} if call_id else {}),
                                                  "function": {"name": name, "arguments": arguments}}]}


def _row(*messages, tools=(ADD,)):
    return {"messages": [{"role": "user", "content": "2+3?"}, *messages], "tools": list(tools)}


RESULT = {"role": "tool", "name": "add", "content": "5"}
ANSWER = {"role": "assistant", "content": "5."}


def test_tool_calls_are_checked_against_the_declared_schemas(write_jsonl, tmp_path):
    rows = [
        _row(_call("add", {"a": 2, "b": 3}), RESULT, ANSWER),                      # 1 clean
        _row(_call("add", '{"a": 2, "b": 3}', "c1"), {**RESULT, "tool_call_id": "c1"}, ANSWER),  # 2 clean, OpenAI
        _row(_call("add", {"a": 2, "b": 3})),                                      # 3 ends in the call: the target
        _row(_call("multiply", {"a": 2, "b": 3}), RESULT, ANSWER),                 # 4 undeclared
        _row(_call("add", {"a": 2}), RESULT, ANSWER),                              # 5 missing required
        _row(_call("add", {"a": "2", "b": 3}), RESULT, ANSWER),                    # 6 wrong type
        _row(_call("add", {"a": 2, "b": 3, "c": 4}), RESULT, ANSWER),              # 7 unknown argument
        _row(_call("add", "{a: 2"), RESULT, ANSWER),                               # 8 not JSON
        _row(_call("add", {"a": 2, "b": 3}), ANSWER),                              # 9 unanswered
        _row(_call("add", '{"a": 2, "b": 3}', "c1"), {**RESULT, "tool_call_id": "c9"}, ANSWER),  # 10 wrong id
        _row(_call("add", {"a": 2, "b": 3}), RESULT, ANSWER, tools=[{"name": "add", "parameters": {
            "type": "object", "properties": {"a": {"type": "integre"}}}}]),        # 11 invalid schema
    ]
    path = write_jsonl(rows)
    report = inspect_dataset(path)
    found = {f.rule: [e["detail"] for e in f.examples] for f in report.findings}
    assert {f.rule: f.rows for f in report.findings} == {
        "TP601": [4], "TP602": [5, 6, 7, 8], "TP603": [9, 10], "TP604": [11], "TP606": [10],
        "TP203": [9],  # the answer right after the call: two assistant turns
        "TP605": [2, 10, 11]}  # JSON-string arguments, bare function `tools`: rewritten, not rejected
    assert found["TP601"] == ["messages[1] calls 'multiply', which `tools` does not declare (add)"]
    assert found["TP602"] == ["messages[1] add: arguments: 'b' is a required property",
                              "messages[1] add: arguments.a: '2' is not of type 'integer'",
                              "messages[1] add: argument(s) c not in its schema",
                              "messages[1] add: arguments are not JSON ('{a: 2')"]
    assert found["TP603"] == ["messages[1] calls 'add', answered by no tool message before turn 3",
                              "messages[1] calls 'add', answered by no tool message before turn 4"]  # c9 is not c1
    assert found["TP606"] == ["messages[2] answers call id 'c9', which no pending call has (c1)"]
    assert found["TP604"] == ["tools[0] (add): parameters are not a valid JSON Schema"]
    result = convert(path, to="sft", output=tmp_path / "sft.jsonl")
    assert result.rejected_by_rule == {"TP601": 1, "TP602": 4, "TP604": 1, "TP606": 1}  # TP603 warns, the row stays
    assert check_dataset(path) == []


def test_real_tool_calling_data(shared_data):
    """Glaive's function-calling demo (LLaMA-Factory, Apache-2.0): one call passes a list where the schema
    declares a number (row 41 of the slice, 260 of the source, read: `calories_per_item: [150, 350, 800]` against `"type": "number"`); nothing
    else fires. Microsoft's Zava retail demo (OpenAI format, call ids, string arguments): valid calls, in the API's
form rather than the one chat templates read."""
    glaive = inspect_dataset(shared_data / "glaive_toolcall_en_demo.json")
    tool_findings = {f.rule: f.rows for f in glaive.findings if f.rule.startswith("TP6")}
    assert tool_findings == {"TP602": [41]}
    assert glaive.findings[0].examples[0]["detail"] == (
        "messages[3] track_calories: arguments.calories_per_item: [150, 350, 800] is not of type 'number'")
    zava = inspect_dataset(shared_data / "more" / "openai_chat_tools_zava_retail_valid.jsonl")
    # Its JSON-string arguments and content-less call turns are what `convert` rewrites (TP605), in every row.
    assert [(f.rule, f.count) for f in zava.findings if f.rule.startswith("TP6")] == [("TP605", 3)]
    [canonical] = [f for f in zava.findings if f.rule == "TP605"]
    assert canonical.examples[0]["detail"] == ("arguments parsed from JSON strings into objects; call-only turns "
                                               "given empty content; tool results named after their calls")
    calls = sum(len(m.get("tool_calls") or []) for line in open(
        shared_data / "more" / "openai_chat_tools_zava_retail_valid.jsonl") for m in json.loads(line)["messages"])
    assert calls > 3  # the checks had calls to look at


def test_training_rows_that_leak_an_evaluation_set_are_found_and_dropped(shared_data, write_jsonl, tmp_path):
    """GSM8K's test split (MIT) as the evaluation set; a training file with three of its questions (two verbatim,
    one reworded in the middle) among alpaca rows that have nothing of it."""
    gsm8k = shared_data / "gsm8k_test.jsonl"
    questions = [json.loads(line)["question"] for line in open(gsm8k)][:3]
    words = questions[2].split()
    reworded = " ".join(words[:12] + ["(reworded)"] + words[13:])
    alpaca = json.loads((shared_data / "alpaca_en_demo.json").read_text())[:30]  # no row repeats another
    rows = [{"messages": [{"role": "user", "content": row["instruction"]},
                          {"role": "assistant", "content": row["output"]}]} for row in alpaca]
    for at, question in ((5, questions[0]), (17, questions[1]), (30, reworded)):
        rows[at - 1] = {"messages": [{"role": "user", "content": question},
                                     {"role": "assistant", "content": "The answer is 42."}]}
    path = write_jsonl(rows)
    report = inspect_dataset(path, against=(str(gsm8k),))
    (leak,) = [f for f in report.findings if f.rule == "TP405"]
    assert leak.rows == [5, 17, 30]
    assert leak.examples[0]["detail"].startswith("shares ") and leak.examples[0]["detail"].endswith(f"{gsm8k}:1")
    assert report.methods["sft"]["rows_kept"] == 30  # reported; dropping is convert's option
    kept = convert(path, to="sft", output=tmp_path / "sft.jsonl", against=(str(gsm8k),), drop_contaminated=True)
    assert (kept.rows_kept, kept.rejected_by_rule) == (27, {"TP405": 3})
    rejects = [json.loads(line) for line in open(kept.rejects)]
    assert [r["row"] for r in rejects] == [5, 17, 30]
    assert inspect_dataset(kept.output, against=(str(gsm8k),)).findings == []
    clean = inspect_dataset(shared_data / "alpaca_en_demo.json", against=(str(gsm8k),))
    assert not [f for f in clean.findings if f.rule == "TP405"]  # no false positive on the alpaca rows


def _chat(prompt, answer, system=None):
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return {"messages": ([{"role": "system", "content": system}] if system else []) + messages}


def test_near_duplicates_are_clustered_and_dedup_near_keeps_the_first_of_each(shared_data, write_jsonl, tmp_path):
    """Real alpaca rows (Apache-2.0, LLaMA-Factory's demo) with copies edited the ways real sets repeat themselves,
    and rows that share only one side with another, which are no duplicates."""
    distinct = {json.dumps(row): row for row in json.loads((shared_data / "alpaca_en_demo.json").read_text())}
    alpaca = [row for row in distinct.values()
              if len(row["instruction"].split()) >= 6 and len(row["output"].split()) >= 30][:20]
    rows = [_chat(row["instruction"], row["output"]) for row in alpaca]
    first, second, third = alpaca[2], alpaca[9], alpaca[19]
    rows += [
        _chat("  " + first["instruction"].upper().replace(" ", "   "), first["output"] + "!"),  # 21 re-spaced, 3
        _chat(second["instruction"], second["output"].rsplit(" ", 1)[0] + " indeed."),           # 22 edited, 10
        _chat(third["instruction"], "A different answer, in words of its own, to the same question."),  # 23 no
        _chat("Some other question that has nothing to do with it", third["output"]),            # 24 no
        _chat(second["instruction"], second["output"]),                                          # 25 exact, 10
    ]
    path = write_jsonl(rows)

    plain = inspect_dataset(path)
    assert [f.rows for f in plain.findings if f.rule == "TP401"] == [[25]]
    assert not [f for f in plain.findings if f.rule == "TP406"]  # only on request

    report = inspect_dataset(path, near_duplicates=True)
    (near,) = [f for f in report.findings if f.rule == "TP406"]
    assert near.rows == [21, 22, 25] and near.severity == "warning"
    assert [e["detail"].split(" (")[0] for e in near.examples] == ["nearly repeats row 3", "nearly repeats row 10",
                                                                   "nearly repeats row 10"]
    clusters = report.near_duplicates
    assert (clusters["clusters"], clusters["rows_repeating"]) == (2, 3)
    assert [(c["kept"], c["size"]) for c in clusters["largest"]] == [(10, 3), (3, 2)]
    assert clusters["largest"][0]["rows"][1] == {"row": 25, "where": f"{path}:25", "similarity": 1.0}
    assert "2 clusters, 3 rows repeat an earlier one; largest: row 10 and 2 more (row 22 at" in report.to_markdown()
    assert json.loads(report.to_json())["near_duplicates"] == clusters

    result = convert(path, to="sft", output=tmp_path / "sft.jsonl", dedup="near")
    assert (result.rows_in, result.rows_kept, result.rejected_by_rule) == (25, 22, {"TP406": 3})
    rejects = [json.loads(line) for line in open(result.rejects)]
    assert [(r["row"], r["rule"]) for r in rejects] == [(21, "TP406"), (22, "TP406"), (25, "TP406")]
    assert rejects[0]["reason"].startswith("nearly repeats row 3 (similarity ")
    assert not [f for f in inspect_dataset(result.output, near_duplicates=True).findings if f.rule == "TP406"]
    exact = convert(path, to="sft", output=tmp_path / "exact.jsonl", dedup="exact")
    assert exact.rejected_by_rule == {"TP401": 1}


def test_a_cluster_keeps_its_first_row_that_converts(write_jsonl, tmp_path):
    """When a cluster's first row is rejected by another rule, its next row is the one kept, not dropped too."""
    question = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                "How many clips did Natalia sell altogether in April and May?")
    answer = "Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May."
    broken = {"messages": [{"role": "user", "content": question}, {"role": "system", "content": "Be exact."},
                           {"role": "assistant", "content": answer}]}  # TP202: the system turn is not first
    rows = [broken, _chat(question, answer, system="Be exact."), _chat(question, answer + " Done.", system="Be exact.")]
    assert inspect_dataset(write_jsonl(rows), near_duplicates=True).near_duplicates["largest"][0]["kept"] == 1
    result = convert(write_jsonl(rows), to="sft", output=tmp_path / "sft.jsonl", dedup="near")
    rejects = [json.loads(line) for line in open(result.rejects)]
    assert [(r["row"], r["rule"]) for r in rejects] == [(1, "TP202"), (3, "TP406")]
    assert rejects[1]["reason"].startswith("nearly repeats row 2 (")


def test_near_duplicates_on_real_data_are_what_a_reader_calls_repeats(shared_data):
    """Glaive's tool-call demo (Apache-2.0), every row TP406 adds to TP401 read (rows of the slice; the source's in
    parentheses): 37 (97) is 33 (49) with the function `generate_random_password` named `generate_password`; 43
    (292) is 38 (114) with one distance 2448.2 for 2448.5; 39, 42 and 44 (218, 264, 293) repeat 33, 40 and 35 (49,
    234, 78) word for word, with the tools described in other words. The OpenAI DPO file from RewardBench 2 repeats
    prompts with the same chosen answer and another rejected one (rows 15 and 61 of the source): distinct pairs,
    not reported."""
    glaive = inspect_dataset(shared_data / "glaive_toolcall_en_demo.json", near_duplicates=True, max_rows=100)
    found = {f.rule: f for f in glaive.findings}
    assert sorted(set(found["TP406"].rows) - set(found["TP401"].rows)) == [37, 39, 42, 43, 44]
    details = {e["row"]: e["detail"] for e in found["TP406"].examples}
    assert details[37].startswith("nearly repeats row 33 (") and details[43].startswith("nearly repeats row 38 (")
    assert set(found["TP401"].rows) <= set(found["TP406"].rows)
    pairs = inspect_dataset(shared_data / "more" / "openai_dpo_rewardbench2_val_together.jsonl", near_duplicates=True)
    assert pairs.near_duplicates["clusters"] == 0


HYGIENE_RULES = ("TP210", "TP211", "TP212", "TP213")


def _hygiene(report):
    return {f.rule: f.rows for f in report.findings if f.rule in HYGIENE_RULES}


def test_text_hygiene_on_real_data_flags_what_a_reader_finds_broken(shared_data):
    """Every row flagged in the shipped data was read (rows of the slices; the source's in parentheses): `fiancÃ©`
    and a form feed (dpo 16, 38 (287)), `FranÃ§oise` and `Ã\\x89poque` (kto 34, 36 (246, 260)), `R&amp;B` and
    `&nbsp;` (dpo 34, 36 (183, 216)), ShareGPT's `</p><ol><li>` (kto 31 (125)), `E/A比值&lt;1` (the Chinese medical
    set, 31 (146)), a backspace and a form feed from a PDF in a math problem (RewardBench 2, 31 (81)), `&apos;` and
    lost bytes (�) in C4's web text. Alpaca's answers that write an HTML table or page (374, 559 of the source) are
    HTML on purpose and pass."""
    more = shared_data / "more"
    assert _hygiene(inspect_dataset(shared_data / "dpo_en_demo.json")) == {
        "TP210": [16], "TP212": [16, 38], "TP213": [34, 36]}
    assert _hygiene(inspect_dataset(shared_data / "kto_en_demo.json")) == {
        "TP210": [34, 36], "TP212": [36], "TP213": [31, 33]}
    assert _hygiene(inspect_dataset(shared_data / "c4_demo.jsonl")) == {
        "TP211": [11, 32, 33], "TP213": [31, 34, 35]}
    assert _hygiene(inspect_dataset(more / "openai_dpo_rewardbench2_val_together.jsonl")) == {"TP212": [31]}
    assert _hygiene(inspect_dataset(more / "sharegpt_medical_sft_zh.jsonl")) == {"TP213": [31]}
    assert _hygiene(inspect_dataset(shared_data / "alpaca_en_demo.json")) == {}
    mojibake = [f for f in inspect_dataset(shared_data / "dpo_en_demo.json").findings if f.rule == "TP210"][0]
    assert mojibake.examples[0]["detail"] == ("conversations[1].value looks like mojibake: 'fiancÃ©' "
                                              "(ftfy reads 'fiancé')")


def test_fix_text_gives_latex_its_backslash_back(shared_data, tmp_path):
    """dpo_en_demo row 38 (287 of the source) writes `\\(\\frac{y - 19}{x}\\)` with one backslash too few before `frac`: JSON reads a
    form feed and `rac`. The finding says so, and --fix-text writes `\\frac` again."""
    (control,) = [f for f in inspect_dataset(shared_data / "dpo_en_demo.json", max_rows=10).findings
                  if f.rule == "TP212"]
    detail = {e["row"]: e["detail"] for e in control.examples}[38]
    assert detail.endswith("where LaTeX's `\\frac` lost its backslash to an escape")
    fixed = convert(shared_data / "dpo_en_demo.json", to="dpo", output=tmp_path / "dpo.jsonl", fix_text=True)
    written = [text for line in open(fixed.output) for text in strings(json.loads(line))]
    assert any(r"\(\frac{y - 19}{x}\)" in text for text in written) and not any("\x0c" in t for t in written)
    assert sum(fixed.repaired.values()) == 2  # rows 16 (mojibake) and 38; nothing else is touched


def test_fix_text_repairs_mojibake_and_control_characters_and_counts_the_rows(shared_data, tmp_path):
    plain = convert(shared_data / "kto_en_demo.json", to="kto", output=tmp_path / "plain.jsonl")
    fixed = convert(shared_data / "kto_en_demo.json", to="kto", output=tmp_path / "fixed.jsonl", fix_text=True)
    assert plain.repaired == {} and plain.rows_out == fixed.rows_out
    assert fixed.repaired == {"text repaired by ftfy: mojibake, control characters (TP210/TP212, --fix-text)": 2}
    assert "mojibake repaired and control characters removed (ftfy)" in fixed.plan
    report = inspect_dataset(fixed.output)
    assert not {"TP210", "TP212"} & {f.rule for f in report.findings}
    assert {"TP213"} <= {f.rule for f in report.findings}  # entities are left for a person to read
    text = (tmp_path / "fixed.jsonl").read_text()
    assert "Françoise" in text and "Époque" in text and "FranÃ§oise" not in text


def test_the_fast_paths_find_what_the_full_checks_find(write_jsonl, tmp_path):
    """JSON lines through the typed fast path and Parquet through the column tests: a row is accepted unchecked
    only if it is plainly clean, so a file of clean rows with a few broken ones reports the same rows either way."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    clean = [{"prompt": f"Question {i} about naïve cafés?", "completion": f"Answer {i}, line one.\nLine two."}
             for i in range(300)]
    broken = {40: "CafÃ© au lait", 90: "a\x00b", 150: "lost \ufffd here", 210: "It&#39;s four", 260: "one<br>two"}
    rows = [{**row, "completion": broken.get(i + 1, row["completion"])} for i, row in enumerate(clean)]
    lines = write_jsonl(rows)
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    expected = {"TP210": [40], "TP211": [150], "TP212": [90], "TP213": [210, 260]}
    assert _hygiene(inspect_dataset(lines)) == expected
    assert _hygiene(inspect_dataset(parquet)) == expected


def test_answers_cut_off_by_a_length_cap_are_found_on_real_data_and_dropped(shared_data, tmp_path):
    """LLaMA-Factory's alpaca demo (from Alpaca-GPT4): its three longest outputs stop mid-sentence, one mid-word
    (`...it may need to be re`, `...your body`, `...While Bitcoin`, rows 32, 39, 41 of the slice, 125, 731, 899 of the
    source), where 3% of its answers end without punctuation; the KTO demo's two longest end `...opening` and
    `...Retrieved from <https` (5, 37 (279)). Read: cut by the generation's cap. GSM8K's answers all end on a number
    and none is flagged."""
    alpaca = shared_data / "alpaca_en_demo.json"
    assert not [f for f in inspect_dataset(alpaca).findings if f.rule == "TP214"]  # only on request
    report = inspect_dataset(alpaca, cut_off=True)
    (cut,) = [f for f in report.findings if f.rule == "TP214"]
    assert cut.rows == [32, 39, 41] and cut.severity == "warning"
    assert cut.examples[0]["detail"] == ("ends mid-sentence ('…need to be re') at 2649 characters, among the 3 "
                                         "longest answers, 3 of which end so")
    kto = inspect_dataset(shared_data / "kto_en_demo.json", cut_off=True)
    assert [f.rows for f in kto.findings if f.rule == "TP214"] == [[5, 37]]
    gsm8k = inspect_dataset(shared_data / "gsm8k_test.jsonl", cut_off=True)
    assert not [f for f in gsm8k.findings if f.rule == "TP214"]
    dropped = convert(alpaca, to="sft", output=tmp_path / "sft.jsonl", drop_cut_off=True)
    assert dropped.rejected_by_rule == {"TP214": 3} and dropped.rows_kept == dropped.rows_in - 3


def test_answers_cut_at_one_exact_length_are_a_character_cap(write_jsonl):
    words = " ".join(f"word{i}" for i in range(60))
    rows = [{"prompt": f"q{i}", "completion": f"Answer {i}: {words}."} for i in range(50)]
    for at in (10, 20, 30):  # an export that kept the first 300 characters
        rows[at - 1]["completion"] = (f"Answer {at}: {words} {words}")[:300].rstrip("d0123456789") + "d"
    assert len({len(rows[at - 1]["completion"]) for at in (10, 20, 30)}) == 1
    report = inspect_dataset(write_jsonl(rows), cut_off=True)
    (cut,) = [f for f in report.findings if f.rule == "TP214"]
    assert cut.rows == [10, 20, 30] and "as 2 other answers do" in cut.examples[0]["detail"]
