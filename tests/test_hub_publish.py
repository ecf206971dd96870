"""`make hub` publishes Validate's review rules as root under nbgrader's world-writable exchange
(labs/hub: publish_review_rules). A student who made the course's exchange folder first, or a link there,
must not get root to write or chown anywhere else: refused, nothing written; the honest case publishes."""

from __future__ import annotations

import os
import shutil

import pytest

from labs import ASSIGNMENT, ROOT
from labs import hub as labhub

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="publishing runs as root (make hub)")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    monkeypatch.setattr(labhub, "course_dir", lambda settings: course)
    (tmp_path / "exchange").mkdir(mode=0o777)
    return labhub.Settings(state=tmp_path / "state", exchange=tmp_path / "exchange", instructor="root")


def test_the_rules_are_published_readable_by_all(settings):
    written = labhub.publish_review_rules(settings)
    assert {p.stem for p in written} == {p.stem for p in (ROOT / "source" / ASSIGNMENT).glob("*.ipynb")}
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in written)


def test_a_link_planted_as_the_course_folder_is_refused(settings, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (settings.exchange / labhub.COURSE_ID).symlink_to(victim)
    with pytest.raises(labhub.HubError, match="not a folder of root's"):
        labhub.publish_review_rules(settings)
    assert list(victim.iterdir()) == []


def test_a_course_folder_a_student_made_first_is_refused(settings):
    folder = settings.exchange / labhub.COURSE_ID
    folder.mkdir()
    os.chown(folder, 65534, 65534)   # nobody: a student's
    with pytest.raises(labhub.HubError, match="not a folder of root's"):
        labhub.publish_review_rules(settings)
    assert list(folder.iterdir()) == []
