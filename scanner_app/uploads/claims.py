"""Who processes an upload: a claim, so that two runs never process one upload at once.

Several things may start processing the same upload: the queued job and, when Redis failed
(or only seemed to fail) at enqueue, the web request itself; and the worker's recovery for
uploads that look stuck. Whoever runs first takes the upload with a conditional UPDATE
(`claim_token` set only where it is empty or its lease ran out), which the database makes
atomic: of two runs racing, exactly one gets each upload.

The holder renews its lease (`claimed_at`) as it goes, at least every RENEW_SECONDS, and every
write of captures and counters checks the token in the same statement. A run that stalled past
its lease and was replaced finds its token gone at its next write and stops (ClaimLost)
without touching any counter. Recovery (upload_recovery.py) only takes uploads whose lease
ran out.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta

from sqlalchemy import or_, select, update

from scanner_app.models import Upload, UploadStatus
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db

log = logging.getLogger("scanner.uploads")

# Far longer than any single step between two renewals (decoding one huge image, unpacking
# one big archive entry on a Pi), yet short enough that uploads of a run that died are taken
# again within minutes.
LEASE = timedelta(minutes=10)
RENEW_SECONDS = 20.0
JOB_PREFIX = "job:"
REQUEST_PREFIX = "request:"
_CHUNK = 500  # ids per statement, well under any database's limit on bound values


class ClaimLost(Exception):
    """Another run holds (or finished) this upload now; this run must leave it alone."""


def job_token_prefix(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}:"


def new_token(job_id: str | None = None) -> str:
    """A token unique to one processing run; it says who runs (an RQ job, or a web request
    and its process id), so recovery can tell a run that is gone from one still working."""
    suffix = uuid.uuid4().hex
    if job_id:
        return f"{job_token_prefix(job_id)}{suffix[:12]}"[:64]
    return f"{REQUEST_PREFIX}{os.getpid()}:{suffix[:20]}"


def token_job_id(token: str) -> str | None:
    """The RQ job id a job's token names, else None."""
    if not token.startswith(JOB_PREFIX):
        return None
    return token[len(JOB_PREFIX):].rpartition(":")[0] or None


def token_pid(token: str) -> int | None:
    """The process id a web request's token names (None for tokens made before it did)."""
    if not token.startswith(REQUEST_PREFIX):
        return None
    head, sep, _ = token[len(REQUEST_PREFIX):].partition(":")
    return int(head) if sep and head.isdigit() else None


def lease_cutoff():
    """Claims renewed before this moment have run out."""
    return utcnow() - LEASE


def _claimable():
    return or_(Upload.claim_token.is_(None), Upload.claimed_at.is_(None),
               Upload.claimed_at < lease_cutoff())


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


class Claim:
    """The uploads one processing run holds, and the renewal of their lease."""

    def __init__(self, token: str, held: set[int]):
        self.token = token
        self.held = held
        self._renewed = time.monotonic()

    @classmethod
    def take(cls, upload_ids: list[int], token: str) -> Claim:
        """Claim every upload of `upload_ids` that is still processing and that no live run
        holds (one conditional UPDATE per chunk, committed). The others are left alone."""
        ids = [int(i) for i in upload_ids]
        now = utcnow()
        for chunk in _chunks(ids):
            db.session.execute(
                update(Upload)
                .where(Upload.id.in_(chunk), Upload.status == UploadStatus.PROCESSING, _claimable())
                .values(claim_token=token, claimed_at=now)
            )
        db.session.commit()
        held: set[int] = set()
        for chunk in _chunks(ids):
            held.update(db.session.scalars(
                select(Upload.id).where(Upload.id.in_(chunk), Upload.claim_token == token)))
        db.session.commit()  # end the read: a long run must not pin a snapshot
        return cls(token, held)

    def holds(self, upload_id: int) -> bool:
        return upload_id in self.held

    def acquire(self, upload_id: int) -> bool:
        """Claim one more upload right before working on it (one conditional UPDATE,
        committed). A run claims file by file, so one that dies holds only the file in flight:
        the files it never reached stay unclaimed, to be retried rather than failed."""
        if upload_id in self.held:
            return True
        taken = db.session.execute(
            update(Upload).where(Upload.id == upload_id, Upload.status == UploadStatus.PROCESSING,
                                 _claimable())
            .values(claim_token=self.token, claimed_at=utcnow())
        ).rowcount
        db.session.commit()
        if taken == 1:
            self.held.add(upload_id)
        return taken == 1

    def checkpoint(self, upload_id: int) -> None:
        """Before each file this run writes or records: raises ClaimLost if `upload_id` was
        taken from this run meanwhile (one small read), and renews the lease once
        RENEW_SECONDS have passed (one small write)."""
        if time.monotonic() - self._renewed >= RENEW_SECONDS:
            self.renew(upload_id)
        else:
            self.verify(upload_id)

    def verify(self, upload_id: int) -> None:
        token = db.session.scalar(select(Upload.claim_token).where(
            Upload.id == upload_id, Upload.status == UploadStatus.PROCESSING))
        db.session.commit()  # end the read: nothing is held while the file is worked on
        if token != self.token:
            self.lost(upload_id)
            raise ClaimLost(upload_id)

    def renew(self, upload_id: int) -> None:
        """Renew the lease of every upload this run still holds (one statement, committed);
        raises ClaimLost when `upload_id` is no longer among them."""
        db.session.execute(
            update(Upload).where(Upload.claim_token == self.token,
                                 Upload.status == UploadStatus.PROCESSING)
            .values(claimed_at=utcnow())
        )
        db.session.commit()
        self._renewed = time.monotonic()
        self.verify(upload_id)

    def lost(self, upload_id: int) -> None:
        self.held.discard(upload_id)

    def release(self, upload_id: int) -> None:
        """Give `upload_id` back unfinished (still 'processing', unclaimed), so recovery
        queues it again later; commits. Only while this run still holds it."""
        db.session.execute(
            update(Upload).where(Upload.id == upload_id, Upload.claim_token == self.token)
            .values(claim_token=None, claimed_at=None))
        db.session.commit()
        self.lost(upload_id)


def live_holder(upload_id: int) -> str | None:
    """The token of the run holding `upload_id` with a lease not yet run out, if any."""
    return db.session.scalar(
        select(Upload.claim_token).where(Upload.id == upload_id,
                                         Upload.status == UploadStatus.PROCESSING,
                                         Upload.claim_token.is_not(None),
                                         Upload.claimed_at >= lease_cutoff()))


def release_dead(holder_alive: Callable[[str], bool]) -> list[int]:
    """Clear the live-leased claims whose run is gone (`holder_alive(token)` is False: its job
    ended or its worker died, its web process exited), so the uploads can be queued again at
    once instead of after the lease. Returns the released ids; commits."""
    held = db.session.execute(
        select(Upload.id, Upload.claim_token).where(Upload.status == UploadStatus.PROCESSING,
                                                    Upload.claim_token.is_not(None),
                                                    Upload.claimed_at >= lease_cutoff())
        .order_by(Upload.id)).all()
    db.session.commit()
    released: list[int] = []
    for upload_id, token in held:
        if holder_alive(token):
            continue
        # Conditional on the token: a run that took it meanwhile is left alone.
        done = db.session.execute(
            update(Upload).where(Upload.id == upload_id, Upload.status == UploadStatus.PROCESSING,
                                 Upload.claim_token == token)
            .values(claim_token=None, claimed_at=None)
        ).rowcount
        if done == 1:
            released.append(upload_id)
    db.session.commit()
    if released:
        log.warning("Uploads %s: the run processing them is gone; released them", released)
    return released


def release_expired() -> list[int]:
    """Clear the claims whose lease ran out (their run crashed, was killed or stalled), so
    the uploads can be queued again. A stalled run that wakes up finds its token gone and
    stops. Returns the released ids; commits."""
    cutoff = lease_cutoff()
    expired = list(db.session.scalars(
        select(Upload.id).where(Upload.status == UploadStatus.PROCESSING,
                                Upload.claim_token.is_not(None),
                                or_(Upload.claimed_at.is_(None), Upload.claimed_at < cutoff))
        .order_by(Upload.id)))
    released: list[int] = []
    for upload_id in expired:
        # Conditional again: the holder may have renewed since the read above.
        done = db.session.execute(
            update(Upload).where(Upload.id == upload_id, Upload.status == UploadStatus.PROCESSING,
                                 Upload.claim_token.is_not(None),
                                 or_(Upload.claimed_at.is_(None),
                                     Upload.claimed_at < cutoff))
            .values(claim_token=None, claimed_at=None)
        ).rowcount
        if done == 1:
            released.append(upload_id)
    db.session.commit()
    if released:
        log.warning("Uploads %s: the run processing them stopped renewing its claim; "
                    "released them", released)
    return released
