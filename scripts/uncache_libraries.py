"""Drop the shared libraries an install just wrote from the page cache (``scripts/install.sh``).

Why: a library just written is whole in the page cache, as the writes left it, and processes that map it
were measured to count more of it as resident than once its pages had been read back from the disk
(Linux 6.18, ext4; the kernel maps cached pages around each fault, in the folios it holds them in). The
store engine's library alone is 555 MB (chdb's ``_chdb.abi3.so``). Measured with
``benchmarks/ingest.py`` in one freshly installed environment: peak RSS 1,040 and 1,020 MiB (426 and 422
MiB of the server's file-backed, the decoder process 143 MiB), then, after this script, 816 and 830 MiB
(275 and 276 MiB file-backed, 110 MiB) — what every run shows once those pages have been read back from
the disk (after a reboot, or once the kernel evicted them). Nothing of the processes' own memory
changes. Written back first (``fsync``: dirty pages cannot be dropped), then dropped
(``POSIX_FADV_DONTNEED``); best effort: a file that cannot be opened or advised is skipped.

Usage: python scripts/uncache_libraries.py VENV
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MIN_BYTES = 1 << 20  # small libraries are not worth a system call each


def uncache(path: Path) -> bool:
    """Write ``path`` back and drop it from the page cache; False when the system refused."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def main(venv: str) -> int:
    if not hasattr(os, "posix_fadvise"):  # not Linux: nothing to do
        return 0
    dropped = 0
    for path in Path(venv).rglob("*.so*"):
        library = path.name.endswith(".so") or ".so." in path.name  # libfoo.so, libfoo.so.1.2
        if library and path.is_file() and not path.is_symlink() and path.stat().st_size >= MIN_BYTES:
            dropped += path.stat().st_size if uncache(path) else 0
    print(f"dropped {dropped / 2**20:.0f} MiB of newly installed libraries from the page cache")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv"))
