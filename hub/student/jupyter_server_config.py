"""A student's server on the course hub: Validate is labs.course.validate (jupyter_server_config.json
switches it on, in place of nbgrader's), which runs nbgrader's validation and then the grader's
review scan. It is imported from the repository, whose labs/ the hub leaves readable to students
(the course's tooling: no source notebook, hidden test or solution is in it); the scan's rules for
each lesson are published by the hub under the exchange (labs.course.validate.REVIEW_DIR)."""

import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:
    sys.path.append(REPO)
