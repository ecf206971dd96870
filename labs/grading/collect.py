"""Collect: an LMS download, filed by uploader (`make collect`).

a submission belongs to the student the LMS says uploaded it. Each zip in
downloaded/<a>/archive/ is an LMS download; each of its entries (or each top folder) is one
upload, and the uploader's id comes from the upload's outer name (nbgrader's
`FileNameCollectorPlugin.named_regexp` for a notebook, `UploaderCollector.uploader_regexp` for
a student's own zip or folder). A notebook inside a student's zip is filed under the uploader,
whatever its name says; an inner name that names another student, an archive inside a
student's archive, an unsafe path (absolute, `..`, a link), or an upload over the bounds
(`ZipBounds`: bytes per file, per upload and per download, member count, all measured while
decompressing) is refused for that upload only, with a message. Two files for one notebook of
one student: the newer wins when the names carry timestamps; otherwise neither is collected,
for that student and notebook only. Everyone else is collected.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Unicode

from .. import ASSIGNMENT, ROOT


@dataclass(frozen=True)
class ZipBounds:
    """How much of an LMS download collect reads, at most (bytes measured while decompressing,
    never taken from the archive's headers)."""

    file_bytes: int = 32 << 20            # one notebook (NotebookBounds.file_bytes)
    upload_bytes: int = 64 << 20          # one upload, all its files together
    download_bytes: int = 4 << 30         # one LMS download, all uploads together
    members: int = 20000                  # entries of one LMS download
    upload_members: int = 50              # entries of a student's own zip


class Refused(Exception):
    """An upload collect will not file (the reason, in the grader's words)."""


class UploaderCollector(FileNameCollectorPlugin):
    """nbgrader's FileNameCollectorPlugin, where the student is the uploader: `collect(outer, inner)`
    takes the student id from the upload's outer name (`named_regexp` for a notebook uploaded as
    itself, `uploader_regexp` for a zip or a folder) and only the notebook's name from the inner
    file's name. An inner name that `named_regexp` reads as another student's is refused."""

    uploader_regexp = Unicode(r"^(?P<student_id>[A-Za-z0-9][A-Za-z0-9.\-]*)_",
                               help="the uploader's id at the start of an uploaded zip's or folder's name "
                                    "(group student_id, optionally timestamp)").tag(config=True)

    def uploader(self, outer: str) -> dict:
        name = outer.rstrip("/").rsplit("/", 1)[-1]
        info = self._match(name) if name.endswith(".ipynb") else None
        if not info:
            m = re.match(self.uploader_regexp, name)
            info = m.groupdict() if m else None
        if not info or not _SAFE_ID.fullmatch(str(info.get("student_id") or "")):
            raise Refused("its name does not start with a student id the LMS gives")
        return info

    def collect(self, outer: str, inner: str | None = None) -> dict | None:
        """{student_id, file_id, timestamp?} for one file of one upload; None: not a notebook."""
        info = dict(self.uploader(outer))
        name = (inner or outer).rsplit("/", 1)[-1]
        if not name.endswith(".ipynb"):
            return None
        if inner is None:
            if not info.get("file_id"):
                return None
        else:
            claim = self._match(name)
            if claim and claim.get("student_id") != info["student_id"]:
                raise Refused(f"a file inside it names another student ({str(claim['student_id'])[:40]})")
            info["file_id"] = claim["file_id"] if claim else name
        info["file_id"] = os.path.splitext(str(info["file_id"]).rsplit("/", 1)[-1])[0] + ".ipynb"
        return info


_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,99}")


def _member_path(info) -> str:
    """A zip entry's name, refused when it is not a plain relative path (absolute, `..`, a link)."""
    import stat

    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts or "\0" in name:
        raise Refused("an entry has an unsafe path (absolute or with '..')")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise Refused("an entry is a symbolic link")
    return "/".join(p for p in parts if p not in ("", "."))


def _read_member(zf, info, limit: int) -> bytes:
    """At most `limit` bytes of one entry, counted while decompressing."""
    if info.file_size > limit:
        raise Refused(f"a file is over the bound of {limit >> 20} MiB")
    data = bytearray()
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 20):
            data += chunk
            if len(data) > limit:
                raise Refused(f"a file is over the bound of {limit >> 20} MiB (once decompressed)")
    return bytes(data)


def _is_archive(name: str) -> bool:
    return name.lower().endswith((".zip", ".gz", ".tgz", ".tar", ".7z", ".rar", ".bz2", ".xz"))


def _upload_files(outer: str, entries: list[tuple[str, bytes]], bounds: ZipBounds) -> list[tuple[str | None, bytes]]:
    """The files of one upload as (inner name or None, bytes): a notebook is itself; a student's
    zip is opened one level (an archive inside it is refused); a folder's entries are its files."""
    import io

    if len(entries) == 1 and entries[0][0] == outer and not outer.lower().endswith(".zip"):
        if _is_archive(outer):
            raise Refused("archives other than zip are not accepted")
        return [(None, entries[0][1])]
    files: list[tuple[str | None, bytes]] = []
    for path, data in entries:
        if path.lower().endswith(".zip"):
            try:
                inner = zipfile.ZipFile(io.BytesIO(data))
                infos = inner.infolist()
            except (zipfile.BadZipFile, OSError, ValueError) as err:
                raise Refused(f"a zip in it cannot be read ({type(err).__name__})") from None
            if len(infos) > bounds.upload_members:
                raise Refused(f"its zip holds {len(infos)} entries, over the bound of {bounds.upload_members}")
            used = 0
            for info in infos:
                name = _member_path(info)
                if info.is_dir() or not name:
                    continue
                if _is_archive(name):
                    raise Refused("it holds an archive inside an archive (nested archives are not accepted)")
                blob = _read_member(inner, info, min(bounds.file_bytes, bounds.upload_bytes - used))
                used += len(blob)
                files.append((name, blob))
        elif _is_archive(path):
            raise Refused("it holds an archive inside an archive (nested archives are not accepted)")
        else:
            files.append((path, data))
    return files


def _uploads(archive: Path, bounds: ZipBounds, out) -> tuple[dict[str, list[tuple[str, bytes]]], list[str]]:
    """{outer name: [(path, bytes)]} of every upload in the LMS download folder, and the refusals."""

    uploads: dict[str, list[tuple[str, bytes]]] = {}
    refused: list[str] = []
    budget = bounds.download_bytes
    for path in sorted(archive.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        if not path.name.lower().endswith(".zip"):  # an upload put there as itself
            if path.stat().st_size > bounds.upload_bytes:
                refused.append(f"{ascii(path.name)[:120]}: over the bound of {bounds.upload_bytes >> 20} MiB")
            else:
                uploads.setdefault(path.name, []).append((path.name, path.read_bytes()))
            continue
        try:
            zf = zipfile.ZipFile(path)
            infos = zf.infolist()
        except (zipfile.BadZipFile, OSError) as err:
            refused.append(f"{ascii(path.name)[:120]}: not a readable zip ({type(err).__name__}); nothing in it "
                           "was collected")
            continue
        if len(infos) > bounds.members:
            refused.append(f"{ascii(path.name)[:120]}: {len(infos)} entries, over the bound of {bounds.members}; "
                           "nothing in it was collected")
            continue
        bad: dict[str, str] = {}
        for info in infos:
            outer = info.filename.replace("\\", "/").lstrip("/").split("/")[0] or info.filename
            if outer in bad or info.is_dir():
                continue
            try:
                name = _member_path(info)
                used = sum(len(d) for _, d in uploads.get(outer, []))
                blob = _read_member(zf, info, min(bounds.upload_bytes - used, budget))
            except Refused as why:
                bad[outer] = str(why)
                uploads.pop(outer, None)
                continue
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as err:
                bad[outer] = f"an entry cannot be read ({type(err).__name__})"
                uploads.pop(outer, None)
                continue
            budget -= len(blob)
            uploads.setdefault(outer, []).append((name, blob))
        refused += [f"{ascii(outer)[:120]}: refused: {why}" for outer, why in sorted(bad.items())]
    return uploads, refused


def collect(course: Path = ROOT, assignment: str = ASSIGNMENT, out=sys.stdout,
            bounds: ZipBounds = ZipBounds()) -> int:
    """downloaded/<a>/archive/ -> submitted/<uploader>/<a>/, each submission filed under the
    student the LMS says uploaded it. Exit 0, or 1 when an upload or a notebook was refused
    (each named, with the reason); everyone else is collected either way."""
    from nbgrader.utils import parse_utc
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    collector = UploaderCollector(config=config)
    released = {p.name for p in (course / "release" / assignment).glob("*.ipynb")} or \
        {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    archive = course / "downloaded" / assignment / config.ZipCollectApp.get("archive_directory", "archive")
    uploads, refused = _uploads(archive, bounds, out)
    chosen: dict[tuple[str, str], tuple[object, bytes, str]] = {}
    duplicates: dict[tuple[str, str], int] = {}
    for outer, entries in sorted(uploads.items()):
        try:
            files = _upload_files(outer, entries, bounds)
            found = []
            for inner, data in files:
                info = collector.collect(outer, inner if inner != outer else None)
                if info and info["file_id"] in released:
                    found.append((info, data))
        except Refused as why:
            refused.append(f"{ascii(outer)[:120]}: refused: {why}")
            continue
        if not found:
            refused.append(f"{ascii(outer)[:120]}: no notebook of {assignment} in it (released names: "
                           f"{', '.join(sorted(released))})")
        for info, data in found:
            stamp = None
            if info.get("timestamp"):
                try:
                    stamp = parse_utc(info["timestamp"])
                except (ValueError, OverflowError):
                    stamp = None
            key = (str(info["student_id"]), str(info["file_id"]))
            if key in chosen:
                old = chosen[key][0]
                if stamp is not None and old is not None and stamp != old:
                    if stamp > old:
                        chosen[key] = (stamp, data, outer)
                    continue
                duplicates[key] = duplicates.get(key, 1) + 1
            else:
                chosen[key] = (stamp, data, outer)
    for key, n in sorted(duplicates.items()):
        chosen.pop(key)
        refused.append(f"{key[0]} / {key[1]}: {n} files for this notebook and no timestamps to choose by: none "
                       "collected for this student and notebook (put the right one in submitted/ yourself)")
    students = sorted({s for s, _ in chosen})
    for student in students:
        dest = course / "submitted" / student / assignment
        staging = course / "submitted" / f".{student}.collect-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        stamps = []
        for (s, file_id), (stamp, data, _) in sorted(chosen.items()):
            if s == student:
                (staging / file_id).write_bytes(data)
                stamps += [stamp] if stamp is not None else []
        if stamps:
            (staging / "timestamp.txt").write_text(max(stamps).isoformat(" "))
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, dest)
    print(f"collected {len(chosen)} notebook(s) of {len(students)} student(s) into submitted/", file=out)
    for line in refused:
        print(f"  REFUSED {line}", file=out)
    return 1 if refused else 0


