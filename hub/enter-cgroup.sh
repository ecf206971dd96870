#!/bin/sh
# The instructor's server starts inside the cgroups delegated to the instructor (labs.hub): the
# grader's sandboxes (labs/grading/sandbox.py) create their own memory and pids cgroups under them, as
# the instructor, without root. Fails closed: no cgroup, no server.
set -e
for d in $LAB_HUB_CGROUPS; do
  echo $$ > "$d/cgroup.procs"
done
exec "$@"
