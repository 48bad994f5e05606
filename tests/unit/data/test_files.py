"""Local file helpers: the removal of a folder that a failed writer may still write into."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flowfactory.data.files import remove_settled


def test_a_folder_recreated_after_its_removal_is_removed_again(tmp_path: Path) -> None:
    """A late writer (as a failed sink's thread can be) recreates a file after the first
    removal; the folder is still gone when ``remove_settled`` returns."""
    folder = tmp_path / "staging" / "run"
    (folder / "month=1").mkdir(parents=True)
    (folder / "month=1" / "part-00000.parquet").write_bytes(b"x")

    def late_writer() -> None:
        time.sleep(0.05)
        (folder / "month=2").mkdir(parents=True, exist_ok=True)
        (folder / "month=2" / "part-00000.parquet").write_bytes(b"y")

    writer = threading.Thread(target=late_writer)
    writer.start()
    remove_settled(folder)
    writer.join()
    assert not folder.exists()
    assert (tmp_path / "staging").exists()  # only the folder itself goes
