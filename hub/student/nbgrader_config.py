"""nbgrader on a student's server of the course hub: the exchange, nothing else."""

import os

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = os.environ.get("LAB_HUB_COURSE_ID", "autograd-deep-dive")
c.Exchange.root = os.environ.get("LAB_HUB_EXCHANGE", "/srv/nbgrader/exchange")
c.Exchange.path_includes_course = False
