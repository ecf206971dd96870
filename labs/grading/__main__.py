"""python -m labs.grading collect|autograde|export|feedback|report (labs/grading/cli.py)."""

import sys

from .cli import main

sys.exit(main())
