"""nbgrader's exchange on the course hub: Collect files a submission only under its owner.

A student can submit under another id (`nbgrader submit --student bob`, or a hand-made folder
`bob+lab_2_1_3+<time>+x` in the inbound): stock `nbgrader collect` only warns ("cheating
attempt?") and files it as bob's, newest first, so the forgery replaces bob's own submission.
Here a submission whose folder is not owned by the account it names is left in the exchange,
never collected, and named in the log; the student's own latest submission is collected.
"""

from __future__ import annotations

import glob
import os
import pwd

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect, groupby
from nbgrader.utils import check_mode


def owner(path: str) -> str | None:
    try:
        return pwd.getpwuid(os.lstat(path).st_uid).pw_name
    except KeyError:
        return None


def owned(path: str, student: str) -> bool:
    """The submission folder is a real folder (not a link) owned by the account it names."""
    return os.path.isdir(path) and not os.path.islink(path) and owner(path) == student


class OwnerCheckedCollect(ExchangeCollect):
    refused: list[str]

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        if not check_mode(self.inbound_path, read=True, execute=True):
            self.fail(f"You don't have read permissions for the directory: {self.inbound_path}")
        student_id = self.coursedir.student_id if self.coursedir.student_id else "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        records, self.refused = [], []
        for path in sorted(glob.glob(pattern)):
            record = self._path_to_record(path)
            if owned(path, record["username"]):
                records.append(record)
            else:
                self.refused.append(os.path.basename(path))
                self.log.error("NOT COLLECTED: %s names %s but is owned by %s: a submission under another "
                               "student's name (left in the exchange for you to look at)",
                               os.path.basename(path), record["username"], owner(path))
        usergroups = groupby(records, lambda item: item["username"])
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                self.duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        self.src_records = []
        for group in usergroups.values():
            ordered = self._sort_by_timestamp(group)
            if self.duedate is not None and self.before_duedate:
                early = [r for r in ordered if r["timestamp"] <= self.duedate]
                ordered = early or ordered
            self.src_records.append(ordered[0])
