"""File access inside one upload's folder through a directory file descriptor.

Why a descriptor and not paths: a session merge renames images/uploads/<id>/ into another
session while a job may be extracting into it. A descriptor follows the renamed folder, so
nothing is written to the old place (or re-creates a deleted session's directory), and
O_NOFOLLOW means no symbolic link is ever followed. Every name used here is one clean path
component (upload_names.py).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from scanner_app.uploads.files.names import with_counter

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class UploadFolder:
    def __init__(self, path: Path):
        self.fd = os.open(path, _DIR_FLAGS)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> UploadFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _walk(self, parts: list[str], create: bool) -> int:
        """A new descriptor for the folder parts[...] below this one (caller closes it)."""
        fd = os.dup(self.fd)
        try:
            for part in parts:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_read(self, parts: list[str]) -> BinaryIO:
        dir_fd = self._walk(parts[:-1], create=False)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        return os.fdopen(fd, "rb")

    def create(self, parts: list[str]) -> tuple[list[str], BinaryIO]:
        """Create a new file (never overwriting: 'name-2.ext' when taken). Returns the parts
        actually used and the file, open for writing."""
        dir_fd = self._walk(parts[:-1], create=True)
        try:
            name = parts[-1]
            for counter in range(2, 10_000):
                try:
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o644, dir_fd=dir_fd)
                    break
                except FileExistsError:
                    name = with_counter(parts[-1], counter)
            else:
                raise FileExistsError(parts[-1])
        finally:
            os.close(dir_fd)
        return [*parts[:-1], name], os.fdopen(fd, "wb")

    def remove(self, parts: list[str]) -> None:
        """Remove a file or a whole folder below this one; missing is fine."""
        dir_fd = self._walk(parts[:-1], create=False) if len(parts) > 1 else os.dup(self.fd)
        try:
            try:
                info = os.lstat(parts[-1], dir_fd=dir_fd)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(parts[-1], dir_fd=dir_fd)
            else:
                os.unlink(parts[-1], dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    def free_bytes(self) -> int:
        stats = os.fstatvfs(self.fd)
        return stats.f_bavail * stats.f_frsize
