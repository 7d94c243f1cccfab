"""`convert`: every conversion on real or crafted rows, the ledger, the options, the safety of the writes."""

import json

import pytest
from click.testing import CliRunner

from trlprep.converters import DataRefused, OutputError, convert
from trlprep.converters.cli import main
from trlprep.inspector import SourceError, inspect_dataset
from tests.conftest import REPO
from tests.test_detection import DIALECTS

U = {"role": "user", "content": "Name a colour."}
A = {"role": "assistant", "content": "Blue."}
B = {"role": "assistant", "content": "Seven."}


def read_jsonl(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def convert_ready(source, to, output, **options):
    """Convert, then check as a user would: the output inspects `ready` for the method, the ledger balances."""
    result = convert(source, to=to, output=output, **options)
    assert result.rows_in == result.rows_kept + result.rows_rejected
    for path in result.outputs.values():
        report = inspect_dataset(path, method=to)
        assert report.methods[to]["status"] == "ready", (path, report.methods[to], report.findings)
    return result


SHARED_CONVERSIONS = [
    ("alpaca_en_demo.json", "sft", {}, ["prompt", "completion"], 41),
    ("alpaca_en_demo.json", "sft", {"style": "messages"}, ["messages"], 41),
    ("alpaca_en_demo.json", "grpo", {}, ["prompt", "reference"], 41),
    ("dpo_en_demo.json", "dpo", {}, ["prompt", "chosen", "rejected"], 38),
    ("dpo_en_demo.json", "reward", {}, ["prompt", "chosen", "rejected"], 38),
    ("dpo_en_demo.json", "kto", {}, ["prompt", "completion", "label"], 76),
    ("dpo_en_demo.json", "sft", {}, ["prompt", "completion"], 38),
    ("dpo_en_demo.json", "grpo", {}, ["prompt", "reference"], 38),
    ("kto_en_demo.json", "kto", {}, ["prompt", "completion", "label"], 37),
    ("kto_en_demo.json", "sft", {}, ["prompt", "completion"], 21),
    ("glaive_toolcall_en_demo.json", "sft", {}, ["messages", "tools"], 43),  # row 41: TP602
    ("glaive_toolcall_en_demo.json", "grpo", {}, ["prompt", "reference", "tools"], 43),
    ("v1_sft_demo.jsonl", "sft", {}, ["prompt", "completion"], 32),  # its loss weights: one row per trained turn
    ("gsm8k_test.jsonl", "sft", {}, ["prompt", "completion"], 30),
    ("gsm8k_test.jsonl", "grpo", {}, ["prompt", "reference", "answer"], 30),
    ("c4_demo.jsonl", "sft", {}, ["text"], 35),
]


@pytest.mark.parametrize("name,to,options,columns,rows_out", SHARED_CONVERSIONS,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in SHARED_CONVERSIONS])
def test_shared_dataset_converts_to_ready_data(shared_data, tmp_path, name, to, options, columns, rows_out):
    result = convert_ready(shared_data / name, to, tmp_path / "out.jsonl", **options)
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert len(rows) == result.rows_out == rows_out
    assert set(rows[0]) == set(columns)


def test_sharegpt_roles_and_tool_calls_are_mapped(shared_data, tmp_path):
    convert_ready(shared_data / "glaive_toolcall_en_demo.json", "sft", tmp_path / "out.jsonl")
    rows = read_jsonl(tmp_path / "out.jsonl")
    roles = {m["role"] for row in rows for m in row["messages"]}
    assert roles <= {"system", "user", "assistant", "tool"}
    # parsed from ShareGPT's JSON strings; an empty string is no tools, written as null
    assert all(isinstance(row["tools"], list) or row["tools"] is None for row in rows)
    assert sum(row["tools"] is None for row in rows) == 43 - 28
    # 29 rows have tools; row 41's call breaks its schema (TP602), so it is rejected
    assert sum(1 for row in rows if row["tools"] and row["tools"][0]["function"]["name"]) == 28
    assert all(tool["type"] == "function" for row in rows for tool in row["tools"] or ())  # TRL's documented form
    results = [m for row in rows for m in row["messages"] if m["role"] == "tool"]
    assert results and all(m["name"] for m in results)  # named after the call they answer
    calls = [m for row in rows for m in row["messages"] if "tool_calls" in m]
    assert calls and all(isinstance(c["tool_calls"][0]["function"]["arguments"], dict) for c in calls)


def test_gsm8k_final_answer_in_its_own_column(shared_data, tmp_path):
    convert_ready(shared_data / "gsm8k_test.jsonl", "grpo", tmp_path / "out.jsonl")
    first = read_jsonl(tmp_path / "out.jsonl")[0]
    assert first["answer"] == "18"
    assert first["prompt"][0]["role"] == "user" and first["reference"].endswith("#### 18")


def test_kto_unpairs_each_pair_and_sft_keeps_desirable_rows(shared_data, tmp_path):
    result = convert_ready(shared_data / "dpo_en_demo.json", "kto", tmp_path / "kto.jsonl")
    rows = read_jsonl(tmp_path / "kto.jsonl")
    assert [r["label"] for r in rows[:2]] == [True, False] and rows[0]["prompt"] == rows[1]["prompt"]
    assert (result.rows_kept, result.rows_out) == (38, 76)
    sft = convert_ready(shared_data / "kto_en_demo.json", "sft", tmp_path / "sft.jsonl")
    assert sft.rejected_by_rule == {"TC101": 16}
    rejects = read_jsonl(sft.rejects)
    assert len(rejects) == 16 and rejects[0]["content"]["label"] is False


@pytest.mark.parametrize("row,dialect,data_type,fmt,implicit", DIALECTS,
                         ids=[f"{d[1]}-{d[2]}-{i}" for i, d in enumerate(DIALECTS)])
@pytest.mark.parametrize("to", ["sft", "dpo", "grpo", "reward", "kto"])
def test_inspect_verdicts_and_convert_agree(tmp_path, row, dialect, data_type, fmt, implicit, to):
    """What `inspect` calls ready or convertible, `convert` turns into ready data; what it calls
    incompatible, `convert` refuses."""
    rows = [row, {**row, "row_id": 2}]
    status = inspect_dataset(rows, method=to).methods[to]["status"]
    if status == "incompatible":
        with pytest.raises(DataRefused):
            convert(rows, to=to, output=tmp_path / "out.jsonl")
        assert not (tmp_path / "out.jsonl").exists()
    else:
        result = convert_ready(rows, to, tmp_path / "out.jsonl")
        assert result.rows_rejected == 0


def test_converting_converted_data_changes_nothing(shared_data, tmp_path):
    for name, to in [("dpo_en_demo.json", "dpo"), ("alpaca_en_demo.json", "sft"), ("kto_en_demo.json", "kto"),
                     ("gsm8k_test.jsonl", "grpo"), ("dpo_en_demo.json", "reward")]:
        once, twice = tmp_path / f"{to}-1.jsonl", tmp_path / f"{to}-2.jsonl"
        convert(shared_data / name, to=to, output=once)
        convert(once, to=to, output=twice)
        assert read_jsonl(once) == read_jsonl(twice), name


def test_implicit_prompt_is_extracted_message_by_message(tmp_path):
    rows = [
        {"chosen": [U, A], "rejected": [U, B]},
        {"chosen": [U, A], "rejected": [U, A, U, B]},  # one side a prefix of the other
        {"chosen": [U, A], "rejected": [{"role": "user", "content": "Other"}, B]},  # diverge at the first turn
        {"chosen": [U, A], "rejected": [U, A]},  # identical
    ]
    result = convert_ready(rows, "dpo", tmp_path / "out.jsonl")
    out = read_jsonl(tmp_path / "out.jsonl")
    assert out[0] == {"prompt": [U], "chosen": [A], "rejected": [B]}
    assert out[1] == {"prompt": [U], "chosen": [A], "rejected": [A, U, B]}
    assert result.rejected_by_rule == {"TP303": 1, "TP301": 1}


def test_standard_transcripts_become_messages(tmp_path):
    rows = [{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}]
    convert_ready(rows, "dpo", tmp_path / "out.jsonl")
    assert read_jsonl(tmp_path / "out.jsonl")[0] == {
        "prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}]}


def test_repairs_are_counted(tmp_path):
    rows = [{"prompt": [U], "completion": [A], "label": "true"},
            {"prompt": "Name a colour.", "completion": [B], "label": 0}]
    result = convert_ready(rows, "kto", tmp_path / "out.jsonl")
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["label"] for r in out] == [True, False]
    assert out[1]["prompt"] == [U]
    assert result.repaired == {"label made boolean (TP110)": 2, "strings wrapped as messages (TP107/TP108)": 1}


def test_standard_rows_in_a_conversational_dataset_are_wrapped(tmp_path):
    rows = [{"prompt": [U], "completion": [A]}] * 3 + [{"prompt": "Name a colour.", "completion": "Red."}]
    result = convert_ready(rows, "sft", tmp_path / "out.jsonl")
    assert result.rows_rejected == 0
    assert read_jsonl(tmp_path / "out.jsonl")[3]["completion"] == [{"role": "assistant", "content": "Red."}]


def test_standard_data_written_as_messages_on_request(tmp_path):
    rows = [{"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven."}]
    result = convert_ready(rows, "dpo", tmp_path / "out.jsonl", conversational=True)
    assert read_jsonl(tmp_path / "out.jsonl") == [{"prompt": [U], "chosen": [A], "rejected": [B]}]
    assert result.repaired == {} and "standard strings wrapped as messages" in result.plan


def test_ledger_balances_on_broken_input_and_rejects_keep_the_content(tmp_path):
    result = convert_ready("examples/broken_chat.jsonl", "sft", tmp_path / "out.jsonl")
    assert (result.rows_in, result.rows_kept, result.rows_rejected) == (7, 1, 6)
    rejects = read_jsonl(result.rejects)
    assert [r["row"] for r in rejects] == [2, 3, 4, 5, 6, 7]
    assert {r["rule"] for r in rejects} == {"TP106", "TP201", "TP111", "TP001", "TP202", "TP404"}
    assert rejects[3]["content"].startswith('{"messages": [{"role": "user", "content": "cut off')
    assert sum(result.rejected_by_rule.values()) == 6


def test_options_map_roles_system_dedup_limit(tmp_path):
    rows = [{"dialog": [{"role": "human", "content": "Hi"}, {"role": "bot", "content": "Hello"}]}] * 2 + [
        {"dialog": [{"role": "system", "content": "old"}, {"role": "human", "content": "Yo"},
                    {"role": "bot", "content": "Hey"}]}, {"dialog": [U, A]}]
    result = convert_ready(rows, "sft", tmp_path / "out.jsonl", rename=("dialog=messages",),
                           roles=("human=user", "bot=assistant"), system="Be kind.", dedup=True, limit=3)
    out = read_jsonl(tmp_path / "out.jsonl")
    assert result.rows_in == 3 and result.rejected_by_rule == {"TP401": 1}
    assert [m["role"] for m in out[1]["messages"]] == ["system", "user", "assistant"]
    assert all(row["messages"][0] == {"role": "system", "content": "Be kind."} for row in out)
    dropped = convert_ready(rows, "sft", tmp_path / "dropped.jsonl", rename=("dialog=messages",),
                            roles=("human=user", "bot=assistant"), drop_system=True)
    assert all(m["role"] != "system" for row in read_jsonl(tmp_path / "dropped.jsonl") for m in row["messages"])
    assert dropped.rows_out == 4


def test_shuffle_and_test_split(shared_data, tmp_path):
    source = shared_data / "gsm8k_test.jsonl"
    plain = convert(source, to="sft", output=tmp_path / "plain.jsonl")
    first = convert(source, to="sft", output=tmp_path / "a.jsonl", shuffle=True, seed=1)
    again = convert(source, to="sft", output=tmp_path / "b.jsonl", shuffle=True, seed=1)
    assert read_jsonl(first.outputs["all"]) == read_jsonl(again.outputs["all"])
    assert read_jsonl(first.outputs["all"]) != read_jsonl(plain.outputs["all"])
    assert sorted(map(json.dumps, read_jsonl(first.outputs["all"]))) == sorted(
        map(json.dumps, read_jsonl(plain.outputs["all"])))
    split = convert_ready(shared_data / "dpo_en_demo.json", "kto", tmp_path / "kto.jsonl", test_size=0.1)
    train, test = read_jsonl(split.outputs["train"]), read_jsonl(split.outputs["test"])
    assert (len(train), len(test)) == (66, 10)  # 33 and 5 pairs, each pair kept within one split
    for rows in (train, test):  # a pair's two rows stay together, in one split
        assert all(rows[i]["prompt"] == rows[i + 1]["prompt"] and (rows[i]["label"], rows[i + 1]["label"]) ==
                   (True, False) for i in range(0, len(rows), 2))


def test_parquet_and_folder_outputs_load_with_datasets(shared_data, tmp_path):
    import datasets

    convert_ready(shared_data / "dpo_en_demo.json", "dpo", tmp_path / "out.parquet")
    assert datasets.Dataset.from_parquet(str(tmp_path / "out.parquet")).num_rows == 38
    convert_ready(shared_data / "kto_en_demo.json", "kto", tmp_path / "folder", test_size=6)
    loaded = datasets.load_from_disk(str(tmp_path / "folder"))
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (31, 6)


def test_dry_run_writes_nothing(shared_data, tmp_path):
    result = convert(shared_data / "alpaca_en_demo.json", to="sft", output=tmp_path / "out.jsonl", dry_run=True)
    assert result.rows_out == 41 and len(result.preview) == 3
    assert list(tmp_path.iterdir()) == []


def test_outputs_are_never_clobbered(shared_data, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        convert(shared_data / "c4_demo.jsonl", to="sft", output=out)
    assert out.read_text() == "precious\n"
    convert(shared_data / "c4_demo.jsonl", to="sft", output=out, overwrite=True)
    assert len(read_jsonl(out)) == 35
    with pytest.raises(OutputError, match="is the input"):
        convert(out, to="sft", output=out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # nothing rejected: no rejects file


def test_outputs_follow_the_umask_and_a_rejects_file_only_when_rows_are_rejected(shared_data, tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        clean = convert(shared_data / "c4_demo.jsonl", to="sft", output=tmp_path / "clean.jsonl")
        broken = convert("examples/broken_chat.jsonl", to="sft", output=tmp_path / "broken.jsonl")
        folder = convert(shared_data / "c4_demo.jsonl", to="sft", output=tmp_path / "as_folder", test_size=0.1)
    finally:
        os.umask(previous)
    assert clean.rejects is None and not (tmp_path / "clean.rejects.jsonl").exists()
    for path in (clean.output, broken.output, broken.rejects):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
    assert stat.S_IMODE(os.stat(folder.output).st_mode) == 0o755


def test_a_test_split_never_shares_a_prompt_or_a_row_with_the_train_split(shared_data, write_jsonl, tmp_path):
    pairs = [{"prompt": f"Question {i % 4}?", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(40)]
    result = convert(write_jsonl(pairs), to="dpo", output=tmp_path / "pairs.jsonl", test_size=0.25)
    train, test = (read_jsonl(result.outputs[split]) for split in ("train", "test"))
    assert {r["prompt"][0]["content"] if isinstance(r["prompt"], list) else r["prompt"] for r in train}.isdisjoint(
        {r["prompt"][0]["content"] if isinstance(r["prompt"], list) else r["prompt"] for r in test})
    assert result.split == {"by": "prompt", "groups": 4, "test_groups": 1, "train": 30, "test": 10,
                            "train_kept": 30, "test_kept": 10, "near_duplicate_rows": 0}
    assert "split by prompt, so that none is in both splits: 4 groups, 1 in test; train 30 rows + test 10 rows = " \
           "40 written" in result.to_text()
    chats = [{"messages": [{"role": "user", "content": f"hi {i % 3}"}, {"role": "assistant", "content": "yo"}]}
             for i in range(30)]
    chat = convert(write_jsonl(chats), to="sft", output=tmp_path / "chats.jsonl", test_size=5)
    assert chat.split["by"] == "content" and chat.split["groups"] == 3
    kto = convert(shared_data / "dpo_en_demo.json", to="kto", output=tmp_path / "kto.jsonl", test_size=0.1)
    train, test = (read_jsonl(kto.outputs[split]) for split in ("train", "test"))
    assert not {json.dumps(r["prompt"]) for r in train} & {json.dumps(r["prompt"]) for r in test}


def test_a_test_split_keeps_near_copies_on_the_side_of_their_original(shared_data, tmp_path):
    """Real alpaca rows, ten of them also written again re-spaced in capitals (another prompt to `split_key`, the
    same row to a reader): each copy lands in the split of its original, whatever the seed."""
    distinct = {json.dumps(row): row for row in json.loads((shared_data / "alpaca_en_demo.json").read_text())}
    alpaca = [row for row in distinct.values() if len(row["instruction"].split()) >= 6][:30]
    copies = [{**row, "instruction": row["instruction"].upper().replace(" ", "  ")} for row in alpaca[:10]]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(alpaca + copies))
    for seed in (1, 2, 3):
        result = convert(path, to="sft", output=tmp_path / f"out{seed}.jsonl", test_size=0.25, seed=seed)
        assert result.split["near_duplicate_rows"] == 20 and result.split["groups"] == 30
        side = {}
        for split in ("train", "test"):
            for row in read_jsonl(result.outputs[split]):
                side.setdefault(" ".join(row["prompt"][0]["content"].lower().split()), set()).add(split)
        assert all(len(splits) == 1 for splits in side.values())
        assert "and near-duplicate cluster (20 rows in clusters)" in result.to_text()


def test_strict_fails_and_writes_nothing(tmp_path):
    with pytest.raises(DataRefused, match="--strict: 6 row"):
        convert("examples/broken_chat.jsonl", to="sft", output=tmp_path / "out.jsonl", strict=True)
    assert list(tmp_path.iterdir()) == []


def test_cli_json_summary_and_exit_codes(shared_data, tmp_path):
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["-d", str(shared_data / "kto_en_demo.json"), "--to", "sft",
                                       "-o", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    for key in ("rows_in", "rows_kept", "rows_rejected", "rows_out", "rejected_by_rule", "output", "rejects"):
        assert key in summary
    assert summary["rows_in"] == summary["rows_kept"] + summary["rows_rejected"]
    assert summary["output"] == str(out) and summary["rejects"] == str(tmp_path / "out.rejects.jsonl")
    assert summary["rows_rejected"] > 0
    refused = CliRunner().invoke(main, ["-d", str(shared_data / "c4_demo.jsonl"), "--to", "dpo", "-o",
                                        str(tmp_path / "x.jsonl")])
    assert refused.exit_code == 1 and "cannot convert to dpo" in refused.output
    exists = CliRunner().invoke(main, ["-d", str(shared_data / "c4_demo.jsonl"), "--to", "sft", "-o", str(out)])
    assert exists.exit_code == 2 and "exists; pass --overwrite" in exists.output
    bad_map = CliRunner().invoke(main, ["-d", str(shared_data / "c4_demo.jsonl"), "--to", "sft", "--map", "x",
                                        "--dry-run"])
    assert bad_map.exit_code == 2 and "--map 'x': expected old=new" in bad_map.output


def test_push_to_hub_offline_is_one_clear_error_and_the_card_tells_the_story(shared_data, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from trlprep.converters.hub import dataset_card

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_never_printed")
    with pytest.raises(SourceError, match="cannot reach the Hugging Face Hub") as error:
        convert(shared_data / "kto_en_demo.json", to="sft", output=tmp_path / "out.jsonl", push_to_hub="me/kto-sft")
    assert "hf_secret" not in str(error.value)
    assert (tmp_path / "out.jsonl").exists()
    result = convert(shared_data / "kto_en_demo.json", to="sft", output=tmp_path / "o2.jsonl")
    from trlprep.inspector.dialects import classify_row

    card = dataset_card(result, "me/kto-sft", classify_row({"messages": [U, A], "label": True}))
    assert "rows in 37 = kept 21 + rejected 16" in card
    assert "| TC101 | 16 |" in card and "SFTTrainer" in card and "hf_secret" not in card


def test_tool_call_messages_round_trip_through_parquet(shared_data, tmp_path):
    """`datasets` writes messages of mixed keys (tool calls) as Arrow JSON text; they are read back as objects,
    as TRL reads them, so the converted Parquet is ready and reports what its JSON-lines twin reports."""
    convert(shared_data / "glaive_toolcall_en_demo.json", to="sft", output=tmp_path / "tools.parquet")
    convert(shared_data / "glaive_toolcall_en_demo.json", to="sft", output=tmp_path / "tools.jsonl", overwrite=True)
    parquet, lines = inspect_dataset(tmp_path / "tools.parquet"), inspect_dataset(tmp_path / "tools.jsonl")
    assert parquet.methods["sft"]["status"] == "ready"
    assert [(f.rule, f.count, f.rows) for f in parquet.findings] == [(f.rule, f.count, f.rows) for f in lines.findings]


@pytest.mark.parametrize("test_size,said", [("3", "test split of 3 rows"), ("0.25", "test split of 0.25")])
def test_the_plan_says_a_test_split_as_given(test_size, said):
    shown = CliRunner().invoke(main, ["--dataset", str(REPO / "examples" / "sharegpt_chat.jsonl"), "--to", "sft",
                                      "--test-size", test_size, "--dry-run"])
    assert shown.exit_code == 0, shown.output
    assert f"  {said}" in shown.output.splitlines()
