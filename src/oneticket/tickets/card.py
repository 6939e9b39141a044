"""The model card of an exported ticket folder: a Hugging Face ``README.md`` with YAML front matter.

The front matter follows the Hub's model-card metadata: ``library_name: oneticket``, ``license``,
``tags`` (``lottery-ticket``, ``pruning``, ...), ``datasets`` (Hub dataset ids where the source
dataset has one) and a ``model-index`` with one test-accuracy result per ticket, so the Hub shows
every level's accuracy. The body says what the tickets are and how to load them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from oneticket.data import dataset_info
from oneticket.tickets.ticket import TicketInfo

HUB_DATASETS = {  # our dataset -> its Hub dataset id
    "cifar10": "uoft-cs/cifar10",
    "cifar100": "uoft-cs/cifar100",
    "svhn": "ufldl-stanford/svhn",
    "fashionmnist": "zalando-datasets/fashion_mnist",
}
PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._/-]*")  # strings YAML reads as themselves unquoted (bar YAML_WORDS)
YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "nan", "inf"}
REPO = "OWNER/REPO"  # in an exported card; the card 'tickets push' uploads names the repo in its place
TAGS = ("lottery-ticket", "pruning", "sparse", "oneticket", "image-classification")


def yaml_lines(value: Any, indent: int = 0) -> list[str]:
    """``value`` (dicts, lists, strings, numbers, booleans) as block-style YAML; strings are
    double-quoted JSON strings, which YAML reads as the same strings."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}{key}:"] + yaml_lines(item, indent + (0 if isinstance(item, list) else 2))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            nested = yaml_lines(item, indent + 2)
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}- {nested[0].lstrip()}"] + nested[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return lines
    return [f"{pad}{_scalar(value)}"]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):  # YAML 1.1 readers want a '.' in a float ('1e-05' would be a string)
        return repr(value) if "e" not in repr(value) else f"{value:.6e}"
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    text = str(value)
    if PLAIN.fullmatch(text) and text.lower() not in YAML_WORDS:
        return text  # reads back as this string
    return json.dumps(text)


def hub_dataset(name: str) -> str | None:
    """The Hub id of a dataset (a half ``cifar10a`` maps to its parent's), or None."""
    info = dataset_info(name)
    return HUB_DATASETS.get(info.parent or info.name)


def card_metadata(entries: list[tuple[str, TicketInfo]], license: str = "mit") -> dict[str, Any]:
    """The front matter of the card of ``entries`` ((file name, info) per ticket)."""
    infos = [info for _, info in entries]
    models = sorted({info.model for info in infos})
    datasets = sorted({d for d in (hub_dataset(info.dataset) for info in infos) if d})
    name = "-".join(["oneticket", *models, *sorted({info.dataset for info in infos})])
    results = []
    for file, info in entries:
        if info.test_accuracy is None:
            continue  # a level that diverged has no accuracy to show
        results.append({
            "task": {"type": "image-classification", "name": "Image Classification"},
            "dataset": {"type": hub_dataset(info.dataset) or info.dataset, "name": dataset_info(info.dataset).description.split(":")[0],
                        "split": "test"},
            "metrics": [{"type": "accuracy", "value": round(100 * info.test_accuracy, 2),
                         "name": f"Test accuracy, level {info.level} ({100 * info.fraction_pruned:.2f}% pruned; "
                                 f"{info.finder}, {info.optimizer}, run {info.run_id})"}],
        })
    metadata: dict[str, Any] = {
        "library_name": "oneticket",
        "license": license,
        "tags": [*TAGS, *models],
    }
    if datasets:
        metadata["datasets"] = datasets
    metadata["model-index"] = [{"name": name, "results": results}]
    return metadata


def card_text(entries: list[tuple[str, TicketInfo, bool]], license: str = "mit") -> str:
    """The whole ``README.md`` of (file name, info, compact) per ticket: front matter, a table of
    the tickets, how to load them."""
    first = entries[0][1]
    usable = [name for name, info, _ in entries if info.test_accuracy is not None]
    example = (usable or [entries[-1][0]])[-1]  # a ticket that trained (the most pruned of the last run)
    finders = sorted({info.finder for _, info, _ in entries})
    models = sorted({info.describe_model() for _, info, _ in entries})
    how = "iterative magnitude pruning with late resetting" if finders == ["imp"] else f"the {', '.join(finders)} finder(s)"
    compact = {is_compact for _, _, is_compact in entries}
    layout = ("compact files: a bit-packed mask and the surviving rewind-point weights only" if compact == {True} else
              "the mask and every rewind-point weight" if compact == {False} else
              "dense (the mask and every rewind-point weight) or compact (a bit-packed mask and the surviving weights)")
    lines = ["---", *yaml_lines(card_metadata([(name, info) for name, info, _ in entries], license)), "---", "",
             "# Lottery tickets (oneticket)", "",
             f"{len(entries)} lottery ticket(s) of {' and '.join(models)}, found by {how}. Each file holds one "
             f"ticket as safetensors ({layout}; no pickle: safe to load from strangers) with its metadata, checksummed.", "",
             "| file | model | source dataset | optimizer | finder | level | pruned | test accuracy | rewind |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, info, _ in entries:
        acc = "diverged" if info.test_accuracy is None else f"{100 * info.test_accuracy:.2f}%"
        lines.append(f"| {name} | {info.describe_model()} | {info.dataset} | {info.optimizer} | {info.finder} | {info.level} | "
                     f"{100 * info.fraction_pruned:.2f}% | {acc} | {info.rewind} |")
    runs = sorted({info.run_id for _, info, _ in entries})
    recipe = " ".join(f"--{flag} {value}" for flag, value in
                      (("optimizer", first.optimizer), ("epochs", first.epochs), ("batch-size", first.batch_size),
                       ("lr", first.lr), ("warmup", first.warmup), ("augment", first.augment)) if value is not None)
    rates = {info.rate for _, info, _ in entries}
    if finders == ["imp"] and len(rates) == 1:
        lines += ["", f"Level 0 is the dense network at its rewind point; each level keeps {100 * (1 - first.rate):g}% "
                      "of the weights the level before it kept."]
    lines += [
        "", "## How to use", "",
        "```python",
        "import oneticket as ot                       # see oneticket's README to install it (and torch for your machine)",
        "from huggingface_hub import hf_hub_download",
        f"path = hf_hub_download(repo_id='{REPO}', filename='{example}')",
        "model = ot.load_model(path)                  # nn.Module at the rewind point; pruned weights stay 0.0 while you train",
        "ticket = ot.load_ticket(path)                # its mask, rewind-point weights and metadata (ticket.info)",
        "```", "",
        "```bash",
        f"oneticket tickets import hf://{REPO}   # verified, then in your store (or a local copy of this folder)",
        f"oneticket transfer --from {runs[0] if len(runs) == 1 else 'RUN_ID'} --dataset TARGET {recipe}",
        "```", "",
        ("The transfer line repeats the recipe the tickets were found with" if len(runs) == 1 else
         "The transfer line repeats the recipe of the first run (RUN_ID: the run id in a file's name)")
        + " (`tickets.json` has each file's); without it the model's paper schedule applies.",
        "Checksums and metadata of every file are in `tickets.json`.", "",
    ]
    return "\n".join(lines)


def name_repo(card: str, repo_id: str, revision: str | None = None) -> str:
    """The card with the repo (and branch) it is published in named wherever it says how to fetch the tickets."""
    if revision:
        card = card.replace(f"hf://{REPO}", f"hf://{repo_id}@{revision}").replace(f"repo_id='{REPO}'", f"repo_id='{repo_id}', revision='{revision}'")
    return card.replace(REPO, repo_id)
