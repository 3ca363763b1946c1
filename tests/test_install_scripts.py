"""scripts/uncache_libraries.py: which files of a new environment it drops from the page cache."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "uncache_libraries.py"


def test_drops_libraries_of_a_mebibyte_or_more_only(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "pkg"
    site.mkdir(parents=True)
    (site / "_big.abi3.so").write_bytes(b"\0" * (2 << 20))
    (site / "libdep.so.1.2").write_bytes(b"\0" * (1 << 20))
    (site / "_small.so").write_bytes(b"\0" * 4096)  # below the threshold
    (site / "data.source.txt").write_bytes(b"\0" * (3 << 20))  # not a library
    (site / "link.so").symlink_to(site / "_big.abi3.so")  # counted once, as its file
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "dropped 3 MiB of newly installed libraries from the page cache"


def test_a_file_that_cannot_be_opened_is_skipped(tmp_path: Path) -> None:
    uncache = runpy.run_path(str(SCRIPT))["uncache"]
    assert uncache(tmp_path / "missing.so") is False
    library = tmp_path / "present.so"
    library.write_bytes(b"\0" * 8192)
    assert uncache(library) is True
