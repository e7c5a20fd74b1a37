"""The one sentence about a stopped scan's frames, as the job, recovery and the doctor use it."""

from __future__ import annotations

from scanner_app.scans.kept_frames import frames_kept_sentence, next_frame


def test_a_resume_continues_after_the_frames_taken_and_never_past_the_last():
    assert next_frame(0, 5) == 1
    assert next_frame(2, 5) == 3
    assert next_frame(5, 5) == 5  # all taken (killed while exporting): the last one again


def test_the_sentence_counts_the_frames_and_says_what_to_do_next():
    assert frames_kept_sentence(2, 5) == (
        "The 2 frames taken so far are kept; resume the scan to continue from frame 3.")
    assert frames_kept_sentence(1, 6, with_total=True) == (
        "The 1 frame taken so far is kept; resume the scan to continue from frame 2 of 6.")
    assert frames_kept_sentence(0, 4, or_new_scan=True) == (
        "The 0 frames taken so far are kept; resume the scan to continue from frame 1, or "
        "start a new scan.")
    assert frames_kept_sentence(3, 4, resumable=False) == (
        "The 3 frames taken so far are kept; fix the cause, then start a new scan.")
