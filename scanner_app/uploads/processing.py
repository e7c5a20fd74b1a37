"""Processing one stored upload: what is it, and which captures does it make?

- JPEG/PNG/TIFF (by content): one capture, valid when it decodes completely.
- ZIP archive (by content): extracted safely (archive_safety.py) into a folder beside it in
  the upload's folder; each file inside is judged as if it had been sent alone (`judge`);
  nested archives are kept and counted invalid. Only system clutter (.DS_Store, Thumbs.db,
  macOS resource forks) is kept without being counted.
- Anything else (another archive, a text file, an empty file): kept, one invalid capture
  with the reason, alone or inside a ZIP alike; the upload's `error` carries the reasons.

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
from scanner_app.models import Upload, UploadStatus
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
    invalid_files_sentence,
    reset_partial,
)

log = logging.getLogger("scanner.uploads")

HEAD_BYTES = 512
EMPTY_FILE = "The file is empty: it holds no bytes at all. Copy or export it again."
NOT_AN_IMAGE = "It is neither a JPEG, PNG or TIFF image nor a ZIP archive."
NESTED_ARCHIVE = ("It is an archive inside the archive; the station does not unpack those. "
                  "Upload it on its own.")
DAMAGED_ZIP = ("It looks like a ZIP archive but is damaged, so nothing was extracted. Copy it "
               "again or make a new ZIP.")
# Files that operating systems leave in folders; nobody sent them on purpose.
# Compared with the cleaned name, which has lost its leading dot.
SYSTEM_CLUTTER = frozenset({".ds_store", "ds_store", "thumbs.db", "desktop.ini"})


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
    return NOT_AN_IMAGE


def judge(parts: tuple[str, ...], handle: BinaryIO, settings: Settings) -> Draft:
    """The capture for a file that is not an archive, the same whether it was sent alone or
    found in a ZIP: valid when it is an image that decodes completely, else invalid with the
    reason."""
    handle.seek(0)
    head = handle.read(HEAD_BYTES)
    if _size(handle) == 0:
        return Draft(parts, False, EMPTY_FILE)
    if sniff_image_format(head):
        return image_draft(parts, handle, settings)
    return Draft(parts, False, _not_an_image_reason(parts[-1], head))


def _unwritable(exc: OSError) -> str:
    """Why an entry could not be written, without the OS's own words."""
    if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
        return "a file and a folder in the archive have the same name"
    if exc.errno == errno.ENAMETOOLONG:
        return "its name is too long for the disk"
    return "it could not be written to the disk"


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
        """Process the stored file; returns the note for the upload (or None). Afterwards
        `invalid_sentence()` says which files are not valid images, and why."""
        parts = (self.stored_name,)
        with folder.open_read(list(parts)) as handle:
            head = handle.read(HEAD_BYTES)
            if not sniff_image_format(head) and zipfile.is_zipfile(handle):
                self._extract(folder, handle)
            elif (kind := sniff_archive(head)) == "ZIP":  # ZIP's signature, no ZIP behind it
                self.recorder.add(Draft(parts, False, DAMAGED_ZIP))
            elif kind:
                self.recorder.add(Draft(parts, False, f"It is a {kind} archive; the station "
                                                      "unpacks only ZIP archives."))
            else:
                self.recorder.add(judge(parts, handle, self.settings))
        self.recorder.flush()
        return " ".join(self.notes) or None

    def invalid_sentence(self) -> str | None:
        return invalid_files_sentence(self.recorder)

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
            self.recorder.add(Draft(archive_parts, False, DAMAGED_ZIP))
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
            counted = 0
            for member in plan.members:
                self.claim.checkpoint(self.upload_id)
                try:
                    used, out = folder.create([root, *member.parts])
                except OSError as exc:  # e.g. a file and a folder of the same name
                    if exc.errno == errno.ENOSPC:
                        raise  # not this entry's fault: the whole upload waits for space
                    skipped.append((member.info.filename, _unwritable(exc)))
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
                    continue  # system clutter: kept on disk, never counted
                counted += 1
                self.recorder.add(draft)
            if skipped:
                self.notes.append(describe_skipped(skipped))
            if counted == 0:
                self.notes.append("The archive holds no files besides system clutter.")

    def _member_draft(self, folder: UploadFolder, parts: tuple[str, ...],
                      damaged: bool) -> Draft | None:
        """The capture for an extracted entry, judged as if it had been sent alone; None for
        system clutter."""
        name = parts[-1]
        if name.lower() in SYSTEM_CLUTTER:
            return None
        ext = _extension(name)
        with folder.open_read(list(parts)) as handle:
            head = handle.read(HEAD_BYTES)
            if sniff_archive(head) or ext in NESTED_ARCHIVE_EXTENSIONS:
                return Draft(parts, False, NESTED_ARCHIVE)
            if damaged:
                return Draft(parts, False, "It is damaged inside the archive, so it could not "
                                           "be unpacked completely. Make the ZIP again.")
            return judge(parts, handle, self.settings)


def process_upload(upload_id: int, settings: Settings, claim: Claim) -> str:
    """Process one upload that `claim` holds to 'done' (or leave it for the caller to mark
    'failed' when this raises). Returns DONE, or "skipped" when there was nothing for this
    run to do: the upload is gone, finished, or held by another run (which it then leaves
    alone, counters included)."""
    if not claim.acquire(upload_id):  # finished, gone, or another live run holds it
        return "skipped"
    upload = db.session.get(Upload, upload_id)
    if upload is None or not upload.status.is_processing:
        return "skipped"
    storage = StorageManager(settings.data_dir)
    try:
        if upload.captures_count:
            reset_partial(upload_id, storage, claim)
        folder = _open_folder(upload_id, storage)
        with folder:
            processor = UploadProcessor(upload, settings, storage, claim)
            note = processor.run(folder)
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
    if not finish(upload_id, UploadStatus.DONE, note, claim.token,
                  invalid=processor.invalid_sentence()):
        log.warning("Upload %s was taken over by another run before it was finished",
                    upload_id)
        return "skipped"
    log.info("Upload %s processed", upload_id)
    return UploadStatus.DONE


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
