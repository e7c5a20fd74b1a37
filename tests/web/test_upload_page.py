"""The upload form posts multipart with htmx and swaps in the uploads' status; the list
polls while any upload is processing and stops when none is."""

from __future__ import annotations

import io

from tests.web.conftest import HX, add_session, add_upload, jpeg_bytes, session_row


def _files(*items: tuple[str, bytes]):
    return {"files": [(io.BytesIO(data), name) for name, data in items]}


def test_upload_form_into_the_current_session(web_app, browser):
    # No Redis in this app: the uploads service processes in the request, so the answer
    # already shows the final counts.
    answer = browser.post(
        "/upload",
        data={**_files(("bench photo.jpg", jpeg_bytes()), ("notes.txt", b"not an image")),
              "session_id": ""},
        headers=HX, content_type="multipart/form-data",
    )
    assert answer.status_code == 200, answer.data
    html = answer.get_data(as_text=True)
    assert "<html" not in html
    assert "bench photo.jpg" in html and "notes.txt" in html
    assert "hx-trigger" not in html and 'data-processing="0"' in html
    assert "1 invalid" in html
    assert "Into <a href=\"/sessions/" in html
    session_id = int(html.split('Into <a href="/sessions/')[1].split('"')[0])
    row = session_row(web_app, session_id)
    assert row.kind == "auto" and row.files_count == 2
    assert (row.valid_count, row.invalid_count) == (1, 1)


def test_upload_into_a_chosen_session(web_app, browser):
    target = add_session(web_app, "Reference shots")
    answer = browser.post("/upload", data={**_files(("a.jpg", jpeg_bytes())),
                                           "session_id": str(target)},
                          headers=HX, content_type="multipart/form-data")
    assert answer.status_code == 200
    assert "Reference shots" in answer.get_data(as_text=True)
    assert session_row(web_app, target).captures_count == 1
    # Without JavaScript: the browser lands on that session's page.
    plain = browser.post("/upload", data={**_files(("b.jpg", jpeg_bytes((8, 8)))),
                                          "session_id": str(target)},
                         content_type="multipart/form-data")
    assert plain.status_code == 303 and plain.headers["Location"] == f"/sessions/{target}"


def test_upload_page_preselects_the_session_from_the_link(web_app, browser):
    target = add_session(web_app, "Preselected")
    html = browser.get(f"/upload?session_id={target}").get_data(as_text=True)
    assert f'<option value="{target}" selected>Preselected</option>' in html
    assert 'class="upload-progress" hidden' in html  # shown by htmx:xhr:progress


def test_upload_errors_are_sentences(web_app, browser):
    empty = browser.post("/upload", data={"session_id": ""}, headers=HX,
                         content_type="multipart/form-data")
    assert empty.status_code == 400 and b"There are no files in the request" in empty.data
    unknown = browser.post("/upload", data={**_files(("a.jpg", jpeg_bytes())),
                                            "session_id": "999"},
                           headers=HX, content_type="multipart/form-data")
    assert unknown.status_code == 404 and b"There is no session 999" in unknown.data
    assert unknown.data.lstrip().startswith(b'<div class="error"')


def test_batch_status_polls_while_processing(web_app, browser):
    session_id = add_session(web_app, "Batch")
    done = add_upload(web_app, session_id, "done", filename="done.jpg")
    busy = add_upload(web_app, session_id, "processing", filename="busy.jpg")
    html = browser.get(f"/uploads/batch?ids={done},{busy}", headers=HX).get_data(as_text=True)
    assert f'hx-get="/uploads/batch?ids={done},{busy}" hx-trigger="every 1s"' in html
    assert "checking 1 file" in html

    html = browser.get(f"/uploads/batch?ids={done}", headers=HX).get_data(as_text=True)
    assert "hx-trigger" not in html and "all checked" in html

    for bad in ("", "1,x", ",".join(["1"] * 501)):
        assert browser.get(f"/uploads/batch?ids={bad}", headers=HX).status_code == 400
    assert browser.get("/uploads/batch?ids=999", headers=HX).status_code == 404
