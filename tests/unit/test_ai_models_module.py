"""The lpfleet.ai.ai_models module: write, validate only, check mode, diff, backup, modes, tokens."""

import errno
import json
import os
import stat

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.lpfleet.ai.plugins.modules import ai_models

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
TOKEN = "runner-token-b7c1e"

T2I = {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "price_per_unit": 4768371,
       "warm": True, "optimization_flags": {"SFAST": True}}
LLM = {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True, "price_per_unit": 0.18,
       "currency": "USD", "pixels_per_unit": 1000000, "url": "http://llm_runner:8000"}


@pytest.fixture
def logged(monkeypatch):
    """What the module sends to syslog/journal (the invocation line included)."""
    messages = []
    monkeypatch.setattr(AnsibleModule, "log", lambda self, msg, log_args=None: messages.append(msg))
    return messages


@pytest.fixture
def run(capsys, logged):
    def run_module(**args):
        with patch_module_args(args), pytest.raises(SystemExit) as exited:
            ai_models.main()
        output = capsys.readouterr().out
        result = json.loads(output)
        result["_raw"] = output
        result["_rc"] = exited.value.code
        return result

    return run_module


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def fixture_text(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def test_writes_canonical_json_with_mode_0644(run, tmp_path):
    path = tmp_path / "aiModels.json"
    result = run(path=str(path), entries=[T2I, LLM])
    assert result["_rc"] == 0 and result["changed"] is True
    text = path.read_text()
    assert json.loads(text) == [T2I, LLM]
    assert text.endswith("]\n") and '\n  {\n    "pipeline": "text-to-image",' in text
    assert mode_of(path) == 0o644
    assert result["backup_file"] is None and result["errors"] == [] and result["advice"] == []
    assert result["created"] is True


def test_second_run_is_unchanged_and_writes_nothing(run, tmp_path):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I, LLM])
    before = os.stat(path)
    result = run(path=str(path), entries=[T2I, LLM])
    assert result["changed"] is False
    assert os.stat(path).st_ino == before.st_ino and os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert list(tmp_path.iterdir()) == [path]  # no backup, no temporary file left


def test_same_entries_in_other_formatting_are_unchanged(run, tmp_path):
    path = tmp_path / "aiModels.json"
    path.write_text(json.dumps([LLM], separators=(",", ":")))
    os.chmod(path, 0o644)
    result = run(path=str(path), entries=[LLM])
    assert result["changed"] is False
    assert path.read_text() == json.dumps([LLM], separators=(",", ":"))


def test_changed_entries_replace_the_file_and_keep_a_backup(run, tmp_path):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    old_text = path.read_text()
    result = run(path=str(path), entries=[T2I, LLM])
    assert result["changed"] is True
    assert json.loads(path.read_text()) == [T2I, LLM]
    assert result["backup_file"] and open(result["backup_file"], encoding="utf-8").read() == old_text
    assert result["created"] is False


def test_no_backup_when_asked(run, tmp_path):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    result = run(path=str(path), entries=[LLM], backup=False)
    assert result["backup_file"] is None and len(list(tmp_path.iterdir())) == 1


def test_check_mode_reports_the_change_and_writes_nothing(run, tmp_path):
    path = tmp_path / "aiModels.json"
    result = run(path=str(path), entries=[T2I], _ansible_check_mode=True)
    assert result["changed"] is True and not path.exists()
    run(path=str(path), entries=[T2I])
    old = path.read_text()
    result = run(path=str(path), entries=[LLM], _ansible_check_mode=True)
    assert result["changed"] is True and path.read_text() == old
    assert run(path=str(path), entries=[T2I], _ansible_check_mode=True)["changed"] is False


def test_diff_shows_before_and_after(run, tmp_path):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    old = path.read_text()
    result = run(path=str(path), entries=[T2I, LLM], _ansible_diff=True, _ansible_check_mode=True)
    assert result["diff"]["before"] == old
    assert json.loads(result["diff"]["after"]) == [T2I, LLM]
    unchanged = run(path=str(path), entries=[T2I], _ansible_diff=True)
    assert unchanged["diff"]["before"] == unchanged["diff"]["after"] == old


def test_token_makes_the_file_0600_and_never_shows(run, tmp_path, logged):
    path = tmp_path / "aiModels.json"
    with_token = dict(LLM, token=TOKEN)
    result = run(path=str(path), entries=[with_token], _ansible_diff=True)
    assert mode_of(path) == 0o600
    assert json.loads(path.read_text())[0]["token"] == TOKEN
    assert TOKEN not in result["_raw"]
    assert result["entries"][0]["token"] != TOKEN
    assert not any(TOKEN in message for message in logged)  # the module logs no invocation at all


def test_token_removed_makes_the_file_0644_and_the_old_token_stays_hidden(run, tmp_path):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[dict(LLM, token=TOKEN)])
    result = run(path=str(path), entries=[LLM], _ansible_diff=True)
    assert mode_of(path) == 0o644
    assert TOKEN not in result["_raw"]  # the diff's "before" had it


def test_explicit_mode_wins_and_a_mode_change_alone_is_a_change(run, tmp_path):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    result = run(path=str(path), entries=[T2I], mode="0640")
    assert result["changed"] is True and mode_of(path) == 0o640


def test_errors_fail_listing_all_and_leave_the_file_alone(run, tmp_path):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    before = path.read_bytes()
    bad = [dict(LLM, pipeline="LLM", price_per_unit="0.5e-3USD"), dict(T2I, model_id="llama3.1:8b")]
    result = run(path=str(path), entries=bad)
    assert result["_rc"] == 1 and result["failed"] is True
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    assert [(e["index"], e["field"]) for e in result["errors"]] == [
        (0, "price_per_unit"), (0, "pipeline"), (1, "model_id")]
    lines = result["msg"].splitlines()
    assert "3 error(s)" in lines[0] and "nothing was written" in lines[0]
    assert lines[1].startswith('entry [0].price_per_unit = "0.5e-3USD"') and '"currency": "USD"' in lines[1]
    assert len(lines) == 4


def test_warm_slots_checked_with_gpu_count(run, tmp_path):
    whisper = {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "price_per_unit": 12882811,
               "warm": True}
    path = tmp_path / "aiModels.json"
    result = run(path=str(path), entries=[T2I, whisper], gpu_count=1)
    assert result["_rc"] == 1 and [e["field"] for e in result["errors"]] == ["warm"] and not path.exists()
    assert run(path=str(path), entries=[T2I, whisper], gpu_count=1, containers_per_gpu=2)["_rc"] == 0


def test_warnings_are_returned_and_shown_and_do_not_fail(run, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning: shown.append(warning))
    path = tmp_path / "aiModels.json"
    result = run(path=str(path), entries=[dict(T2I, currency="EUR")])
    assert result["_rc"] == 0 and path.exists()
    assert [w["field"] for w in result["advice"]] == ["currency"]
    assert shown == ['aiModels.json entry [0].currency = "EUR": ' + result["advice"][0]["message"] + " Fix: "
                     + result["advice"][0]["fix"]]


def test_missing_directory_fails_clearly(run, tmp_path):
    result = run(path=str(tmp_path / "absent" / "aiModels.json"), entries=[T2I])
    assert result["_rc"] == 1 and "does not exist" in result["msg"]


def test_a_replaced_file_keeps_its_owner(run, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    os.chown(path, 4321, 4321)
    run(path=str(path), entries=[LLM])
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (4321, 4321)


# --- validate only --------------------------------------------------------------------------


def test_validate_only_accepts_the_docs_example_file(run, tmp_path):
    path = tmp_path / "aiModels.json"
    path.write_text(fixture_text("aimodels_docs_multi_pipeline.json"))
    before = path.read_bytes()
    result = run(path=str(path), gpu_count=2)
    assert result["_rc"] == 0 and result["changed"] is False and result["errors"] == []
    assert len(result["entries"]) == 4 and path.read_bytes() == before


def test_validate_only_reports_every_error_in_a_broken_file(run, tmp_path):
    path = tmp_path / "aiModels.json"
    path.write_text(fixture_text("aimodels_broken.json"))
    before = path.read_bytes()
    result = run(path=str(path))
    assert result["_rc"] == 1 and path.read_bytes() == before
    fields = {(e["index"], e["field"]) for e in result["errors"]}
    assert {(0, "pipeline"), (0, "price_per_unit"), (1, "model_id"), (1, "warm"), (2, "optimization_flags"),
            (3, "pipeline")} <= fields
    assert "go-livepeer would not start" in result["msg"]


def test_validate_only_reports_a_trailing_comma_with_its_position(run, tmp_path):
    path = tmp_path / "aiModels.json"
    path.write_text(fixture_text("aimodels_trailing_comma.json"))
    result = run(path=str(path))
    assert result["_rc"] == 1 and "trailing comma before ']' at line 9 column 1" in result["msg"]


def test_validate_only_refuses_a_readable_token_file_and_hides_the_token(run, tmp_path):
    path = tmp_path / "aiModels.json"
    path.write_text(json.dumps([dict(LLM, token=TOKEN)]))
    os.chmod(path, 0o644)
    result = run(path=str(path))
    assert result["_rc"] == 1 and [e["field"] for e in result["errors"]] == ["mode"]
    assert "0644" in result["msg"] and "chmod 600" in result["msg"]
    assert TOKEN not in result["_raw"]


def test_validate_only_fails_on_a_missing_file(run, tmp_path):
    result = run(path=str(tmp_path / "aiModels.json"))
    assert result["_rc"] == 1 and "does not exist" in result["msg"] and "inline" in result["msg"]


# --- issue 12: token file modes, symlinks, backups, secrets in every form ---------------------


def backups_of(path):
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name + ".") and p.name.endswith("~"))


@pytest.mark.parametrize("mode", ["0644", "0640", "0604", 0o644, "u=rw,g=r"])
def test_a_mode_looser_than_0600_for_a_token_file_is_an_error(run, tmp_path, mode):
    path = tmp_path / "aiModels.json"
    result = run(path=str(path), entries=[dict(LLM, token=TOKEN)], mode=mode)
    assert result["_rc"] == 1 and result["errors"][0]["field"] == "mode" and "0600" in result["msg"]
    assert not path.exists() and TOKEN not in result["_raw"]


def test_a_loose_mode_without_a_token_is_fine(run, tmp_path):
    result = run(path=str(tmp_path / "aiModels.json"), entries=[T2I], mode="0644")
    assert result["_rc"] == 0


def test_a_symlink_is_written_through_to_its_target_and_said_plainly(run, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning: shown.append(warning))
    target = tmp_path / "real" / "aiModels.json"
    target.parent.mkdir()
    run(path=str(target), entries=[T2I])
    link = tmp_path / "aiModels.json"
    link.symlink_to(target)
    result = run(path=str(link), entries=[T2I, LLM])
    assert result["_rc"] == 0 and result["changed"] is True and result["target"] == str(target)
    assert link.is_symlink() and json.loads(target.read_text()) == [T2I, LLM]
    assert any("symbolic link" in warning and str(target) in warning for warning in shown), shown
    assert result["backup_file"].startswith(str(target) + ".")
    again = run(path=str(link))
    assert again["_rc"] == 0 and again["target"] == str(target)


def test_backups_are_created_0600_whatever_the_umask(run, tmp_path):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    old_umask = os.umask(0o000)
    try:
        result = run(path=str(path), entries=[LLM])
    finally:
        os.umask(old_umask)
    assert mode_of(result["backup_file"]) == 0o600


def test_only_the_last_backups_are_kept(run, tmp_path):
    path = tmp_path / "aiModels.json"
    prices = [100, 200, 300, 400, 500, 600]
    for price in prices:
        run(path=str(path), entries=[dict(T2I, price_per_unit=price)])
    kept = backups_of(path)
    assert len(kept) == 3
    assert [json.loads(p.read_text())[0]["price_per_unit"] for p in kept] == [300, 400, 500]
    result = run(path=str(path), entries=[dict(T2I, price_per_unit=700)], backups_kept=1)
    assert len(backups_of(path)) == 1 and len(result["backups_removed"]) == 3


def test_a_token_rotation_leaves_no_old_token_in_any_backup(run, tmp_path):
    path = tmp_path / "aiModels.json"
    tokens = ["first-token-1a", "second-token-2b", "third-token-3c"]
    for token in tokens:
        run(path=str(path), entries=[dict(LLM, token=token)])
    # a copy made the old way, readable by others, also holding a retired token
    stray = tmp_path / "aiModels.json.123.2020-01-01@00:00:00~"
    stray.write_text(json.dumps([dict(LLM, token=tokens[0])]))
    os.chmod(stray, 0o644)
    os.utime(stray, (0, 0))
    result = run(path=str(path), entries=[dict(LLM, token="fourth-token-4d")])
    assert result["_rc"] == 0
    for backup in backups_of(path):
        text = backup.read_text()
        assert not any(token in text for token in tokens), backup.name
        assert mode_of(backup) == 0o600
        assert json.loads(text)[0]["token"] == "********"
    assert "fourth-token-4d" in path.read_text()


@pytest.mark.parametrize("token", ['quote"in-token', "back\\slash-token", "uni\u00e9-token\u2028x"])
def test_tokens_never_show_in_any_form_in_diff_or_result(run, tmp_path, logged, token):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[dict(LLM, token="old-" + token)])
    result = run(path=str(path), entries=[dict(LLM, token=token)], _ansible_diff=True)
    assert result["_rc"] == 0 and result["diff"]["after"]
    shown = result["_raw"] + "\n".join(logged)
    for secret in (token, "old-" + token):
        for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
            assert form not in shown, form


def test_secret_looking_unknown_keys_and_url_passwords_never_show(run, tmp_path):
    path = tmp_path / "aiModels.json"
    path.write_text(json.dumps([dict(LLM, tokne="typo-secret-9z", Authorization="Bearer hdr-secret-8y",
                                     url="http://user:url-secret-7x@llm_runner:8000")]))
    os.chmod(path, 0o600)
    result = run(path=str(path))
    for secret in ("typo-secret-9z", "hdr-secret-8y", "url-secret-7x"):
        assert secret not in result["_raw"]
    assert {w["field"] for w in result["advice"]} >= {"tokne", "Authorization"}


@pytest.mark.parametrize("args, says", [
    ({"containers_per_gpu": 0}, "containers_per_gpu=0"),
    ({"gpu_count": -1}, "gpu_count=-1"),
    ({"backups_kept": 0}, "backups_kept=0"),
])
def test_bad_numbers_are_refused_before_anything(run, tmp_path, args, says):
    path = tmp_path / "aiModels.json"
    result = run(path=str(path), entries=[T2I], **args)
    assert result["_rc"] == 1 and says in result["msg"] and not path.exists()


@pytest.mark.parametrize("price", [float("inf"), float("nan"), float("-inf")])
def test_non_finite_prices_are_refused_and_nothing_is_written(run, tmp_path, price):
    path = tmp_path / "aiModels.json"
    result = run(path=str(path), entries=[dict(T2I, price_per_unit=price)])
    assert result["_rc"] == 1 and "not a finite number" in result["msg"] and not path.exists()


# --- issue 13: a full disk leaves the old file and nothing else; the move is Ansible's atomic_move ---


class TinyDisk:
    """os.write for files under DIRECTORY as on a file system with ROOM bytes left: the write that
    would go past it fails with ENOSPC, as the kernel's does. Other files are written normally."""

    def __init__(self, directory, room, real_write):
        self.directory = str(directory)
        self.room = room
        self.real_write = real_write

    def write(self, fd, data):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if not path.startswith(self.directory + os.sep):
            return self.real_write(fd, data)
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.real_write(fd, data)


@pytest.fixture
def tiny_disk(monkeypatch, tmp_path):
    def fill(room):
        disk = TinyDisk(tmp_path, room, os.write)
        monkeypatch.setattr(os, "write", disk.write)
        return disk
    return fill


def written(path):
    run_bytes = path.read_bytes()
    return run_bytes, sorted(entry.name for entry in path.parent.iterdir())


@pytest.mark.parametrize(("room", "stopped_at"), [(0, "the new file"), (400, "the backup")])
def test_a_full_disk_leaves_the_old_file_and_nothing_else(run, tmp_path, tiny_disk, room, stopped_at):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I, LLM])
    before = written(path)
    new_size = len(ai_models.render([T2I]).encode())
    assert new_size <= 400 < len(path.read_bytes())  # 400 bytes: room for the new file, not the backup

    tiny_disk(room)
    result = run(path=str(path), entries=[T2I])

    assert result["_rc"] == 1, result
    assert written(path) == before, "the old file changed or a file was left behind"
    msg = result["msg"]
    assert msg.startswith(f"no space left on {tmp_path}: writing aiModels.json needs "), msg
    assert f"the new file {new_size} bytes" in msg and f"the backup {len(before[0])} bytes" in msg
    assert "is unchanged and nothing was left behind" in msg and "Fix: free at least" in msg
    assert result["backup_file"] is None
    assert stopped_at  # the parameter names where the disk ran out, for the test's id


def test_a_failed_move_removes_the_temporary_file_and_the_backup(run, tmp_path, monkeypatch):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    before = written(path)

    def no_room_for_the_rename(self, src, dest, unsafe_writes=False, keep_dest_attrs=True):
        raise Exception(f"Could not replace {dest!r} with {src!r}.") from OSError(errno.ENOSPC, "No space")
    monkeypatch.setattr(AnsibleModule, "atomic_move", no_room_for_the_rename)
    result = run(path=str(path), entries=[LLM])

    assert result["_rc"] == 1 and result["msg"].startswith(f"no space left on {tmp_path}"), result
    assert written(path) == before


def test_other_write_failures_also_leave_nothing_behind(run, tmp_path, monkeypatch):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    before = written(path)

    def refused(self, src, dest, unsafe_writes=False, keep_dest_attrs=True):
        raise Exception(f"Could not replace {dest!r} with {src!r}.") from PermissionError(errno.EACCES, "denied")
    monkeypatch.setattr(AnsibleModule, "atomic_move", refused)
    result = run(path=str(path), entries=[LLM])

    assert result["_rc"] == 1 and result["msg"].startswith(f"cannot write {path}: Could not replace"), result
    assert "It is unchanged and nothing was left behind." in result["msg"]
    assert written(path) == before


def test_the_file_is_moved_by_ansibles_atomic_move_and_a_token_is_never_readable(run, tmp_path, monkeypatch):
    path = tmp_path / "aiModels.json"
    run(path=str(path), entries=[T2I])
    assert mode_of(path) == 0o644
    seen = []
    real_move = AnsibleModule.atomic_move

    def spy(self, src, dest, unsafe_writes=False, keep_dest_attrs=True):
        dest_mode = mode_of(dest) if os.path.exists(dest) else None
        seen.append((os.path.dirname(src) == str(tmp_path), mode_of(src), dest_mode))
        real_move(self, src, dest, unsafe_writes=unsafe_writes, keep_dest_attrs=keep_dest_attrs)
        seen.append(mode_of(dest))
    monkeypatch.setattr(AnsibleModule, "atomic_move", spy)
    old_umask = os.umask(0o000)
    try:
        result = run(path=str(path), entries=[dict(LLM, token=TOKEN)])
        run(path=str(tmp_path / "new.json"), entries=[dict(LLM, token=TOKEN)])
    finally:
        os.umask(old_umask)

    assert result["changed"] is True and mode_of(path) == 0o600
    # Beside the target (same file system), and no group or other bit at any moment: the old file is
    # tightened before the move copies its mode, and a new file is created under umask 077.
    assert seen[0] == (True, 0o600, 0o600) and seen[1] == 0o600
    assert seen[2] == (True, 0o600, None) and seen[3] == 0o600
