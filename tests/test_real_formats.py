"""Formats people have, read as the TRL type they stand for: real public samples where `../shared/data/more` holds
them, generated rows in the same shape otherwise; `inspect` and `convert` agree on every one."""

import json

import pytest

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from tests.conftest import SCAN_PATHS, write_for_scan_path
from tests.differential import check_dataset


def _read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def _verdicts(report) -> dict:
    return {method: (v["status"], v["rows_kept"], v["rejected_by_rule"]) for method, v in report.methods.items()}


def test_openai_preference_rows_are_pairs_with_an_explicit_prompt(shared_data, tmp_path):
    """Together/OpenAI preference fine-tuning JSONL (RewardBench 2, MIT): it was read as assistant-only messages
    and converted to SFT with the prompt moved aside."""
    path = shared_data / "more" / "openai_dpo_rewardbench2_val_together.jsonl"
    report = inspect_dataset(path)
    assert (report.dialect, report.type, report.format) == ("openai_preference", "preference", "conversational")
    assert _verdicts(report)["dpo"] == ("convertible", 31, {})
    result = convert(path, to="dpo", output=tmp_path / "dpo.jsonl")
    source, written = _read(path)[0], _read(result.output)[0]
    assert written["prompt"] == source["input"]["messages"]
    assert (written["chosen"], written["rejected"]) == (source["preferred_output"], source["non_preferred_output"])
    kto = [row for row in _read(convert(path, to="kto", output=tmp_path / "kto.jsonl").output)][:2]
    assert [(row["prompt"], row["label"]) for row in kto] == [(source["input"]["messages"], True),
                                                              (source["input"]["messages"], False)]


def test_openai_preference_keeps_the_tools_of_the_request(tmp_path, write_jsonl):
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    row = {"input": {"messages": [{"role": "user", "content": "2+2?"}], "tools": tools},
           "preferred_output": [{"role": "assistant", "content": "4"}],
           "non_preferred_output": [{"role": "assistant", "content": "5"}]}
    broken = {**row, "input": {"message": []}}
    path = write_jsonl([row, row | {"preferred_output": [{"role": "assistant", "content": "four"}]}, broken])
    report = inspect_dataset(path)
    assert [(f.rule, f.rows, f.examples[0]["detail"]) for f in report.findings] == [
        ("TP102", [3], "input has no `messages`")]
    written = _read(convert(path, to="dpo", output=tmp_path / "out.jsonl").output)
    assert written[0]["tools"] == tools and len(written) == 2


def ultrafeedback_rows(count: int, tied_at=(), other_question_at=()) -> list[dict]:
    """HuggingFaceH4/ultrafeedback_binarized's shape: a string prompt, and chosen/rejected whole conversations that
    open with that prompt's user turn."""
    rows = []
    for i in range(1, count + 1):
        question = f"What is {i} times 3?"
        opening = {"role": "user", "content": question}
        rejected_opening = {"role": "user", "content": "Another question?"} if i in other_question_at else opening
        rows.append({"prompt": question, "prompt_id": f"id{i}",
                     "chosen": [opening, {"role": "assistant", "content": str(3 * i)}],
                     "rejected": [rejected_opening, {"role": "assistant", "content": "I cannot say."}],
                     "messages": [opening, {"role": "assistant", "content": str(3 * i)}],
                     "score_chosen": 9.0, "score_rejected": 9.0 if i in tied_at else 4.0})
    return rows


def test_ultrafeedback_rows_lose_the_prompt_turn_from_each_side(write_jsonl, tmp_path, tiny_model):
    """It was refused by `inspect` (TP107) while `convert --to dpo` wrote the prompt twice: as `prompt` and as
    the first turn of each side."""
    path = write_jsonl(ultrafeedback_rows(8, tied_at=(3,), other_question_at=(6,)))
    report = inspect_dataset(path)
    assert (report.dialect, report.type) == ("ultrafeedback", "preference")
    assert [(f.rule, f.rows) for f in report.findings if f.rule != "TP401"] == [("TP305", [6]), ("TP306", [3])]
    verdicts = _verdicts(report)
    assert verdicts["dpo"] == ("convertible", 6, {"TP305": 1, "TP306": 1})
    assert verdicts["sft"] == ("convertible", 7, {"TP305": 1})  # a tie still has a fine chosen answer
    written = _read(convert(path, to="dpo", output=tmp_path / "dpo.jsonl").output)
    assert written[0]["prompt"] == [{"role": "user", "content": "What is 1 times 3?"}]
    assert written[0]["chosen"] == [{"role": "assistant", "content": "3"}]
    assert all(row["chosen"][0]["role"] == "assistant" for row in written)
    sft = _read(convert(path, to="sft", output=tmp_path / "sft.jsonl").output)
    assert sft[0]["completion"] == [{"role": "assistant", "content": "3"}]
    from transformers import AutoTokenizer

    assert check_dataset(path, AutoTokenizer.from_pretrained(tiny_model)) == []


def test_a_prompt_set_of_user_turns_is_prompt_only_data_for_grpo(write_jsonl, tmp_path):
    prompts = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"{i}+1?"}]}
               for i in range(5)]
    report = inspect_dataset(write_jsonl(prompts))
    assert (report.type, report.dialect) == ("prompt_only", "prompt_messages") and report.valid
    assert report.methods["grpo"]["status"] == "convertible" and report.methods["sft"]["status"] == "incompatible"
    written = _read(convert(write_jsonl(prompts), to="grpo", output=tmp_path / "grpo.jsonl").output)
    assert written[0] == {"prompt": prompts[0]["messages"]}


def test_an_unanswered_conversation_among_answered_ones_is_still_no_assistant_turn(write_jsonl):
    chats = [{"messages": [{"role": "user", "content": f"{i}?"}, {"role": "assistant", "content": f"{i}."}]}
             for i in range(5)]
    chats[2] = {"messages": [{"role": "user", "content": "Hello?"}]}
    report = inspect_dataset(write_jsonl(chats))
    assert [(f.rule, f.rows) for f in report.findings] == [("TP204", [3])]
    assert report.methods["sft"]["rejected_by_rule"] == {"TP204": 1}


def test_math_problems_with_worked_solutions_keep_their_short_answer_for_rewards(shared_data, tmp_path):
    """MATH-500 (openr, MIT): `problem`, a worked `solution` and the short final `answer`."""
    path = shared_data / "more" / "math500_test.jsonl"
    report = inspect_dataset(path)
    assert (report.dialect, report.type, report.valid) == ("question_answer", "prompt_completion", True)
    source = _read(path)[0]
    grpo = _read(convert(path, to="grpo", output=tmp_path / "grpo.jsonl").output)[0]
    assert grpo["prompt"] == [{"role": "user", "content": source["problem"]}]
    assert (grpo["reference"], grpo["answer"]) == (source["solution"], source["answer"])


def test_pretty_printed_objects_one_after_another_are_rows(tmp_path):
    path = tmp_path / "records.json"
    path.write_text("".join(json.dumps({"instruction": f"Add {i} and {i}", "input": "", "output": str(2 * i)},
                                       indent=2) + "\n" for i in range(3)))
    report = inspect_dataset(path)
    assert (report.rows, report.dialect, report.valid) == (3, "alpaca", True)


def test_data_of_no_known_shape_gets_one_finding_and_a_checked_mapping(write_jsonl, tmp_path):
    path = write_jsonl([{"query": f"{i}+{i}?", "target": str(2 * i)} for i in range(4)])
    report = inspect_dataset(path)
    (finding,) = report.findings
    assert (finding.rule, finding.count, finding.rows) == ("TP404", 4, [])
    assert finding.message.endswith(f"uv run inspect --dataset {path} --map query=prompt --map target=completion")
    assert report.methods["sft"]["reason"] == finding.message
    mapping = ("query=prompt", "target=completion")
    preview = inspect_dataset(path, rename=mapping)
    assert preview.valid and preview.methods["sft"]["command"].endswith("--map query=prompt --map target=completion")
    result = convert(path, to="sft", output=tmp_path / "sft.jsonl", rename=mapping)
    assert (result.rows_kept, result.rows_rejected) == (preview.methods["sft"]["rows_kept"], 0) == (4, 0)


def test_a_tool_call_answer_is_the_grpo_reference(shared_data, tmp_path):
    """OpenAI chat with tools (Microsoft's Zava retail demo, MIT): every row ends in an assistant tool call, its
    arguments a JSON string as the API writes them; the reference holds them as the object they encode."""
    path = shared_data / "more" / "openai_chat_tools_zava_retail_valid.jsonl"
    source = _read(path)[0]
    grpo = _read(convert(path, to="grpo", output=tmp_path / "grpo.jsonl").output)[0]
    [expected] = source["messages"][-1]["tool_calls"]
    assert isinstance(expected["function"]["arguments"], str)
    expected["function"]["arguments"] = json.loads(expected["function"]["arguments"])
    assert json.loads(grpo["reference"]) == [expected]
    assert grpo["tools"] == source["tools"]


def test_llamafactory_loss_weights_keep_user_turns_out_of_the_loss(shared_data, tmp_path):
    """LLaMA-Factory's v1_sft_demo (Apache-2.0): `loss_weight: 0.0` on every user turn. The weights vanished in
    conversion, and SFT on the `messages` trained the user turns too."""
    path = shared_data / "v1_sft_demo.jsonl"
    report = inspect_dataset(path)
    assert (report.dialect, report.type) == ("turn_flags", "language_modeling")
    (flags,) = [f for f in report.findings if f.rule == "TP208"]
    assert (flags.count, flags.examples[0]["detail"]) == (32, "trains turn(s) 2 of 2")
    result = convert(path, to="sft", output=tmp_path / "sft.jsonl")
    first, source = _read(result.output)[0], _read(path)[0]
    assert first["prompt"] == [{"role": "user", "content": "hi"}]  # the untrained turn is prompt, not completion
    assert first["completion"] == [{"role": "assistant", "content": source["messages"][1]["content"][0]["value"]}]
    assert check_dataset(path) == []


def test_each_trained_turn_is_one_completion_and_untrainable_flags_are_refused(write_jsonl, tmp_path):
    """OpenAI's `weight: 0` on a bad answer in the middle, axolotl's `train`, and flags TRL cannot express."""
    def turn(role, text, **flag):
        return {"role": role, "content": text, **flag}

    rows = [
        {"messages": [turn("user", "2+2?"), turn("assistant", "5", weight=0), turn("user", "Sure?"),
                      turn("assistant", "4", weight=1)]},
        {"messages": [turn("user", "Hi", train=False), turn("assistant", "Hello", train=True),
                      turn("user", "Bye"), turn("assistant", "Bye!")]},
        {"messages": [turn("user", "Hi", weight=1), turn("assistant", "Hello", weight=1)]},
        {"messages": [turn("user", "Hi"), turn("assistant", "Hello", weight=0.5)]},
        {"messages": [turn("user", "Hi"), turn("assistant", "Hello", weight=0)]},
    ]
    path = write_jsonl(rows)
    report = inspect_dataset(path)
    assert report.methods["sft"]["rejected_by_rule"] == {"TC105": 3}
    assert report.methods["grpo"]["rows_kept"] == 5
    result = convert(path, to="sft", output=tmp_path / "sft.jsonl")
    assert (result.rows_kept, result.rows_out) == (2, 3)
    written = _read(result.output)
    assert [(len(r["prompt"]), r["completion"][0]["content"]) for r in written] == [(3, "4"), (1, "Hello"),
                                                                                    (3, "Bye!")]
    assert written[0]["prompt"][1] == {"role": "assistant", "content": "5"}  # seen as context, never trained
    rejects = [json.loads(line) for line in open(result.rejects)]
    assert [r["reason"] for r in rejects] == ["messages[0] is a trained user turn",
                                              "messages[1] has weight 0.5; TRL trains a turn fully or not at all",
                                              "no turn is trained"]
    assert check_dataset(path) == []


def test_colossalchat_kto_rows_with_from_and_content_and_one_completion_message(shared_data, tmp_path, write_jsonl):
    """ColossalChat's KTO test file (Apache-2.0): `from` beside `content`, and the completion one object."""
    report = inspect_dataset(shared_data / "more" / "kto_colossalchat_test.jsonl")
    assert (report.dialect, report.type, report.valid) == ("colossalchat", "unpaired_preference", True)
    assert [f.rule for f in report.findings] == ["TP402"]  # its one row is labelled true
    (row,) = _read(shared_data / "more" / "kto_colossalchat_test.jsonl")
    flipped = write_jsonl([row, {**row, "completion": {"from": "assistant", "content": "bad."}, "label": False}])
    written = _read(convert(flipped, to="kto", output=tmp_path / "kto.jsonl").output)
    assert written[0]["prompt"][0] == {"role": "user", "content": row["prompt"][0]["content"]}
    assert written[0]["completion"] == [{"role": "assistant", "content": "impressive."}]


def test_conversations_of_human_assistant_exchanges(write_jsonl, tmp_path):
    """Firefly/BELLE-style `conversation` of {human, assistant} objects (generated rows in that shape)."""
    rows = [{"conversation_id": i, "conversation": [{"human": f"Q{i}", "assistant": f"A{i}"},
                                                    {"human": "More?", "assistant": "Done."}]} for i in range(3)]
    rows[1]["conversation"][1]["assistant"] = " "
    path = write_jsonl(rows)
    report = inspect_dataset(path)
    assert report.dialect == "turn_pairs" and [(f.rule, f.rows) for f in report.findings] == [("TP201", [2])]
    written = _read(convert(path, to="sft", output=tmp_path / "sft.jsonl").output)
    assert written[0]["messages"][:2] == [{"role": "user", "content": "Q0"}, {"role": "assistant", "content": "A0"}]
    assert len(written) == 2


def test_context_with_one_answer_message_for_kto_and_two_for_pairs(write_jsonl, tmp_path):
    context = [{"role": "user", "content": "Say hi."}]
    kto = [{"context": context, "answer": {"role": "assistant", "content": text}, "is_desirable": good}
           for text, good in (("Hi!", True), ("No.", False))]
    written = _read(convert(write_jsonl(kto), to="kto", output=tmp_path / "kto.jsonl").output)
    assert [(row["prompt"], row["label"]) for row in written] == [(context, True), (context, False)]
    pairs = [{"context": context + [{"role": "bot", "content": "Hello."}, {"role": "user", "content": "Again."}],
              "answer_w": {"role": "bot", "content": "Hi!"}, "answer_l": {"role": "bot", "content": "No."}},
             {"context": context, "answer_w": {"role": "robot", "content": "Hi!"},
              "answer_l": {"role": "bot", "content": "No."}}]
    path = write_jsonl(pairs)
    report = inspect_dataset(path)
    assert report.dialect == "context_answer" and [(f.rule, f.rows) for f in report.findings] == [("TP106", [2])]
    (written,) = _read(convert(path, to="dpo", output=tmp_path / "dpo.jsonl").output)
    assert written["prompt"][1] == {"role": "assistant", "content": "Hello."}
    assert written["chosen"] == [{"role": "assistant", "content": "Hi!"}]


def test_bfcl_questions_are_grpo_prompts_with_json_schema_tools(shared_data, tmp_path):
    """BFCL v4 simple_python (gorilla, Apache-2.0): JSON lines in a `.json` file, `question` a list of turns,
    `function` schemas written with Python type names."""
    path = shared_data / "more" / "bfcl_v4_simple_python.json"
    report = inspect_dataset(path)
    assert (report.dialect, report.type, report.rows, report.valid) == ("bfcl", "prompt_only", 30, True)
    source = _read(path)[0]
    written = _read(convert(path, to="grpo", output=tmp_path / "grpo.jsonl").output)
    assert written[0]["prompt"] == source["question"][0] and written[0]["id"] == source["id"]
    parameters = written[0]["tools"][0]["function"]["parameters"]
    assert parameters["type"] == "object" and parameters["properties"]["base"]["type"] == "integer"
    types = json.dumps([row["tools"] for row in written])
    assert '"dict"' not in types and '"float"' not in types and '"tuple"' not in types


@pytest.mark.parametrize("kind", ["jsonl", "gzip", "parquet"])
def test_rows_that_differ_only_in_an_id_are_duplicates_on_every_path(kind, tmp_path):
    """UltraFeedback's `prompt_id`, MATH's `unique_id`: a repeat with a fresh id is still a repeat."""
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt_id": f"p{i}", "messages": [{"role": "user", "content": f"Q{i % 40}"},
                                                {"role": "assistant", "content": f"A{i % 40}"}]}
            for i in range(1200)]  # past the first rows: the fast paths take most of them
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    path = tmp_path / {"jsonl": "d.jsonl", "gzip": "d.jsonl.gz", "parquet": "d.parquet"}[kind]
    if kind == "jsonl":
        path.write_text(lines)
    elif kind == "gzip":
        path.write_bytes(gzip.compress(lines.encode()))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    (finding,) = inspect_dataset(path).findings
    assert (finding.rule, finding.count, finding.rows[:2]) == ("TP401", 1160, [41, 42])
    result = convert(path, to="sft", output=tmp_path / "out.jsonl", dedup=True)
    assert (result.rows_kept, result.rejected_by_rule) == (40, {"TP401": 1160})


def test_math_shepherd_and_prm800k_step_labels_are_stepwise_supervision(shared_data):
    """Math-Shepherd and raw PRM800K samples (openr, MIT): step labels in their native shapes."""
    from trlprep.inspector.dialects import classify_row, to_trl

    for name, dialect in (("math_shepherd_samples_openr.jsonl", "math_shepherd"),
                          ("prm800k_raw_samples_openr.jsonl", "prm800k")):
        report = inspect_dataset(shared_data / "more" / name)
        assert (report.dialect, report.type, report.valid) == (dialect, "stepwise_supervision", True)
    shepherd = _read(shared_data / "more" / "math_shepherd_samples_openr.jsonl")[0]
    row = to_trl(shepherd, classify_row(shepherd))
    assert row["prompt"].startswith("Janet pays $40/hour") and row["completions"][0].startswith("Step 1: Janet")
    assert len(row["completions"]) == len(row["labels"]) == shepherd["input"].count("ки")
    prm = _read(shared_data / "more" / "prm800k_raw_samples_openr.jsonl")[0]
    row = to_trl(prm, classify_row(prm))
    # Step 2 has no chosen completion (all five rated -1) but the labeler's own: it is the trajectory's step.
    assert row["labels"] == [True] * 6 and row["answer"] == "29"
    assert row["completions"][1] == prm["label"]["steps"][1]["human_completion"]["text"]


def test_mt_bench_turns_give_their_first_question_as_a_grpo_prompt(write_jsonl, tmp_path):
    rows = [{"question_id": 81, "category": "writing", "turns": ["Write a travel blog post.", "Rewrite it in verse."]},
            {"question_id": 82, "category": "writing", "turns": ["  "]}]
    path = write_jsonl(rows)
    report = inspect_dataset(path)
    assert (report.dialect, report.type) == ("mt_bench", "prompt_only")
    assert [(f.rule, f.rows) for f in report.findings] == [("TP201", [2])]
    (written,) = _read(convert(path, to="grpo", output=tmp_path / "grpo.jsonl").output)
    assert written["prompt"] == [{"role": "user", "content": "Write a travel blog post."}]
    assert written["turns"] == rows[0]["turns"] and written["question_id"] == 81


MMLU = "mmlu_redux_college_computer_science.csv"


@pytest.mark.parametrize("name", [MMLU, "mmlu_redux_high_school_macroeconomics_semicolon.csv"])
def test_multiple_choice_questions_train_on_the_right_option_not_its_index(shared_data, tmp_path, name):
    """MMLU-Redux CSV (CC-BY-4.0): `choices` a Python list in a cell, `answer` an index. It was read as
    question/answer, so SFT learned to answer a question it never saw the options of with "2"."""
    path = shared_data / "more" / name
    report = inspect_dataset(path)
    assert (report.dialect, report.type, report.rows) == ("multiple_choice", "prompt_completion",
                                                           31 if name == MMLU else 30)
    # Row 31's (the source's 95) options are '1' '2' '3' '4' and its answer "2": option C by index (MMLU's convention, and the
    # right answer), option B by text. A cell cannot say which: refused, not guessed.
    assert [(f.rule, f.rows) for f in report.findings] == ([("TP102", [31])] if name == MMLU else [])
    assert "choices" not in report.extra_columns and "answer" not in report.extra_columns
    written = _read(convert(path, to="sft", output=tmp_path / "sft.jsonl").output)
    first = written[0]
    if name == MMLU:
        assert first["prompt"][0]["content"].endswith(
            "N > 1 ?\n\nA. h <= log2(N)\nB. h = 1/c * log2(N)\nC. h < c log2(N)\nD. h > c log2(N)")
        assert (first["completion"], first["answer"]) == ([{"role": "assistant", "content": "C. h < c log2(N)"}], "C")
    assert all(row["completion"][0]["content"][:3] in ("A. ", "B. ", "C. ", "D. ") for row in written)
    assert check_dataset(path) == []


def test_a_multiple_choice_answer_that_names_no_option_is_refused(write_jsonl, tmp_path):
    rows = [{"question": "Sky?", "choices": ["blue", "green"], "answer": answer} for answer in (0, "B", "blue", 2, "C")]
    path = write_jsonl(rows)
    report = inspect_dataset(path)
    assert [(f.rule, f.rows) for f in report.findings] == [("TP102", [4, 5])]
    assert report.findings[0].examples[0]["detail"] == (
        "answer 2 names none of the 2 options, or more than one (an index from 0, a letter A-B, or an option's "
        "text)")
    written = _read(convert(path, to="grpo", output=tmp_path / "grpo.jsonl").output)
    assert [row["answer"] for row in written] == ["A", "B", "A"]
    arc = write_jsonl([{"question": "Ice is?", "choices": {"text": ["dry", "wet"], "label": ["A", "B"]},
                        "answerKey": "B"}])
    (row,) = _read(convert(arc, to="sft", output=tmp_path / "arc.jsonl").output)
    assert row["completion"] == [{"role": "assistant", "content": "B. wet"}]
    ambiguous = write_jsonl([{"question": "1+1?", "choices": "['1', '2', '3', '4']", "answer": "2"}])
    assert inspect_dataset(ambiguous).findings[0].rule == "TP102"  # option C by index, option B by text


def test_truthfulqa_answers_in_csv_cells_are_best_versus_first_incorrect(tmp_path):
    """TruthfulQA's CSV layout (generated rows in it): `Best Answer`, and `Incorrect Answers` as `a; b` cells."""
    path = tmp_path / "TruthfulQA.csv"
    path.write_text(
        "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
        "Adversarial,Misconceptions,Where did fortune cookies originate?,The precise origin is unclear,"
        "The precise origin is unclear; San Francisco,Fortune cookies originated in China; In Japan,https://x\n"
        "Adversarial,Misconceptions,Why do veins appear blue?,Blue light does not penetrate deeply,,,https://y\n")
    report = inspect_dataset(path)
    assert (report.dialect, report.type) == ("graded_answers", "preference")
    assert [(f.rule, f.rows) for f in report.findings] == [("TP302", [2])]
    (pair,) = _read(convert(path, to="dpo", output=tmp_path / "dpo.jsonl").output)
    assert (pair["chosen"][0]["content"], pair["rejected"][0]["content"]) == (
        "The precise origin is unclear", "Fortune cookies originated in China")


def test_a_chain_of_reasoning_is_the_completion_and_its_result_the_reward_answer(write_jsonl, tmp_path):
    path = write_jsonl([{"question": "Tom has 3 apples and buys 2. How many?", "chain": "3 + 2 = 5", "result": "5"}])
    (row,) = _read(convert(path, to="grpo", output=tmp_path / "grpo.jsonl").output)
    assert (row["reference"], row["answer"]) == ("3 + 2 = 5", "5") and "result" not in row


def test_several_outputs_of_one_instruction_are_refused_not_guessed(write_jsonl):
    report = inspect_dataset(write_jsonl([{"instruction": "Say hi", "input": "", "output": ["Hi!", "Hello"]}]))
    assert report.findings[0].examples[0]["detail"].startswith(
        "output is a list of 2 strings, expected one: several answers are samples or a ranking")
    assert all(v["status"] == "incompatible" for v in report.methods.values())


def test_math_aps_prefix_values_are_named_and_refused_not_read_row_by_row(shared_data):
    """MATH-APS (openr, MIT): Monte-Carlo values of solution prefixes, a search tree rather than trajectories."""
    path = shared_data / "more" / "math_aps_samples_openr.jsonl"
    report = inspect_dataset(path)
    assert all(v["status"] == "incompatible" for v in report.methods.values())
    (finding,) = report.findings
    assert finding.rule == "TP404" and finding.message.startswith("MATH-APS Monte-Carlo values")
    assert check_dataset(path) == []


OASST1 = "oasst1_en_validation_messages.jsonl"


def test_openassistant_messages_are_read_as_prompts_with_ranked_replies(shared_data, tmp_path):
    """oasst1's flat export (TurkuNLP/oasst-fi's copy, Apache-2.0): in its slice 57 messages of 7 trees, filtered to
    English upstream, so some threads have gaps. It was refused as text beside a `labels` column."""
    path = shared_data / "more" / OASST1
    messages = _read(path)
    ids = {m["message_id"] for m in messages}
    orphans = sum(m["role"] == "assistant" and m["parent_id"] not in ids for m in messages)
    prompts = sum(m["role"] == "prompter" for m in messages)
    report = inspect_dataset(path)
    assert (report.dialect, report.type, report.rows, orphans) == ("message_tree", "preference", prompts + 1, 1)
    assert {f.rule for f in report.findings} == {"TP113", "TP209", "TP302"}
    by_id = {m["message_id"]: m for m in messages}
    sft = _read(convert(path, to="sft", output=tmp_path / "sft.jsonl").output)
    assert len(sft) == report.methods["sft"]["rows_kept"]
    for row in sft:  # each prompt's best-ranked reply that is neither deleted nor failed review
        replies = [m for m in messages if m["parent_id"] == row["message_id"]
                   and not m["deleted"] and m["review_result"] is not False]
        ranked = [m for m in replies if m["rank"] is not None]
        best = min(ranked, key=lambda m: m["rank"]) if ranked else replies[0]
        assert row["completion"] == [{"role": "assistant", "content": best["text"]}]
        assert row["prompt"][-1] == {"role": "user", "content": by_id[row["message_id"]]["text"]}
    first = sft[0]
    assert first["prompt"] == [{"role": "user", "content": "What do you think about ChatGPT?"}]
    dpo = _read(convert(path, to="dpo", output=tmp_path / "dpo.jsonl").output)
    ranks = {m["text"]: m["rank"] for m in messages if m["role"] == "assistant"}
    assert all(ranks[row["chosen"][0]["content"]] < ranks[row["rejected"][0]["content"]] for row in dpo)
    assert check_dataset(path) == []


def test_the_backend_seed_trees_link_by_user_message_id_and_have_no_ranks(shared_data, tmp_path):
    """The OpenAssistant backend's realistic seed data (Apache-2.0), a JSON array: it was called ready for SFT, each
    message's text a document."""
    path = shared_data / "more" / "oasst_backend_realistic_seed_data.json"
    report = inspect_dataset(path)
    assert (report.dialect, report.rows) == ("message_tree", 21)
    assert (report.methods["sft"]["status"], report.methods["dpo"]["status"]) == ("convertible", "incompatible")
    assert report.methods["dpo"]["rejected_by_rule"] == {"TP308": 21}
    sft = _read(convert(path, to="sft", output=tmp_path / "sft.jsonl").output)
    turns = [row for row in sft if len(row["prompt"]) == 3][0]
    assert [m["role"] for m in turns["prompt"]] == ["user", "assistant", "user"]
    assert check_dataset(path) == []


def test_deleted_and_orphaned_messages_are_accounted_for(write_jsonl, tmp_path):
    def message(i, parent, role, text, rank=None, **more):
        return {"message_id": i, "parent_id": parent, "role": role, "text": text, "rank": rank, **more}

    path = write_jsonl([
        message("q", None, "prompter", "2+2?"),
        message("a", "q", "assistant", "4", 0),
        message("b", "q", "assistant", "5", 1),
        message("c", "q", "assistant", "22", 2, deleted=True),
        message("q2", "c", "prompter", "Really?"),  # below a deleted reply
        message("a2", "q2", "assistant", "Yes.", 0),
        message("x", "gone", "assistant", "An answer to a prompt not in the file.", 0),
        message("q3", "a", "prompter", "Why?"),
        message("a3", "q3", "assistant", "Counting.", 0, review_result=False),
    ])
    report = inspect_dataset(path)
    assert report.rows == 4  # three prompts and the orphan reply
    assert sorted((f.rule, tuple(f.rows)) for f in report.findings) == [
        ("TP113", (5, 7)), ("TP209", (1, 8)), ("TP302", (8,))]
    assert report.findings[0].examples[0]["where"].endswith(":5")
    result = convert(path, to="dpo", output=tmp_path / "dpo.jsonl")
    assert (result.rows_in, result.rows_kept, result.rejected_by_rule) == (4, 1, {"TP113": 2, "TP302": 1})
    (pair,) = _read(result.output)
    assert (pair["chosen"], pair["rejected"]) == ([{"role": "assistant", "content": "4"}],
                                                  [{"role": "assistant", "content": "5"}])


def test_tool_calls_come_out_as_trl_documents_them(write_jsonl, tmp_path):
    """ShareGPT's function_call/observation turns with a `tools` JSON string of bare function schemas (as
    LLaMA-Factory's glaive demo writes them) become TRL's documented tool-calling form, which tool-aware chat
    templates render: `tools` as `{"type": "function", "function": ...}` (what transformers' `get_json_schema`
    writes) and each tool result named after its call."""
    from transformers import AutoTokenizer
    from transformers.utils import get_json_schema

    from tests.tiny_model import TOOL_CHAT_TEMPLATE, build_tiny_model

    def control_light(room: str, state: str) -> str:
        """Turn a light on or off.

        Args:
            room: The room.
            state: on or off.
        """
        return state

    schema = get_json_schema(control_light)
    row = {"conversations": [
        {"from": "human", "value": "Turn on the living room lights."},
        {"from": "function_call", "value": '{"name": "control_light", "arguments": {"room": "living room", '
                                           '"state": "on"}}'},
        {"from": "observation", "value": "The lights in the living room are now on."},
        {"from": "gpt", "value": "Done!"}], "tools": json.dumps([schema["function"]])}
    (written,) = _read(convert(write_jsonl([row]), to="sft", output=tmp_path / "sft.jsonl").output)
    assert written["tools"] == [schema]
    assert written["messages"] == [
        {"role": "user", "content": "Turn on the living room lights."},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
            "name": "control_light", "arguments": {"room": "living room", "state": "on"}}}]},
        {"role": "tool", "content": "The lights in the living room are now on.", "name": "control_light"},
        {"role": "assistant", "content": "Done!"}]
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "model", template=TOOL_CHAT_TEMPLATE))
    rendered = tokenizer.apply_chat_template(written["messages"], tools=written["tools"], tokenize=False)
    assert "tool control_light: Turn a light on or off." in rendered
    assert "<|im_start|>tool control_light\nThe lights in the living room are now on." in rendered


@pytest.mark.parametrize("kind", SCAN_PATHS)
def test_a_sharegpt_system_column_becomes_the_first_message(kind, tmp_path):
    """LLaMA-Factory's ShareGPT format keeps the system prompt in a `system` column, which TRL reads no more than
    any other extra column: it would train every row without it. Clean rows, on the fast paths too."""
    rows = [{"conversations": [{"from": "human", "value": f"Hi {i}"}, {"from": "gpt", "value": "Hello"}],
             "system": "Answer briefly."} for i in range(300)]
    path = write_for_scan_path(kind, rows, tmp_path)
    report = inspect_dataset(path, workers=2 if kind == "parallel" else 1)
    assert (report.dialect, report.findings, report.methods["sft"]["rows_kept"]) == ("sharegpt", [], 300)
    written = _read(convert(path, to="sft", output=tmp_path / "sft.jsonl").output)
    assert len(written) == 300 and all(row["messages"][0] == {"role": "system", "content": "Answer briefly."}
                                       and "system" not in row for row in written)
