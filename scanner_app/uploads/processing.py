"""Processing one stored upload: what is it, and which captures does it make?

- JPEG/PNG/TIFF (by content): one capture, valid when it decodes completely.
- ZIP archive (by content): extracted safely (archive_safety.py) into a folder beside it in
  the upload's folder; each image inside becomes a capture, nested archives are kept and
  counted invalid, other files are kept without counting.
- Anything else (an empty file included): kept, one invalid capture with the reason.

Runs in the uploads job (jobs/upload_job.py), or in the request when the queue is down.
"""

from __future__ import annotations

import errno
import logging
import os
import zipfile
import zlib
from typing import BinaryIO

from scanner_app.config import Settings
from scanner_app.models import Upload
from scanner_app.platform.extensions import db
from scanner_app.platform.storage import StorageManager
from scanner_app.uploads.claims import Claim, ClaimLost
from scanner_app.uploads.files.archive_safety import (
    NESTED_ARCHIVE_EXTENSIONS,
    ArchiveRejected,
    MemberTooLarge,
    copy_member,
    describe_skipped,
    plan_zip,
    precheck_zip,
    sniff_archive,
)
from scanner_app.uploads.files.folder import UploadFolder
from scanner_app.uploads.files.image_check import (
    IMAGE_EXTENSIONS,
    OTHER_IMAGE_EXTENSIONS,
    check_image,
    sniff_image_format,
)
from scanner_app.uploads.files.names import split_extension
from scanner_app.uploads.recorder import (
    Draft,
    Recorder,
    UploadGone,
    finish,
    reset_partial,
)

log = logging.getLogger("scanner.uploads")

HEAD_BYTES = 512
EMPTY_FILE = "The file is empty (0 bytes)."
NESTED_ARCHIVE = ("It is a nested archive: archives inside an archive are kept but not "
                  "extracted.")


def extraction_folder_name(stored_name: str) -> str:
    """'photos.zip' -> 'photos'; a name without extension gets '_files' so it never equals
    the archive's own name."""
    stem, ext = split_extension(stored_name)
    return stem if ext else f"{stored_name}_files"


def _extension(name: str) -> str:
    return split_extension(name)[1].lower()


def image_draft(parts: tuple[str, ...], handle: BinaryIO, settings: Settings) -> Draft:
    """A capture for something that is (or claims to be) an image."""
    handle.seek(0)
    check = check_image(handle, settings.timezone)
    ext = _extension(parts[-1])
    if not check.valid:
        reason = check.reason
        if ext in OTHER_IMAGE_EXTENSIONS and reason and reason.startswith("It is not"):
            reason = f"{ext[1:].upper()} images are not accepted; send JPEG, PNG or TIFF."
        elif ext in IMAGE_EXTENSIONS and reason and reason.startswith("It is not"):
            reason = f"It is named {ext} but is not a JPEG, PNG or TIFF image."
        return Draft(parts, False, reason)
    note = None
    if ext in IMAGE_EXTENSIONS and IMAGE_EXTENSIONS[ext] != check.format:
        note = f"Named {ext} but holds a {check.format} image."  # the real format, recorded
    return Draft(parts, True, note, check.width, check.height, check.taken_at)


def _not_an_image_reason(name: str, head: bytes) -> str:
    ext = _extension(name)
    if ext in IMAGE_EXTENSIONS:
        return f"It is named {ext} but is not a JPEG, PNG or TIFF image."
    if ext in OTHER_IMAGE_EXTENSIONS:
        return f"{ext[1:].upper()} images are not accepted; send JPEG, PNG or TIFF."
    return "It is neither a JPEG, PNG or TIFF image nor a ZIP archive."


def _size(handle: BinaryIO) -> int:
    return os.fstat(handle.fileno()).st_size


class UploadProcessor:
    def __init__(self, upload: Upload, settings: Settings, storage: StorageManager,
                 claim: Claim):
        self.upload_id = upload.id
        self.stored_name = upload.stored_name or "file"
        self.settings = settings
        self.claim = claim
        self.recorder = Recorder(upload.id, storage, claim)
        self.notes: list[str] = []

    def run(self, folder: UploadFolder) -> str | None:
        """Process the stored file; returns the note for the upload (or None)."""
        parts = (self.stored_name,)
        with folder.open_read(list(parts)) as handle:
            head = handle.read(HEAD_BYTES)
            if _size(handle) == 0:
                self.recorder.add(Draft(parts, False, EMPTY_FILE))
            elif sniff_image_format(head):
                self.recorder.add(image_draft(parts, handle, self.settings))
            elif zipfile.is_zipfile(handle):
                self._extract(folder, handle)
            elif kind := sniff_archive(head):
                self.recorder.add(Draft(parts, False, f"It is a {kind} archive; only ZIP "
                                                      "archives are extracted."))
            else:
                self.recorder.add(Draft(parts, False, _not_an_image_reason(parts[0], head)))
        self.recorder.flush()
        return " ".join(self.notes) or None

    # --- archives ----------------------------------------------------------------------
    def _extract(self, folder: UploadFolder, handle: BinaryIO) -> None:
        archive_parts = (self.stored_name,)
        try:
            precheck_zip(handle)
        except ArchiveRejected as exc:
            self.recorder.add(Draft(archive_parts, False, str(exc)))
            return
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError):
            self.recorder.add(Draft(archive_parts, False, "It looks like a ZIP archive but is "
                                                          "damaged, so nothing was extracted."))
            return
        with archive:
            reserve = self.settings.disk_reserve_mb * 1024 * 1024
            try:
                plan = plan_zip(archive, _size(handle), folder.free_bytes() - reserve)
            except ArchiveRejected as exc:
                self.recorder.add(Draft(archive_parts, False, str(exc)))
                return
            root = extraction_folder_name(self.stored_name)
            self.claim.renew(self.upload_id)  # still ours? Then nobody else writes here
            folder.remove([root])  # a re-run after a crash starts from an empty folder
            budget = sum(m.info.file_size for m in plan.members)
            skipped = list(plan.skipped)
            images = others = 0
            for member in plan.members:
                self.claim.checkpoint(self.upload_id)
                try:
                    used, out = folder.create([root, *member.parts])
                except OSError as exc:  # e.g. a file and a folder of the same name
                    if exc.errno == errno.ENOSPC:
                        raise  # not this entry's fault: the whole upload waits for space
                    skipped.append((member.info.filename, f"it could not be written: {exc}"))
                    continue
                damaged = False
                with out:
                    try:
                        budget -= copy_member(archive, member.info, out, budget)
                    except (zipfile.BadZipFile, zlib.error, MemberTooLarge, EOFError,
                            NotImplementedError, RuntimeError) as exc:
                        damaged = True
                        log.info("Upload %s: damaged entry %r: %s", self.upload_id,
                                 member.info.filename, exc)
                    out.flush()
                    os.fsync(out.fileno())
                draft = self._member_draft(folder, tuple(used), damaged)
                if draft is None:
                    others += 1
                    if damaged:
                        skipped.append((member.info.filename, "it is damaged in the archive"))
                    continue
                images += 1
                self.recorder.add(draft)
            if skipped:
                self.notes.append(describe_skipped(skipped))
            if images == 0:
                self.notes.append("The archive holds no images.")
            if others:
                what = ("1 file that is not an image was" if others == 1 else
                        f"{others} files that are not images were")
                self.notes.append(f"{what} kept but not counted.")

    def _member_draft(self, folder: UploadFolder, parts: tuple[str, ...],
                      damaged: bool) -> Draft | None:
        """A capture for an extracted entry, or None when it is not an image at all."""
        name = parts[-1]
        ext = _extension(name)
        with folder.open_read(list(parts)) as handle:
            head = handle.read(HEAD_BYTES)
            if sniff_archive(head) or ext in NESTED_ARCHIVE_EXTENSIONS:
                return Draft(parts, False, NESTED_ARCHIVE)
            looks_like_image = (sniff_image_format(head) or ext in IMAGE_EXTENSIONS
                                or ext in OTHER_IMAGE_EXTENSIONS)
            if not looks_like_image:
                return None
            if damaged:
                return Draft(parts, False, "It is damaged in the archive and could not be "
                                           "extracted completely.")
            if _size(handle) == 0:
                return Draft(parts, False, EMPTY_FILE)
            return image_draft(parts, handle, self.settings)


def process_upload(upload_id: int, settings: Settings, claim: Claim) -> str:
    """Process one upload that `claim` holds to 'done' (or leave it for the caller to mark
    'failed' when this raises). Returns "done", or "skipped" when there was nothing for this
    run to do: the upload is gone, finished, or held by another run (which it then leaves
    alone, counters included)."""
    if not claim.acquire(upload_id):  # finished, gone, or another live run holds it
        return "skipped"
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status != "processing":
        return "skipped"
    storage = StorageManager(settings.data_dir)
    try:
        if upload.captures_count:
            reset_partial(upload_id, storage, claim)
        folder = _open_folder(upload_id, storage)
        with folder:
            note = UploadProcessor(upload, settings, storage, claim).run(folder)
    except UploadGone:
        db.session.rollback()
        log.info("Upload %s was deleted with its session while being processed", upload_id)
        return "skipped"
    except ClaimLost:
        db.session.rollback()
        log.warning("Upload %s was taken over by another run; this run left it alone",
                    upload_id)
        return "skipped"
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        # Not the file's fault: it stays 'processing', unclaimed, and recovery queues it
        # again once space is freed (the next run starts it over).
        db.session.rollback()
        claim.release(upload_id)
        log.warning("Upload %s: the disk is full; it is processed again once space is freed",
                    upload_id)
        return "skipped"
    if not finish(upload_id, "done", note, claim.token):
        log.warning("Upload %s was taken over by another run before it was finished",
                    upload_id)
        return "skipped"
    log.info("Upload %s processed", upload_id)
    return "done"


def _open_folder(upload_id: int, storage: StorageManager) -> UploadFolder:
    """Open the upload's folder where its session is now (re-read: a merge may have moved
    it since the job started)."""
    for _ in range(3):
        db.session.expire_all()
        upload = db.session.get(Upload, upload_id)
        if upload is None:
            raise UploadGone(upload_id)
        try:
            return UploadFolder(storage.upload_dir(upload.session_id, upload_id))
        except FileNotFoundError:
            db.session.rollback()
    raise FileNotFoundError(
        f"The folder of upload {upload_id} is missing from its session directory.")
