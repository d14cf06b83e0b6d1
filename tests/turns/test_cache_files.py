"""The response cache's files: nothing planted in the cache folder redirects a write or
blocks a read. A link at an entry's name is replaced, never written through, and never
read from; a FIFO or device there is a miss, never waited on; a shard folder that is a
link is refused (no entry lands where it points); a full disk leaves the entry as it was
and no temporary file. Each row checks that the file or folder a planted link points to
— outside the cache folder — is byte for byte as it was.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from support.paths import TESTS

from tooltrial.cli import main
from tooltrial.files import WriteFailed
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.turns.cache import ResponseCache
from tooltrial.types import ModelResponse, Usage

KEY = "ab" + "0" * 62
ANSWER = ModelResponse(text="cached", tool_calls=(), stop_reason="end_turn", usage=Usage())
FORGED = ANSWER.model_copy(update={"text": "forged"}).model_dump_json()
"""What a planted link points to: a valid entry, so only refusing the link keeps it out."""


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "important").write_text(FORGED)
    return tmp_path / "outside"


def entry(cache: Path, key: str = KEY) -> Path:
    (cache / key[:2]).mkdir(parents=True, exist_ok=True)
    return cache / key[:2] / f"{key}.json"


def plant(path: Path, kind: str, outside: Path) -> None:
    if kind == "link":
        path.symlink_to(outside / "important")
    elif kind == "fifo":
        os.mkfifo(path)  # read in blocking mode, this would wait for a writer for ever
    elif kind == "device":
        path.symlink_to("/dev/zero")  # read to its end, this would never end


@pytest.mark.parametrize("kind", ["link", "fifo", "device"])
def test_an_entry_that_is_not_a_plain_file_is_a_miss(
    tmp_path: Path, outside: Path, kind: str
) -> None:
    cache = ResponseCache(tmp_path / "cache")
    plant(entry(cache.directory), kind, outside)
    assert not cache.has(KEY)
    assert cache.get(KEY) is None and cache.hits == 0
    assert (outside / "important").read_text() == FORGED


@pytest.mark.parametrize("kind", ["link", "fifo", "device"])
def test_a_put_replaces_what_is_planted_and_never_writes_through_it(
    tmp_path: Path, outside: Path, kind: str
) -> None:
    cache = ResponseCache(tmp_path / "cache")
    path = entry(cache.directory)
    plant(path, kind, outside)
    cache.put(KEY, ANSWER)
    assert path.is_file() and not path.is_symlink()
    assert cache.get(KEY) == ANSWER
    assert (outside / "important").read_text() == FORGED
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file


def test_a_shard_folder_that_is_a_link_is_refused(tmp_path: Path, outside: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    cache.directory.mkdir()
    (cache.directory / KEY[:2]).symlink_to(outside)
    with pytest.raises(OSError, match=r"ab is a symbolic link, not a folder tooltrial made"):
        cache.put(KEY, ANSWER)
    assert sorted(p.name for p in outside.iterdir()) == ["important"]
    assert (outside / "important").read_text() == FORGED


def test_a_full_disk_leaves_the_entry_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ResponseCache(tmp_path / "cache")
    path = entry(cache.directory)
    path.write_text("the old entry")
    real = os.write

    def full(fd: int, data: bytes) -> int:
        real(fd, bytes(data)[:5])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(WriteFailed, match=r"No space left on device \(ENOSPC\)"):
        cache.put(KEY, ANSWER)
    monkeypatch.undo()
    assert path.read_text() == "the old entry"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_run_over_a_cache_full_of_planted_links_changes_nothing_outside(
    tmp_path: Path, outside: Path, env: MessagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every entry of a first run is swapped for a link to a file outside, and one shard
    for a link to a folder outside: the second run calls the model for each cell (a link
    is no answer), warns once about the shard, and leaves both outside things as they
    were."""
    cache = tmp_path / "cache"
    args = ["run", str(TESTS / "experiment"), "--model", "anthropic:x", "--runs", "1"]
    args += ["--variant", "baseline", "--scenario", "no-call-weather"]
    args += ["--scenario", "no-call-small-talk", "--cache", str(cache)]
    assert main([*args, "--results", str(tmp_path / "a")]) == 0
    entries = sorted(cache.glob("*/*.json"))
    assert len(entries) == 2
    for path in entries:
        path.unlink()
        path.symlink_to(outside / "important")
    shard = entries[0].parent
    for path in shard.iterdir():
        path.unlink()
    shard.rmdir()
    shard.symlink_to(outside)
    capsys.readouterr()
    calls = len(env.requests)

    assert main([*args, "--results", str(tmp_path / "b")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    asked = [str(r.body["messages"][0]["content"]) for r in env.requests[calls:]]
    cells = sorted(a for a in asked if a != "ping")  # the preflight's are not cells
    assert cells == ["Thanks, you're a lifesaver!", "Will it rain tomorrow?"], asked
    assert err.count("is a symbolic link, not a folder tooltrial made") == 1, err
    assert sorted(p.name for p in outside.iterdir()) == ["important"]
    assert (outside / "important").read_text() == FORGED
    if entries[1].parent != shard:  # the other entry was replaced by a real one
        assert entries[1].is_file() and not entries[1].is_symlink()
