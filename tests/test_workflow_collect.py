"""`make collect` files each submission under the student the LMS says uploaded it
(labs/grading/collect.py). Each attack is refused for that upload only, and every other
student is collected: a notebook filed as a classmate's, nested archives, duplicates, zip
bombs (size, member count), path traversal and links."""

from __future__ import annotations

import io
import shutil
import stat
import zipfile

import nbformat
import pytest

from labs.course import notebooks
from labs.grading import collect

from .conftest import ROOT

A = "lab_2_1_3"
NB = "01_hardswish"


@pytest.fixture
def course(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    (tmp_path / "release" / A).mkdir(parents=True)
    for p in (ROOT / "release" / A).glob("*.ipynb"):
        shutil.copy(p, tmp_path / "release" / A / p.name)
    (tmp_path / "downloaded" / A / "archive").mkdir(parents=True)
    return tmp_path


def _nb(marker: str) -> bytes:
    nb = notebooks.read(ROOT / "release" / A / f"{NB}.ipynb")
    nb.cells.append(nbformat.v4.new_markdown_cell(marker))
    return nbformat.writes(nb).encode()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _download(course, entries: dict[str, bytes], name="lms_download.zip"):
    (course / "downloaded" / A / "archive" / name).write_bytes(_zip(entries))


def _collect(course, **bounds):
    out = io.StringIO()
    rc = collect.collect(course, A, out=out, bounds=collect.ZipBounds(**bounds) if bounds else collect.ZipBounds())
    return rc, out.getvalue()


def _submitted(course, student):
    path = course / "submitted" / student / A / f"{NB}.ipynb"
    return path.read_bytes() if path.exists() else None


def test_plain_uploads_are_collected(course):
    _download(course, {f"alice_1234_{NB}.ipynb": _nb("alice"), f"bob.smith_98_attempt_{NB}.ipynb": _nb("bob")})
    rc, text = _collect(course)
    assert rc == 0, text
    assert b"alice" in _submitted(course, "alice") and b"bob" in _submitted(course, "bob.smith")


def test_a_notebook_inside_a_zip_belongs_to_the_uploader(course):
    """alice's own zip holds a notebook named as bob's: before, it was filed as bob's submission."""
    _download(course, {"alice_1234_mywork.zip": _zip({f"bob_99_{NB}.ipynb": _nb("from-alice")}),
                       f"bob_99_{NB}.ipynb": _nb("bob-own"),
                       "carol_7_work.zip": _zip({f"{NB}.ipynb": _nb("carol")})})
    rc, text = _collect(course)
    assert b"bob-own" in _submitted(course, "bob"), "bob's own upload stands"
    assert _submitted(course, "alice") is None, "the upload that claims bob is refused"
    assert rc == 1 and "alice_1234_mywork.zip" in text and "names another student (bob)" in text
    assert b"carol" in _submitted(course, "carol"), "a zip of plain notebook names is the uploader's"


def test_nested_archive_refused_for_that_upload_only(course):
    inner = _zip({f"{NB}.ipynb": _nb("nested")})
    _download(course, {"alice_1_sub.zip": _zip({"deeper.zip": inner}), f"bob_2_{NB}.ipynb": _nb("bob")})
    rc, text = _collect(course)
    assert rc == 1 and "nested archives" in text and "alice_1_sub.zip" in text
    assert _submitted(course, "alice") is None and b"bob" in _submitted(course, "bob")


def test_a_duplicate_affects_only_that_student(course):
    """Two files for one notebook of alice, no timestamps: nbgrader stopped the whole collect."""
    _download(course, {f"alice_1_{NB}.ipynb": _nb("one"), f"alice_1_attempt_{NB}.ipynb": _nb("two"),
                       f"bob_2_{NB}.ipynb": _nb("bob")})
    rc, text = _collect(course)
    assert rc == 1 and f"alice / {NB}.ipynb: 2 files" in text
    assert _submitted(course, "alice") is None and b"bob" in _submitted(course, "bob")


def test_zip_bomb_bounded_by_bytes_read(course):
    """A member that inflates past the bound (its header may lie) is refused; the rest collected."""
    _download(course, {"alice_1_sub.zip": _zip({f"{NB}.ipynb": b"{" + b" " * (3 << 20) + b"}"}),
                       f"bob_2_{NB}.ipynb": _nb("bob")})
    rc, text = _collect(course, file_bytes=1 << 20)
    assert rc == 1 and "over the bound of 1 MiB" in text and "alice_1_sub.zip" in text
    assert _submitted(course, "alice") is None and b"bob" in _submitted(course, "bob")


def test_too_many_members_in_a_student_zip(course):
    _download(course, {"alice_1_sub.zip": _zip({f"f{i}.txt": b"x" for i in range(60)}),
                       f"bob_2_{NB}.ipynb": _nb("bob")})
    rc, text = _collect(course)
    assert rc == 1 and "60 entries, over the bound of 50" in text
    assert b"bob" in _submitted(course, "bob")


def test_path_traversal_and_links_refused(course):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"../../evil_1_{NB}.ipynb", _nb("evil"))
        link = zipfile.ZipInfo(f"mallory_3_{NB}.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr(f"bob_2_{NB}.ipynb", _nb("bob"))
    (course / "downloaded" / A / "archive" / "lms.zip").write_bytes(buf.getvalue())
    rc, text = _collect(course)
    assert rc == 1 and "unsafe path" in text and "symbolic link" in text
    assert not (course.parent / f"evil_1_{NB}.ipynb").exists() and not list(course.rglob("evil*"))
    assert _submitted(course, "mallory") is None and _submitted(course, "evil") is None
    assert b"bob" in _submitted(course, "bob")


def test_newer_timestamp_wins(course, monkeypatch):
    """With a timestamp in the names (the regexp's `timestamp` group) the newer copy is kept."""
    cfg = course / "nbgrader_config.py"
    cfg.write_text(cfg.read_text() + '\nc.FileNameCollectorPlugin.named_regexp = '
                   r'r"^(?P<student_id>[a-z]+)_(?P<timestamp>\d{8}T\d{6})_(?P<file_id>\d\d_[a-z_]+\.ipynb)$"' + "\n")
    _download(course, {f"alice_20260101T100000_{NB}.ipynb": _nb("old"),
                       f"alice_20260102T100000_{NB}.ipynb": _nb("new")})
    rc, text = _collect(course)
    assert rc == 0, text
    assert b"new" in _submitted(course, "alice")
    assert (course / "submitted" / "alice" / A / "timestamp.txt").read_text().startswith("2026-01-02 10:00:00")
