"""A representative batch of bad input, and the outcome it must have, whichever way it is
processed: in the request (the fallback when the queue is down) or by a real worker."""

from __future__ import annotations

from pathlib import Path

from tests.uploads.conftest import captures_of, counted, counters
from tests.uploads.helpers import image_bytes, zip_bytes, zip_with_raw_names

_GOOD = image_bytes("JPEG", (80, 60), seed=3)


def bad_batch() -> list[tuple[str, bytes]]:
    inner = zip_bytes({"deep.jpg": image_bytes(seed=9)})
    return [
        ("cut.jpg", _GOOD[: len(_GOOD) // 2]),  # a corrupt (cut off) image
        ("lies.jpg", b"just some text, not a photo\n"),  # lies about its type: not an image
        ("holiday.jpg", image_bytes("PNG", (50, 40), seed=4)),  # lies: a PNG named .jpg
        ("../../escape.jpg", image_bytes(seed=5)),  # traversal in the file name
        ("hostile.zip", zip_with_raw_names([  # traversal inside a ZIP
            ("../../../../escaped.jpg", image_bytes(seed=6)),
            ("/tmp/absolute-from-upload-test.jpg", image_bytes(seed=7)),
            ("ok/../../sneaky.jpg", image_bytes(seed=8)),
            ("fine/good.jpg", image_bytes(seed=10)),
        ])),
        ("ratio.zip", zip_bytes({"zeros.tif": b"\x00" * (20 * 1024 * 1024),  # a ZIP bomb
                                 "ok.jpg": image_bytes(seed=11)})),
        ("outer.zip", zip_bytes({"inner.zip": inner,  # nested archives
                                 "renamed.dat": inner, "photo.jpg": image_bytes(seed=12)})),
    ]


EXPECTED_COUNTERS = {"files_count": 7, "captures_count": 9, "valid_count": 4,
                     "invalid_count": 5}


def check_bad_batch(app, uploads: list[dict], session_id: int, data_dir: Path) -> None:
    """Each file's answer, captures and files on disk; then the session's counters."""
    by_name = {u["filename"]: u for u in uploads}
    assert set(by_name) == {name for name, _ in bad_batch()}
    assert all(u["status"] == "done" for u in uploads), uploads
    session_root = data_dir / "sessions" / str(session_id)

    def only_capture(name: str) -> dict:
        found = captures_of(app, by_name[name]["id"])
        assert len(found) == 1, found
        return found[0]

    cut = only_capture("cut.jpg")
    assert (cut["valid"], cut["reason"]) == (False, "The image is cut off: the file ends before "
                                                    "the picture does. Copy or export it again.")
    assert by_name["cut.jpg"]["error"] == cut["reason"]  # the upload carries it too
    lies = only_capture("lies.jpg")
    assert (lies["valid"], lies["reason"]) == (
        False, "It is named .jpg but is not a JPEG, PNG or TIFF image.")
    holiday = only_capture("holiday.jpg")
    assert (holiday["valid"], holiday["width"], holiday["reason"]) == (
        True, 50, "Named .jpg but holds a PNG image.")

    escape = by_name["../../escape.jpg"]
    assert only_capture("../../escape.jpg")["path"] == (
        f"images/uploads/{escape['id']}/escape.jpg")
    folder = session_root / "images" / "uploads" / str(escape["id"])
    assert [p.name for p in folder.iterdir()] == ["escape.jpg"]

    hostile = by_name["hostile.zip"]
    assert (hostile["captures_count"], hostile["valid_count"]) == (1, 1)
    assert hostile["error"] is None  # entries skipped for safety: a note, not a failure
    assert hostile["note"].startswith("3 entries were not extracted:")
    assert "(it points outside the archive's folder)" in hostile["note"]
    assert "(it is an absolute path)" in hostile["note"]
    assert not Path("/tmp/absolute-from-upload-test.jpg").exists()

    bomb = only_capture("ratio.zip")
    assert bomb["valid"] is False and "how ZIP bombs look" in bomb["reason"]
    bomb_folder = session_root / "images" / "uploads" / str(by_name["ratio.zip"]["id"])
    assert [p.name for p in bomb_folder.iterdir()] == ["ratio.zip"]  # nothing extracted

    nested = {Path(c["path"]).name: c for c in captures_of(app, by_name["outer.zip"]["id"])}
    assert nested["photo.jpg"]["valid"] is True
    for name in ("inner.zip", "renamed.dat"):
        assert nested[name]["valid"] is False
        assert "archive inside the archive" in nested[name]["reason"]
    assert not list(session_root.rglob("deep.jpg"))

    assert counters(app, session_id) == EXPECTED_COUNTERS == counted(app, session_id)
