"""Atomic file writes: a reader (or a crash) never sees half a photo at the final path."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from hal.errors import DISK_FULL_MESSAGE


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then os.replace it into place.

    The temp file lives in the same directory so os.replace is a same-filesystem rename,
    which POSIX makes atomic. On any failure the temp file is removed and `path` is left
    as it was. A full disk raises OSError(ENOSPC) with a sentence a maker understands.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, DISK_FULL_MESSAGE, str(path)) from exc
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is flushed too.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the data is already safe
    finally:
        os.close(dir_fd)
