"""What a person reads when a scan stops before its end: which frames are kept and where a
resume continues. One place, so the job, recovery and the doctor never disagree on either."""

from __future__ import annotations


def next_frame(taken: int, planned: int) -> int:
    """The 1-based frame a resume continues from: the one after the frames taken."""
    return min(taken + 1, planned)


def frames_kept_sentence(taken: int, planned: int, *, resumable: bool = True,
                         with_total: bool = False, or_new_scan: bool = False) -> str:
    """"The 2 frames taken so far are kept; resume the scan to continue from frame 3." With
    `with_total` the frame reads "frame 3 of 5" (for a message that does not say it already);
    `or_new_scan` offers a new scan as well; not `resumable`: fix the cause and start anew."""
    kept = (f"The {taken} frame{'s' if taken != 1 else ''} taken so far "
            f"{'is' if taken == 1 else 'are'} kept")
    if not resumable:
        return f"{kept}; fix the cause, then start a new scan."
    frame = f"frame {next_frame(taken, planned)}" + (f" of {planned}" if with_total else "")
    return (f"{kept}; resume the scan to continue from {frame}"
            f"{', or start a new scan' if or_new_scan else ''}.")
