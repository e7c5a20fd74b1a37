"""Builders for upload tests: images, archives (bombs included), multipart bodies, and a
check that a request wrote nothing outside its session directory."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

from PIL import Image

SESSION_EXTRA = {"scanner.db", "scanner.db-wal", "scanner.db-shm", "secret_key",
                 ".sessions-changed"}  # the stamp of session changes (platform/storage.py)


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color=(40, 120, 110),
                taken: str | None = None, offset: str | None = None, seed: int = 0) -> bytes:
    """A small image; `seed` makes otherwise equal images differ in their bytes."""
    if seed:
        # 53 is coprime with 256: seeds 1..255 give 255 different reds, which survive JPEG.
        color = ((color[0] + seed * 53) % 256, (color[1] + (seed // 256) * 101) % 256,
                 color[2])
    img = Image.new("RGB", size, color)
    img.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 7))
    exif = Image.Exif()
    if taken:
        ifd = exif.get_ifd(0x8769)
        ifd[36867] = taken
        if offset:
            ifd[36881] = offset
    buffer = io.BytesIO()
    options = {"exif": exif} if taken else {}
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_with_symlink(link_name: str, target: str, extra: dict[str, bytes] | None = None
                     ) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(link_name)
        info.create_system = 3  # Unix
        info.external_attr = (0o120777 << 16)  # S_IFLNK | 0777
        archive.writestr(info, target)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_with_raw_names(members: list[tuple[str, bytes]]) -> bytes:
    """A ZIP whose entry names are stored exactly as given (zipfile's writer would accept
    '../x' too, but this states the intent: hostile names)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def forge_declared_size(data: bytes, member: str, declared: int) -> bytes:
    """Rewrite the uncompressed size of `member` in both its local header and the central
    directory: a small archive that claims to unpack to `declared` bytes."""
    raw = bytearray(data)
    name = member.encode()
    local = raw.find(b"PK\x03\x04")
    while local != -1:
        name_len = struct.unpack_from("<H", raw, local + 26)[0]
        if bytes(raw[local + 30: local + 30 + name_len]) == name:
            struct.pack_into("<I", raw, local + 22, declared)
        local = raw.find(b"PK\x03\x04", local + 4)
    central = raw.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", raw, central + 28)[0]
        if bytes(raw[central + 46: central + 46 + name_len]) == name:
            struct.pack_into("<I", raw, central + 24, declared)
        central = raw.find(b"PK\x01\x02", central + 4)
    return bytes(raw)


def files_payload(files: list[tuple[str, bytes]], session_id: int | str | None = None) -> dict:
    """Data for the Flask test client: field 'files' repeated, optional 'session_id'."""
    data: dict = {"files": [(io.BytesIO(content), name) for name, content in files]}
    if session_id is not None:
        data["session_id"] = str(session_id)
    return data


def post_files(client, files: list[tuple[str, bytes]], session_id=None):
    return client.post("/api/v1/uploads", data=files_payload(files, session_id),
                       content_type="multipart/form-data")


def multipart_body(files: list[tuple[str, bytes]], boundary: str = "scannerTESTboundary",
                   fields: dict[str, str] | None = None) -> bytes:
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + value.encode() + b"\r\n")
    for filename, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def snapshot(root: Path) -> set[Path]:
    """Every file and folder below `root` (symbolic links included, never followed)."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(Path(folder, name))
    return found


def assert_written_only_inside(root: Path, before: set[Path], data_dir: Path,
                               session_id: int | None) -> None:
    """Everything new below `root` (the whole test's temp folder) is inside the session's
    directory, apart from the database and the station's own files; the staging folder is
    empty again."""
    allowed = data_dir / "sessions" / str(session_id) if session_id is not None else None
    new = snapshot(root) - before
    stray = []
    for path in new:
        if allowed is not None and (path == allowed or allowed in path.parents):
            continue
        if path.parent == data_dir and path.name in SESSION_EXTRA:
            continue
        if path in (data_dir / "sessions", data_dir / "incoming"):
            continue
        if allowed is not None and path in (data_dir / "sessions",):
            continue
        stray.append(path)
    assert not stray, f"written outside the session directory: {sorted(stray)}"
    incoming = data_dir / "incoming"
    if incoming.exists():
        assert list(incoming.iterdir()) == [], "staging folder not cleaned up"
    for path in new:
        assert not path.is_symlink(), f"a symbolic link was created: {path}"
