"""Worker processes leave no empty Faust data folders behind."""

from __future__ import annotations

from streams.tools.worker_process import remove_empty_folders


def test_empty_data_folders_are_removed_and_files_kept(tmp_path) -> None:
    empty = tmp_path / "lepton-worker-bench1-data"
    (empty / "v1" / "tables").mkdir(parents=True)
    kept = tmp_path / "lepton-worker-data"
    (kept / "v1" / "tables").mkdir(parents=True)
    (kept / "v1" / "empty").mkdir()
    (kept / "v1" / "tables" / "state.db").write_bytes(b"x")
    remove_empty_folders(empty)
    remove_empty_folders(kept)
    remove_empty_folders(tmp_path / "never-made")
    assert not empty.exists()
    assert (kept / "v1" / "tables" / "state.db").exists() and not (kept / "v1" / "empty").exists()


def test_a_folder_gone_already_is_fine(tmp_path) -> None:  # the workers of a group tidy the same folder side by side
    remove_empty_folders(tmp_path / "gone")
    assert not (tmp_path / "gone").exists()
