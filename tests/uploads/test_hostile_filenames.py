"""Issue 9, finding 6: an upload whose filename holds a NUL gave 500 on PostgreSQL (its text
fields cannot hold NUL). The file must be taken with a cleaned name, or refused with 400."""

from __future__ import annotations

import io

from tests.support import jpeg_bytes


def test_an_upload_filename_with_a_nul_is_cleaned(client):
    answer = client.post("/api/v1/uploads", data={"files": [
        (io.BytesIO(jpeg_bytes()), "evil\x00name.jpg")]}, content_type="multipart/form-data")
    assert answer.status_code in (201, 400), answer.get_data(as_text=True)
    if answer.status_code == 201:
        [upload] = answer.get_json()["uploads"]
        assert "\x00" not in upload["filename"]
    else:
        assert answer.get_json()["error"]["message"].endswith(".")
