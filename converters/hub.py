"""Publishing a converted dataset on the Hugging Face Hub, with a dataset card that records how it was made.

The token is never read here: huggingface_hub finds it (HF_TOKEN, `hf auth login`) and it never reaches the card.
"""

from __future__ import annotations

from pathlib import Path

from trlprep.converters.result import ConversionResult
from trlprep.inspector.summary import written_sum
from trlprep.inspector.dialects import Shape
from trlprep.inspector.methods import TRAINERS
from trlprep.inspector.sources import SourceError, hub_unreachable_reason


def dataset_card(result: ConversionResult, repo_id: str, detected: Shape) -> str:
    """A README.md for the Hub: what the data is, where it came from, and the ledger of the conversion."""
    rules = "\n".join(f"| {rule} | {count} |" for rule, count in sorted(result.rejected_by_rule.items())) \
        or "| — | 0 |"
    files = "\n".join(f"- `{Path(path).name}`" + (f" ({split})" if split != "all" else "")
                      for split, path in result.outputs.items())
    steps = "\n".join(f"- {step}" for step in result.plan)
    return f"""---
tags:
- trl
- {result.to}
- trlprep
---

# {repo_id}

Data for TRL's `{TRAINERS[result.to]}`, converted by trlprep from `{Path(result.source).name}`
({detected.dialect} {detected.format} {detected.type}).

## Conversion

{steps}

## Ledger

rows in {result.rows_in} = kept {result.rows_kept} + rejected {result.rows_rejected}; rows written {written_sum(result.to_dict())}.

| rejected by rule | rows |
| --- | --- |
{rules}

## Files

{files}

Load it with `datasets.load_dataset("{repo_id}")` and pass it to `{TRAINERS[result.to]}` as it is.
"""


def push(result: ConversionResult, repo_id: str, detected: Shape) -> str:
    """Upload the written files and the card to a Hub dataset repo; returns the repo id."""
    reason = hub_unreachable_reason()
    if reason:
        raise SourceError(f"--push-to-hub {repo_id}: {reason}; the local output is written: "
                          f"{', '.join(result.outputs.values())}")
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    for split, path in result.outputs.items():
        local = Path(path)
        if local.is_dir():
            api.upload_folder(folder_path=str(local), repo_id=repo_id, repo_type="dataset")
        else:
            name = "train" if split == "all" else split
            api.upload_file(path_or_fileobj=str(local), path_in_repo=f"data/{name}{local.suffix}",
                            repo_id=repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=dataset_card(result, repo_id, detected).encode(), path_in_repo="README.md",
                    repo_id=repo_id, repo_type="dataset")
    return repo_id
