"""Ticket folders on the Hugging Face Hub: push an exported folder, fetch one by ``hf://OWNER/REPO[@REV]``.

Needs the optional ``huggingface_hub`` (``pip install 'oneticket[hub]'``); without it each call
says so in one line. Hub failures (offline mode, a missing repo or revision, no login, no
network) become one-line :class:`UserError` messages that say what to do.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

from oneticket.errors import UserError

HF_SCHEME = "hf://"  # tested with huggingface_hub 2.4; 'hf auth login' (in the messages) is from 0.34 on
INSTALL_HINT = "pip install 'oneticket[hub]'"
REPO_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
UPLOADED = ["*.safetensors", "tickets.json", "README.md"]  # what a ticket folder publishes, and nothing else
PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, ImportError)  # bugs, never reworded as a Hub failure


def hub_library(what: str) -> ModuleType:
    """``huggingface_hub``, or a one-line error saying how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise UserError(f"{what} needs the huggingface_hub package: {INSTALL_HINT}") from None
    return huggingface_hub


class HubUnreachable(UserError):
    """The Hub could not be reached (no network): not the input's fault."""

    exit_code = 69  # EX_UNAVAILABLE


def is_hub_uri(text: str) -> bool:
    return str(text).lower().startswith(HF_SCHEME)


WEB_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "https://hf.co/", "http://hf.co/", "huggingface.co/", "hf.co/")


def hub_hint(text: str) -> str | None:
    """What to write instead of a remote address (a Hub web page, another URL), or None for a local path."""
    text = str(text)
    for prefix in WEB_PREFIXES:
        if text.startswith(prefix):
            parts = text[len(prefix):].strip("/").split("/")
            revision = parts[3] if len(parts) > 3 and parts[2] in ("tree", "blob", "resolve") else None
            return f"write the Hub repo as hf://{'/'.join(parts[:2])}" + (f"@{revision}" if revision else "")
    if "://" in text and not is_hub_uri(text):
        return "oneticket reads tickets from local files, folders and zips, and from the Hub as hf://OWNER/REPO; download it first"
    return None


def remote_problem(text: str, what: str) -> str | None:
    """Why ``text`` cannot be read as a local ticket file (a Hub or web address), or None."""
    if is_hub_uri(str(text)):
        return f"{text} is on the Hugging Face Hub; import its tickets first (oneticket tickets import {text}), then use a file from your store"
    hint = hub_hint(str(text))
    return None if hint is None else f"{what} {text} is a web address; {hint}"


def check_repo_id(repo_id: str) -> str:
    if not REPO_PATTERN.match(repo_id) or ".." in repo_id:
        raise UserError(f"{repo_id!r} is not a Hub repo id; write OWNER/NAME (letters, digits, '-', '_', '.')")
    return repo_id


def parse_hub_uri(uri: str) -> tuple[str, str | None]:
    """``hf://OWNER/REPO@REV`` -> ``("OWNER/REPO", "REV")`` (revision None when absent)."""
    rest = uri[len(HF_SCHEME):]
    repo_id, _, revision = rest.partition("@")
    if "@" in uri and (not revision or "@" in revision):
        raise UserError(f"{uri}: write hf://OWNER/REPO@REVISION (one '@', then a branch, tag or commit) or leave the revision out")
    check_repo_id(repo_id)
    return repo_id, revision or None


def _hub_failure(hub: ModuleType, exc: Exception, where: str, doing: str) -> UserError:
    """The one line a Hub error becomes."""
    errors = hub.errors
    offline = getattr(hub.constants, "is_offline_mode", lambda: hub.constants.HF_HUB_OFFLINE)()
    if isinstance(exc, errors.OfflineModeIsEnabled) or (offline and isinstance(exc, errors.LocalEntryNotFoundError)):
        return UserError(f"{where}: HF_HUB_OFFLINE is set, so it cannot be {doing}"
                         + (" and it is not in the local Hugging Face cache" if doing == "downloaded" else "")
                         + "; unset HF_HUB_OFFLINE to reach the Hub")
    if isinstance(exc, errors.RevisionNotFoundError):
        return UserError(f"{where}: no such revision on the Hub; give a branch, tag or commit of the repo")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return UserError(f"{where}: no such model repo on the Hub, or it is private and you are not logged in "
                         "(hf auth login, or set HF_TOKEN)")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return UserError(f"{where}: the Hub refused ({status}): log in with write access (hf auth login, or set HF_TOKEN)")
    if isinstance(exc, errors.LocalEntryNotFoundError) or _is_connection_error(exc):
        cached = " and it is not in the local cache" if doing == "downloaded" else ""
        return HubUnreachable(f"{where} could not be {doing}: the Hub cannot be reached{cached}; check your connection")
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"{where} could not be {doing} ({first_line}); check the repo id and your access to it")


def _is_connection_error(exc: Exception) -> bool:
    """A failure to reach the Hub at all (no route, no DNS, refused, timed out), whatever the HTTP client."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectError", "ConnectTimeout", "ConnectionError", "NetworkError", "TimeoutException"}) \
        or isinstance(exc, (ConnectionError, TimeoutError))


def fetch_folder(uri: str) -> Path:
    """Download (or find in the Hugging Face cache) the ticket files, ``tickets.json`` and the card
    of ``hf://OWNER/REPO[@REV]``; returns the local folder."""
    repo_id, revision = parse_hub_uri(uri)
    hub = hub_library(f"importing {uri}")
    from oneticket import __version__

    try:
        folder = hub.snapshot_download(repo_id, repo_type="model", revision=revision, allow_patterns=UPLOADED,
                                       library_name="oneticket", library_version=__version__)
    except PROGRAMMING_ERRORS:
        raise
    except Exception as exc:  # the Hub's errors and the HTTP client's connection errors (not all OSErrors)
        raise _hub_failure(hub, exc, uri, "downloaded") from None
    return Path(folder)


def push_folder(folder: Path, repo_id: str, private: bool = False, revision: str | None = None) -> str:
    """Upload a ticket folder's tickets, ``tickets.json`` and card to the model repo ``repo_id``
    (created when missing; ``revision``: a branch, created when missing); returns the commit's URL."""
    check_repo_id(repo_id)
    hub = hub_library(f"pushing to {repo_id}")
    where = f"hf://{repo_id}" + (f"@{revision}" if revision else "")
    try:
        hub.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision:
            hub.create_branch(repo_id, repo_type="model", branch=revision, exist_ok=True)
        commit = hub.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder), revision=revision,
                                   allow_patterns=UPLOADED, commit_message="Lottery tickets from oneticket")
    except PROGRAMMING_ERRORS:
        raise
    except Exception as exc:  # the Hub's errors and the HTTP client's connection errors (not all OSErrors)
        raise _hub_failure(hub, exc, where, "uploaded") from None
    return str(getattr(commit, "commit_url", None) or f"https://huggingface.co/{repo_id}")
