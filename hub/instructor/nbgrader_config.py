"""nbgrader on the instructor's server of the course hub: the course (its own nbgrader_config.py,
the repository's: sandboxed, judged grading), the exchange, and a Collect that files a
submission only under the account that owns it."""

import os

c = get_config()  # noqa: F821

COURSE = os.environ["LAB_HUB_COURSE"]
load_subconfig(os.path.join(COURSE, "nbgrader_config.py"))  # noqa: F821

c.CourseDirectory.root = COURSE
c.CourseDirectory.course_id = os.environ.get("LAB_HUB_COURSE_ID", "autograd-deep-dive")
c.Exchange.root = os.environ.get("LAB_HUB_EXCHANGE", "/srv/nbgrader/exchange")
c.Exchange.path_includes_course = False
c.ExchangeFactory.collect = "labs.hub.exchange.OwnerCheckedCollect"
