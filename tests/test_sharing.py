"""Sharing tickets: Hub-ready export (card, compact files), push, import from folders, zips and hf://."""

from __future__ import annotations

import json
import os
from dataclasses import replace
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import oneticket as ot
from oneticket.cli import main
from oneticket.tickets import load_ticket
from oneticket.tickets.card import card_metadata, yaml_lines
from oneticket.tickets.catalogue import INDEX_FILE

hub = pytest.importorskip("huggingface_hub")  # the [hub] extra, installed with the test extra

TINY = dict(model="vgg19", width=0.0625, dataset="digits", train_size=256, epochs=2, batch_size=64, levels=2, rate=0.5,
            device="cpu", progress=False)


@pytest.fixture(scope="module")
def found(tmp_path_factory) -> ot.Run:
    return ot.find(store=tmp_path_factory.mktemp("store"), **TINY)


def export(found: ot.Run, out: Path, *extra: str) -> None:
    assert main(["tickets", "export", str(out), "--from", found.id, "--store", str(found.store), *extra]) == 0


def test_export_writes_a_hub_model_repo_whose_card_parses_and_lists_every_level(found: ot.Run, tmp_path: Path):
    out = tmp_path / "repo"
    export(found, out, "--compact", "--license", "apache-2.0")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["README.md", INDEX_FILE] + [f"vgg19-digits-sgd-{found.id}-level_0{n}.safetensors" for n in range(3)])
    card = hub.ModelCard.load(out / "README.md")
    assert card.data.library_name == "oneticket" and card.data.license == "apache-2.0"
    assert {"lottery-ticket", "pruning"} <= set(card.data.tags)
    results = card.data.eval_results
    assert len(results) == 3  # one per level
    for level, (result, level_result) in enumerate(zip(results, found.results)):
        assert result.metric_type == "accuracy" and result.task_type == "image-classification"
        assert result.metric_value == pytest.approx(100 * level_result.test_accuracy, abs=0.005)
        assert f"level {level} (" in result.metric_name
    index = json.loads((out / INDEX_FILE).read_text())
    assert {entry["layout"] for entry in index.values()} == {"compact"}
    assert main(["tickets", "export", str(tmp_path / "other"), "--from", found.id, "--store", str(found.store),
                 "--license", "MIT License"]) == 2
    assert not (tmp_path / "other").exists()
    for name in index:
        assert load_ticket(out / name).compact


def test_card_names_hub_datasets_and_its_yaml_reads_back():
    yaml = pytest.importorskip("yaml")
    info = load_ticket(Path(__file__).parent / "data" / "ticket_v2_8b4d4f4.safetensors").info  # a digits ticket
    assert "datasets" not in card_metadata([("t.safetensors", info)], "mit")  # digits has no Hub dataset
    metadata = card_metadata([("t.safetensors", replace(info, dataset="cifar10a")), ("u.safetensors", replace(info, dataset="svhn"))], "mit")
    assert metadata["datasets"] == ["ufldl-stanford/svhn", "uoft-cs/cifar10"]  # a half is its parent's
    assert yaml.safe_load("\n".join(yaml_lines(metadata))) == metadata
    tricky = {"a": "yes", "b": "1.5", "c": 'quote " and: colon', "d": [], "e": None, "f": [{"g": True, "h": 2}],
              "i": 1e-05, "j": 97.18, "k": 3e20}
    assert yaml.safe_load("\n".join(yaml_lines(tricky))) == tricky


def test_compact_export_is_smaller_and_imports_to_the_same_masks(found: ot.Run, tmp_path: Path):
    export(found, tmp_path / "dense")
    export(found, tmp_path / "compact", "--compact", "--levels", "2")
    dense_file = next((tmp_path / "dense").glob("*level_02.safetensors"))
    compact_file = next((tmp_path / "compact").glob("*.safetensors"))
    assert compact_file.stat().st_size < 0.5 * dense_file.stat().st_size  # 75% pruned
    assert main(["tickets", "import", str(tmp_path / "compact"), "--store", str(tmp_path / "s")]) == 0
    imported = load_ticket(tmp_path / "s" / "imported" / found.id / "level_02" / "ticket.safetensors")
    assert imported.compact and imported.mask.equal(load_ticket(dense_file).mask)
    assert main(["tickets", "verify", str(compact_file)]) == 0


def test_one_ticket_is_one_identity_in_both_layouts_on_import(found: ot.Run, tmp_path: Path, capsys):
    export(found, tmp_path / "dense", "--levels", "2")
    export(found, tmp_path / "compact", "--compact", "--levels", "2")
    store = tmp_path / "s"
    imported = store / "imported" / found.id / "level_02" / "ticket.safetensors"
    assert main(["tickets", "import", str(tmp_path / "compact"), "--store", str(store)]) == 0
    assert load_ticket(imported).compact
    assert main(["tickets", "import", str(tmp_path / "dense"), "--store", str(store)]) == 0  # the dense file replaces it
    assert not load_ticket(imported).compact
    assert main(["tickets", "import", str(tmp_path / "compact"), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.count("imported: ") == 2 and out.count("already there: ") == 1 and "beside" not in out
    assert sorted(p.parent.parent.name for p in (store / "imported").glob("*/level_*/ticket.safetensors")) == [found.id]


def test_importing_a_runs_own_export_into_its_store_finds_it_there(found: ot.Run, tmp_path: Path, capsys):
    export(found, tmp_path / "compact", "--compact")
    assert main(["tickets", "import", str(tmp_path / "compact"), "--store", str(found.store)]) == 0
    out = capsys.readouterr().out
    assert out.count(f"already there: {found.root}") == 3 and "imported:" not in out
    assert not (found.store / "imported").exists()


def test_the_card_repeats_the_recipe_of_its_run(found: ot.Run, tmp_path: Path):
    export(found, tmp_path / "export")
    card = (tmp_path / "export" / "README.md").read_text()
    assert (f"oneticket transfer --from {found.id} --dataset TARGET --optimizer sgd --epochs 2 --batch-size 64 --lr 0.1 "
            "--augment crop-flip") in card
    assert "each level keeps 50% of the weights the level before it kept" in card
    assert "pip install oneticket" not in card and "hf_hub_download(repo_id='OWNER/REPO', filename='" in card


def test_import_from_a_zip_and_refusals(found: ot.Run, tmp_path: Path, capsys):
    export(found, tmp_path / "export")
    archive = shutil.make_archive(str(tmp_path / "tickets"), "zip", tmp_path, "export")
    assert main(["tickets", "import", archive, "--store", str(tmp_path / "s")]) == 0
    assert sorted(p.parent.name for p in (tmp_path / "s" / "imported" / found.id).glob("level_*/ticket.safetensors")) == \
        ["level_00", "level_01", "level_02"]
    capsys.readouterr()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as handle:
        handle.writestr("../outside.safetensors", b"x")
    assert main(["tickets", "import", str(evil), "--store", str(tmp_path / "s")]) == 2
    assert "holds a file outside its folder" in capsys.readouterr().err
    assert not (tmp_path / "outside.safetensors").exists()
    (tmp_path / "not.zip").write_bytes(b"no zip here")
    assert main(["tickets", "import", str(tmp_path / "not.zip"), "--store", str(tmp_path / "s")]) == 2
    assert "is not a readable zip file" in capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "export").iterdir())
    first = next(name for name in names if name.endswith("level_00.safetensors"))
    with zipfile.ZipFile(tmp_path / "swapped.zip", "w") as handle:  # a listed file swapped for another ticket
        for name in names:
            source = name if name != first else first.replace("level_00", "level_01")
            handle.write(tmp_path / "export" / source, f"export/{name}")
        handle.writestr("__MACOSX/export/._README.md", b"resource fork")
    assert main(["tickets", "import", str(tmp_path / "swapped.zip"), "--store", str(tmp_path / "t")]) == 2
    assert f"error: {tmp_path / 'swapped.zip'}:{first} does not match the checksum in " in capsys.readouterr().err


def test_a_folder_missing_or_changing_a_listed_file_is_refused_before_anything_is_copied(found: ot.Run, tmp_path: Path, capsys):
    export(found, tmp_path / "export")
    files = sorted((tmp_path / "export").glob("*.safetensors"))
    shutil.copytree(tmp_path / "export", tmp_path / "partial")
    (tmp_path / "partial" / files[1].name).unlink()
    assert main(["tickets", "import", str(tmp_path / "partial"), "--store", str(tmp_path / "s")]) == 2
    assert f"lacks {files[1].name}, which tickets.json lists" in capsys.readouterr().err
    shutil.copytree(tmp_path / "export", tmp_path / "extra")
    shutil.copyfile(files[0], tmp_path / "extra" / "unlisted.safetensors")
    assert main(["tickets", "import", str(tmp_path / "extra"), "--store", str(tmp_path / "s")]) == 2
    assert "unlisted.safetensors is not listed in tickets.json" in capsys.readouterr().err
    other = tmp_path / "export" / files[0].name
    shutil.copyfile(files[2], other)  # a different (valid) ticket under a listed name
    assert main(["tickets", "import", str(tmp_path / "export"), "--store", str(tmp_path / "s")]) == 2
    assert "does not match the checksum in" in capsys.readouterr().err
    assert not (tmp_path / "s" / "imported").exists()


def test_import_from_the_hub_goes_through_snapshot_download_and_verifies(found: ot.Run, tmp_path: Path, monkeypatch, capsys):
    export(found, tmp_path / "export")
    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tmp_path / "export")  # where the Hub's cache would hold the snapshot

    monkeypatch.setattr(hub, "snapshot_download", snapshot_download)
    assert main(["tickets", "import", "hf://someone/lottery-tickets@v1.0", "--store", str(tmp_path / "s")]) == 0
    (repo_id, kwargs), = calls
    assert repo_id == "someone/lottery-tickets" and kwargs["revision"] == "v1.0" and kwargs["repo_type"] == "model"
    assert set(kwargs["allow_patterns"]) == {"*.safetensors", "tickets.json", "README.md"}
    assert capsys.readouterr().out.count("imported: ") == 3
    for bad in ("hf://justaname", "hf://a/b@", "hf://a/../b", "hf://a/b@main@x", "https://huggingface.co/a/b"):
        assert main(["tickets", "import", bad, "--store", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
    assert "write the Hub repo as hf://a/b" in (main(["tickets", "import", "https://huggingface.co/a/b"]), capsys.readouterr().err)[1]

    class ConnectError(Exception):  # what the Hub's HTTP client raises without a network
        pass

    def unreachable(repo_id, **kwargs):
        raise ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(hub, "snapshot_download", unreachable)
    assert main(["tickets", "import", "HF://someone/lottery-tickets", "--store", str(tmp_path / "s")]) == 69
    assert capsys.readouterr().err == ("error: HF://someone/lottery-tickets could not be downloaded: the Hub cannot be "
                                       "reached and it is not in the local cache; check your connection\n")


def run_cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "oneticket", *args], capture_output=True, text=True, env=environment, timeout=120)


@pytest.mark.slow
def test_hf_hub_offline_gives_one_line_for_import_and_push(found: ot.Run, tmp_path: Path):
    export(found, tmp_path / "export")
    offline = dict(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    fetched = run_cli(["tickets", "import", "hf://someone/lottery-tickets", "--store", str(tmp_path / "s")], **offline)
    assert fetched.returncode == 2 and "Traceback" not in fetched.stderr
    assert fetched.stderr.strip() == ("error: hf://someone/lottery-tickets: HF_HUB_OFFLINE is set, so it cannot be downloaded "
                                      "and it is not in the local Hugging Face cache; unset HF_HUB_OFFLINE to reach the Hub")
    pushed = run_cli(["tickets", "push", str(tmp_path / "export"), "--repo", "someone/lottery-tickets"], **offline)
    assert pushed.returncode == 2 and pushed.stderr.strip() == (
        "error: hf://someone/lottery-tickets: HF_HUB_OFFLINE is set, so it cannot be uploaded; unset HF_HUB_OFFLINE to reach the Hub")


def test_push_uploads_exactly_the_checked_tickets_index_and_a_card_naming_the_repo(found: ot.Run, tmp_path: Path, monkeypatch, capsys):
    export(found, tmp_path / "export", "--compact")
    folder = tmp_path / "export"
    (folder / "notes.txt").write_text("private")
    (folder / "sub").mkdir()
    shutil.copyfile(next(folder.glob("*.safetensors")), folder / "sub" / "unchecked.safetensors")
    card_before = (folder / "README.md").read_text()
    calls, uploaded = [], {}
    monkeypatch.setattr(hub, "create_repo", lambda repo_id, **kwargs: calls.append(("create", repo_id, kwargs)))
    monkeypatch.setattr(hub, "create_branch", lambda repo_id, **kwargs: calls.append(("branch", repo_id, kwargs)))

    def upload_folder(**kwargs):
        calls.append(("upload", kwargs["repo_id"], kwargs))
        staged = Path(kwargs["folder_path"])
        uploaded.update({str(p.relative_to(staged)): p.read_bytes() for p in staged.rglob("*") if p.is_file()})
        return type("CommitInfo", (), {"commit_url": "https://huggingface.co/someone/t/commit/abc"})()

    monkeypatch.setattr(hub, "upload_folder", upload_folder)
    assert main(["tickets", "push", str(folder), "--repo", "someone/t", "--private", "--revision", "v1"]) == 0
    (_, created, create_kwargs), (_, branched, branch_kwargs), (_, pushed, _) = calls
    assert created == branched == pushed == "someone/t" and create_kwargs["private"] and branch_kwargs["branch"] == "v1"
    assert sorted(uploaded) == sorted(["README.md", INDEX_FILE] + [p.name for p in folder.glob("*.safetensors")])
    for name, data in uploaded.items():
        if name != "README.md":
            assert data == (folder / name).read_bytes()
    card = uploaded["README.md"].decode()
    assert "oneticket tickets import hf://someone/t@v1 " in card and "OWNER/REPO" not in card
    assert "hf_hub_download(repo_id='someone/t', revision='v1', filename=" in card
    assert (folder / "README.md").read_text() == card_before  # the folder is left as it was
    assert not [p for p in folder.iterdir() if p.name.startswith(".oneticket-push-")]
    assert "https://huggingface.co/someone/t/commit/abc" in capsys.readouterr().out
    assert main(["tickets", "push", str(tmp_path), "--repo", "someone/t"]) == 2  # not an exported folder
    assert "is not an exported ticket folder" in capsys.readouterr().err

    def refused(**kwargs):
        raise ConnectionError("connection reset")

    monkeypatch.setattr(hub, "upload_folder", refused)
    assert main(["tickets", "push", str(folder), "--repo", "someone/t"]) == 69
    assert "could not be uploaded: the Hub cannot be reached; check your connection" in capsys.readouterr().err
    assert (folder / "README.md").read_text() == card_before
    assert not [p for p in folder.iterdir() if p.name.startswith(".oneticket-push-")]


def test_without_huggingface_hub_one_line_says_how_to_install_it(found: ot.Run, tmp_path: Path, monkeypatch, capsys):
    export(found, tmp_path / "export")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    assert main(["tickets", "push", str(tmp_path / "export"), "--repo", "someone/t"]) == 2
    assert capsys.readouterr().err == "error: pushing to someone/t needs the huggingface_hub package: pip install 'oneticket[hub]'\n"
    assert main(["tickets", "import", "hf://someone/t", "--store", str(tmp_path / "s")]) == 2
    assert "needs the huggingface_hub package: pip install 'oneticket[hub]'" in capsys.readouterr().err
