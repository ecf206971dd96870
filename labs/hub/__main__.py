"""python -m labs.hub start|stop|class|handout (see labs/hub/__init__.py)."""

from __future__ import annotations

import argparse
import os
import sys

from . import HubError, Settings, make_class, serve, start, stop


def _students(values: list[str]) -> list[str]:
    names = [n for v in values for n in v.replace(",", " ").split()]
    return names or [n for n in os.environ.get("STUDENTS", "").replace(",", " ").split()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labs.hub", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start", help="the hub in the foreground (Ctrl-C stops it), or --background")
    p.add_argument("--background", action="store_true", help="start it and return (stop with `stop`)")
    p.add_argument("students", nargs="*", help="the demo class (default: STUDENTS, else student1 student2)")
    p = sub.add_parser("stop", help="stop the hub and every process of its accounts")
    p.add_argument("--remove-class", action="store_true", help="also delete the accounts the hub created")
    p = sub.add_parser("class", help="create the class's system accounts (STUDENTS=... or names)")
    p.add_argument("students", nargs="*")
    sub.add_parser("handout", help="the LMS hand-out zip of the release")
    args, rest = parser.parse_known_args(argv)
    settings = Settings()
    try:
        if args.cmd == "handout":
            from . import handout
            return handout.main(rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        if args.cmd == "start":
            if args.background:
                start(settings, _students(args.students) or None)
                return 0
            return serve(settings, _students(args.students) or None)
        if args.cmd == "stop":
            left = stop(settings, remove=args.remove_class)
            if args.remove_class:
                print("accounts made by the hub removed")
            print(f"hub stopped; left behind: {left['processes'] or 'no process'}, {left['ports'] or 'no port'}")
            return 0 if not (left["processes"] or left["ports"]) else 1
        names = _students(args.students)
        if not names:
            parser.error("name the students: make hub-class STUDENTS='alice bob'")
        users = make_class(settings, names)
        print(f"class: {', '.join(users['students'])}; instructor: {users['instructor']}; "
              f"demo password of the accounts created here: {users['password']}")
        return 0
    except HubError as err:
        print(f"hub: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
