"""The course on a JupyterHub with nbgrader's exchange (`make hub`, `make hub-stop`, `make hub-class`).

    python -m labs.hub start [--background]   # the hub, the class, the exchange; prints URL and accounts
    python -m labs.hub stop [--remove-class]  # the hub and every process of its accounts; ports freed
    python -m labs.hub class alice bob ...     # system accounts for a class (a demo password printed)
    python -m labs.hub handout                 # the LMS hand-out zip (labs/hub/handout.py)

Run as root on the machine that hosts the class (the hub authenticates real system users with
PAM and starts each user's server as that user). What it sets up:

- accounts: the instructor (`LAB_HUB_INSTRUCTOR`, default `instructor`) and the class, real
  users with private homes (0700), marked `lab-hub` in their GECOS field so that only accounts
  made here are ever removed; a demo password for the accounts it creates, printed;
- the instructor's course: `~instructor/autograd-deep-dive/` (source/, nbgrader_config.py, the
  gradebook, release/ generated there by nbgrader as the instructor), private to the instructor;
- the exchange, at one root (`LAB_HUB_EXCHANGE`, default /srv/nbgrader/exchange) with
  nbgrader's permissions: the root 1777 (sticky), the course's outbound 0755, inbound 3733 (no
  listing; sticky), feedback 0711, owned by the instructor;
- the repository locked while the hub runs: every top-level entry but the ones students may see
  (the venv their servers run from, release/, docs, the environment files, labs/: the course's
  tooling, which their Validate imports for the grader's review scan) loses its permissions for
  others (source/, solutions/, tests/ with its corpora, .git, the grading state...). `stop`
  restores the modes it changed;
- Validate's review rules: per lesson, what the grader's scan reads of the source notebook, with
  no hidden test and no solution (labs/course/validate.py `rules`), published under the exchange
  (`<exchange>/<course>/lab-review/<assignment>/`, readable by all) at every start, so that a
  student's Validate lists what grading will flag;
- grading without root: a memory and a pids cgroup delegated to the instructor, which the
  instructor's server starts in (hub/enter-cgroup.sh), so the formgrader's Autograde runs the
  project's sandboxed, judged grading (labs/grading/nbgrader_steps.py via the course's nbgrader_config.py:
  bubblewrap and a cgroup per notebook) as the instructor; it fails, never falls back, where
  no sandbox can be made;
- JupyterHub (hub/jupyterhub_config.py) with configurable-http-proxy from npm, installed on
  first use under the state folder (`LAB_HUB_STATE`, default /srv/lab-hub).
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .. import ASSIGNMENT, ROOT, VENV_BIN

HUB_DIR = ROOT / "hub"
COURSE_ID = "autograd-deep-dive"
MARK = "lab-hub"                       # GECOS of every account this module creates
STAFF = "lab-hub-staff"                # the instructor's group
PROXY_VERSION = "5.3.0"                # configurable-http-proxy, from npm
# What students may see of the repository while the hub runs (their servers run from .venv;
# their Validate imports labs.course.validate and the grader's scan from labs/).
OPEN = {".venv", "hub", "release", "docs", "tools", ".ci", "README.md", "Makefile", "requirements.txt",
        "environment.yml", "pyproject.toml", ".gitignore", "labs"}


class HubError(RuntimeError):
    pass


@dataclass
class Settings:
    state: Path = field(default_factory=lambda: Path(os.environ.get("LAB_HUB_STATE", "/srv/lab-hub")))
    exchange: Path = field(default_factory=lambda: Path(os.environ.get("LAB_HUB_EXCHANGE",
                                                                        "/srv/nbgrader/exchange")))
    ip: str = field(default_factory=lambda: os.environ.get("LAB_HUB_IP", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(os.environ.get("LAB_HUB_PORT", 8000)))
    instructor: str = field(default_factory=lambda: os.environ.get("LAB_HUB_INSTRUCTOR", "instructor"))
    runtime: Path = field(default_factory=lambda: Path(os.environ.get("LAB_HUB_RUNTIME", "/opt/lab-hub/env")))
    proxy_dir: Path | None = field(default_factory=lambda: Path(p) if (p := os.environ.get("LAB_HUB_PROXY_DIR"))
                                   else None)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0") else self.ip
        return f"http://{host}:{self.port}"

    @property
    def ports(self) -> list[int]:
        """The hub's public port, its internal API and the proxy's API."""
        return [self.port, self.port + 1, self.port + 2]

    @property
    def proxy(self) -> Path:
        return (self.proxy_dir or self.state / "proxy") / "node_modules" / ".bin" / "configurable-http-proxy"

    @property
    def users_file(self) -> Path:
        return self.state / "users.json"


# --------------------------------------------------------------------------- small tools

def _run(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if check and proc.returncode:
        raise HubError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stdout.strip()[-1500:]}")
    return proc


def as_user(user: str, *cmd: str, cwd: Path | None = None, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """`cmd` as the system user `user` (runuser, a clean environment plus `env`)."""
    pw = pwd.getpwnam(user)
    base = {"HOME": pw.pw_dir, "USER": user, "LOGNAME": user, "PATH": f"{VENV_BIN}:/usr/bin:/bin",
            "LANG": os.environ.get("LANG", "C.UTF-8")}
    base.update(env or {})
    return _run("runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in base.items()), *cmd,
                check=check, cwd=cwd or pw.pw_dir)


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def made_here(name: str) -> bool:
    try:
        return pwd.getpwnam(name).pw_gecos.split(",")[0] == MARK
    except KeyError:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def processes_of(uids: set[int]) -> list[int]:
    """Every live process owned (real uid) by one of `uids`."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                if int(line.split()[1]) in uids:
                    pids.append(int(d.name))
                break
    return pids


def _require_root() -> None:
    if os.geteuid() != 0:
        raise HubError("the hub needs root: it authenticates system users with PAM and starts each "
                       "user's server as that user (run `sudo make hub`)")


def _load(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def _save(path: Path, data, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- accounts

def _ensure_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        _run("groupadd", "--system", name)
        return grp.getgrnam(name).gr_gid


def _create_user(name: str, role: str, password: str, groups: list[str]) -> bool:
    """A system user with a private home; True when it was created here (then its password is set)."""
    if not (name[:1].isalpha() and name.replace("-", "").replace("_", "").isalnum() and len(name) <= 32):
        raise HubError(f"{name!r} is not a usable account name (letters, digits, - and _, from a letter)")
    created = False
    if not user_exists(name):
        _run("useradd", "--create-home", "--shell", "/bin/bash", "--user-group", "--comment", f"{MARK},{role}",
             *(["--groups", ",".join(groups)] if groups else []), name)
        _run("chpasswd", input=f"{name}:{password}\n")
        created = True
    elif groups:
        _run("usermod", "--append", "--groups", ",".join(groups), name)
    os.chmod(pwd.getpwnam(name).pw_dir, 0o700)
    return created


def make_class(settings: Settings, students: list[str], password: str | None = None) -> dict:
    """The instructor and `students` as system users (created when missing); recorded in the state."""
    _require_root()
    users = _load(settings.users_file, {"instructor": settings.instructor, "students": [], "created": []})
    password = password or users.get("password") or os.environ.get("LAB_HUB_PASSWORD") or \
        secrets.token_urlsafe(9)
    users["password"] = password
    _ensure_group(STAFF)
    if _create_user(settings.instructor, "instructor", password, [STAFF]):
        users["created"].append(settings.instructor)
    for name in students:
        if name == settings.instructor:
            raise HubError(f"{name} is the instructor")
        if _create_user(name, "student", password, []):
            users["created"].append(name)
        if name not in users["students"]:
            users["students"].append(name)
    users["created"] = sorted(set(users["created"]))
    _save(settings.users_file, users)
    return users


def remove_class(settings: Settings) -> list[str]:
    """Remove every account this module created (GECOS mark checked again), with its home."""
    users = _load(settings.users_file, {"created": []})
    removed = []
    for name in users.get("created", []):
        if made_here(name):
            _kill_uids({pwd.getpwnam(name).pw_uid})
            _run("userdel", "--remove", name, check=False)
            with contextlib.suppress(KeyError, subprocess.SubprocessError, HubError):
                grp.getgrnam(name)
                _run("groupdel", name, check=False)
            removed.append(name)
    with contextlib.suppress(KeyError):
        if not grp.getgrnam(STAFF).gr_mem:
            _run("groupdel", STAFF, check=False)
    settings.users_file.unlink(missing_ok=True)
    return removed


# --------------------------------------------------------------------------- course, exchange, lock

def course_dir(settings: Settings) -> Path:
    return Path(pwd.getpwnam(settings.instructor).pw_dir) / COURSE_ID


def _nbgrader_env() -> dict:
    return {"PYTHONPATH": str(ROOT), "LAB_DEVICE": "cpu"}


def setup_course(settings: Settings) -> Path:
    """The instructor's course: source/ and the repository's nbgrader_config.py, the assignment in
    its gradebook and release/ generated there, all owned by the instructor."""
    course = course_dir(settings)
    pw = pwd.getpwnam(settings.instructor)
    if not (course / "source" / ASSIGNMENT).is_dir():
        course.mkdir(mode=0o700, exist_ok=True)
        shutil.copytree(ROOT / "source", course / "source", dirs_exist_ok=True)
        shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
        for path in [course, *course.rglob("*")]:
            os.chown(path, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
    os.chmod(course, 0o700)
    if not (course / "release" / ASSIGNMENT).is_dir():
        nbg = [str(VENV_BIN / "python"), "-m", "labs.nbgrader_cli"]
        as_user(settings.instructor, *nbg, "db", "assignment", "add", ASSIGNMENT, cwd=course, env=_nbgrader_env())
        as_user(settings.instructor, *nbg, "generate_assignment", ASSIGNMENT, "--force", cwd=course,
                env=_nbgrader_env())
    return course


def _add_students(settings: Settings, students: list[str]) -> None:
    course = course_dir(settings)
    csv = course / ".class.csv"
    csv.write_text("id\n" + "".join(f"{s}\n" for s in students))
    os.chown(csv, pwd.getpwnam(settings.instructor).pw_uid, -1)
    as_user(settings.instructor, str(VENV_BIN / "python"), "-m", "labs.nbgrader_cli", "db", "student", "import",
            str(csv), cwd=course, env=_nbgrader_env())
    csv.unlink()


def setup_exchange(settings: Settings) -> Path:
    """nbgrader's exchange layout and permissions, the course's folders owned by the instructor."""
    pw = pwd.getpwnam(settings.instructor)
    root = settings.exchange
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o1777)   # nbgrader requires rwx for all; sticky: nobody renames the instructor's course
    course = root / COURSE_ID
    layout = {course: 0o755, course / "outbound": 0o755, course / "inbound": 0o3733, course / "feedback": 0o711}
    for path, mode in layout.items():
        path.mkdir(exist_ok=True)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, mode)
    return root


def publish_review_rules(settings: Settings) -> list[Path]:
    """Validate's review rules for every lesson of the instructor's course (labs/course/validate.py):
    under the exchange's course folder, owned by the instructor, readable by all."""
    from ..course import validate

    pw = pwd.getpwnam(settings.instructor)
    top = settings.exchange / COURSE_ID / validate.REVIEW_DIR
    # Run as root under a world-writable exchange: every folder on the way must be a real folder of root's or the
    # instructor's (a student could have made one first, or a link to anywhere, for root to write and chown through).
    for folder in (settings.exchange / COURSE_ID, top, top / ASSIGNMENT):
        if folder.is_symlink() or (folder.exists() and (not folder.is_dir()
                                                        or folder.stat().st_uid not in (0, pw.pw_uid))):
            raise HubError(f"{folder} is not a folder of root's or {settings.instructor}'s: Validate's review "
                           "rules are not published there (remove it, then start the hub again)")
    written = validate.write_rules(course_dir(settings) / "source" / ASSIGNMENT, top / ASSIGNMENT)
    for path in [top, top / ASSIGNMENT, *written]:
        os.chown(path, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
        os.chmod(path, 0o644 if path.is_file() else 0o755)
    return written


def lock_repository(settings: Settings) -> dict:
    """Take the permissions for others off every top-level entry of the repository that students
    must not read. Returns what to restore."""
    record = _load(settings.state / "locked.json", {})
    for entry in sorted(ROOT.iterdir()):
        if entry.name in OPEN or entry.is_symlink():
            continue
        st = entry.lstat()
        record.setdefault(entry.name, {"mode": stat.S_IMODE(st.st_mode), "gid": st.st_gid})
        os.chmod(entry, stat.S_IMODE(st.st_mode) & ~0o007)
    _save(settings.state / "locked.json", record)
    return record


def unlock_repository(settings: Settings) -> None:
    path = settings.state / "locked.json"
    for name, was in _load(path, {}).items():
        entry = ROOT / name
        if entry.exists() and not entry.is_symlink():
            os.chown(entry, -1, was["gid"])
            os.chmod(entry, was["mode"])
    path.unlink(missing_ok=True)


def _own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctls, path = line.split(":", 2)
        if controller in ctls.split(","):
            return path.lstrip("/")
    raise HubError(f"no {controller} cgroup for this process")


def delegate_cgroups(settings: Settings) -> list[str]:
    """A memory and a pids cgroup (v1; on v2 one cgroup) owned by the instructor: the grader's
    sandboxes, started by the instructor's server, make their own cgroups under them."""
    pw = pwd.getpwnam(settings.instructor)
    name = f"lab-hub-{settings.port}"
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        base = Path("/sys/fs/cgroup") / Path(f"/proc/{os.getpid()}/cgroup").read_text().split("::", 1)[1].strip() \
            .lstrip("/")
        dirs = [base / name]
    else:
        dirs = [Path("/sys/fs/cgroup") / ctl / _own_cgroup(ctl) / name for ctl in ("memory", "pids")]
    for d in dirs:
        d.mkdir(exist_ok=True)
        for path in [d, *(d / f for f in ("cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads")
                          if (d / f).exists())]:
            os.chown(path, pw.pw_uid, pw.pw_gid)
    return [str(d) for d in dirs]


def remove_cgroups(dirs: list[str]) -> None:
    for top in map(Path, dirs):
        if not top.is_dir():
            continue
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
            for _ in range(50):
                pids = [int(p) for p in (d / "cgroup.procs").read_text().split()] if (d / "cgroup.procs").exists() \
                    else []
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


# --------------------------------------------------------------------------- the users' Python

def _others_can_exec(path: Path) -> bool:
    """Whether a user with no special rights can reach and run `path` (every folder above it o+x)."""
    path = path.resolve()
    if not path.stat().st_mode & 0o001:
        return False
    return all(parent.stat().st_mode & 0o001 for parent in path.parents)


def runtime(settings: Settings) -> Path:
    """The Python the users' servers run: the venv's own where every user can run it; else (a
    venv made from a Python only root can reach, e.g. pyenv under /root) an overlay venv made
    from the system's Python of the same version, reading the venv's packages (the same pins),
    with the venv's scripts pointed at it. Returns its bin folder."""
    base = VENV_BIN / "python"
    if _others_can_exec(base):
        return VENV_BIN
    env = settings.runtime
    python = env / "bin" / "python"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = Path(f"/usr/bin/python{version}")
    if not python.exists():
        if not system.exists():
            raise HubError(f"the venv's Python ({base.resolve()}) cannot be run by other users and there is no "
                           f"{system} to run its packages with: build .venv from a Python every user can run")
        env.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(env.parent, 0o755)
        _run(str(system), "-m", "venv", "--without-pip", str(env))
        site = env / "lib" / f"python{version}" / "site-packages"
        venv_site = ROOT / ".venv" / "lib" / f"python{version}" / "site-packages"
        (site / "lab_hub_venv.pth").write_text(f"import site; site.addsitedir({str(venv_site)!r})\n")
        for script in sorted(VENV_BIN.iterdir()):
            if not script.is_file() or script.is_symlink() or script.name.startswith(("python", "activate")):
                continue
            head = script.read_bytes()[:256]
            if head.startswith(f"#!{VENV_BIN}/python".encode()):
                body = script.read_bytes().split(b"\n", 1)[1]
                (env / "bin" / script.name).write_bytes(f"#!{python}\n".encode() + body)
                os.chmod(env / "bin" / script.name, 0o755)
    return env / "bin"


def open_python_to_staff(settings: Settings) -> None:
    """The instructor's server runs the venv's own Python (the grader's sandboxes bind its prefix):
    where a folder above it is closed to others (/root for pyenv), its group becomes the
    instructor's group with traversal only (no listing); restored by stop()."""
    record = _load(settings.state / "opened.json", {})
    staff = grp.getgrnam(STAFF).gr_gid
    python = (VENV_BIN / "python").resolve()
    for parent in reversed(python.parents):
        st = parent.stat()
        if st.st_mode & 0o001 or (st.st_gid == staff and st.st_mode & 0o010):
            continue
        record.setdefault(str(parent), {"mode": stat.S_IMODE(st.st_mode), "gid": st.st_gid})
        os.chown(parent, -1, staff)
        os.chmod(parent, stat.S_IMODE(st.st_mode) | 0o010)
    _save(settings.state / "opened.json", record)


def close_python(settings: Settings) -> None:
    path = settings.state / "opened.json"
    for name, was in _load(path, {}).items():
        with contextlib.suppress(FileNotFoundError):
            os.chown(name, -1, was["gid"])
            os.chmod(name, was["mode"])
    path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the proxy, the hub

def install_proxy(settings: Settings) -> Path:
    if settings.proxy.exists():
        return settings.proxy
    if not shutil.which("npm"):
        raise HubError("npm is needed for JupyterHub's proxy: `apt-get install -y nodejs npm`")
    prefix = settings.proxy.parent.parent.parent
    prefix.mkdir(parents=True, exist_ok=True)
    _run("npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
         f"configurable-http-proxy@{PROXY_VERSION}")
    return settings.proxy


def _write_settings(settings: Settings, users: dict, cgroups: list[str], student_bin: Path) -> Path:
    path = settings.state / "hub.json"
    _save(path, {
        "state": str(settings.state), "hub_dir": str(HUB_DIR), "repo": str(ROOT), "venv_bin": str(VENV_BIN),
        "student_bin": str(student_bin), "venv": str(ROOT / ".venv"),
        "ip": settings.ip, "port": settings.port, "hub_port": settings.port + 1,
        "proxy_api_port": settings.port + 2, "proxy": str(settings.proxy),
        "instructor": users["instructor"], "students": users["students"], "exchange": str(settings.exchange),
        "course": str(course_dir(settings)), "course_id": COURSE_ID, "cgroups": cgroups,
    })
    return path


def login_page_up(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"{settings.url}/hub/login", timeout=2) as resp:
            return resp.status == 200 and b"password" in resp.read()
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class Running:
    settings: Settings
    process: subprocess.Popen
    users: dict
    seconds_to_login: float


def start(settings: Settings | None = None, students: list[str] | None = None, out=sys.stdout) -> Running:
    """Everything up to the login page; the hub runs in its own session (stop() ends it)."""
    settings = settings or Settings()
    _require_root()
    t0 = time.monotonic()
    pidfile = settings.state / "hub.pid"
    if pidfile.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), 0)
            raise HubError(f"a hub is already running (pid {pidfile.read_text()}): `make hub-stop` first")
    busy = [p for p in settings.ports if not port_free(p)]
    if busy:
        raise HubError(f"port(s) {busy} in use: set LAB_HUB_PORT (the hub uses it and the next two)")
    if not shutil.which("bwrap"):
        raise HubError("bubblewrap is needed for sandboxed grading: `apt-get install -y bubblewrap`")
    settings.state.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.state, 0o700)
    try:
        install_proxy(settings)
        users = _load(settings.users_file, None)
        if users is None or students:
            users = make_class(settings, students or ["student1", "student2"])
        lock_repository(settings)
        open_python_to_staff(settings)
        student_bin = runtime(settings)
        cgroups = delegate_cgroups(settings)
        _save(settings.state / "cgroups.json", cgroups)
        setup_course(settings)
        _add_students(settings, users["students"])
        setup_exchange(settings)
        publish_review_rules(settings)
        env = {"PATH": f"{settings.proxy.parent}:{VENV_BIN}:/usr/bin:/bin",
               "LANG": os.environ.get("LANG", "C.UTF-8"),
               "LAB_HUB_SETTINGS": str(_write_settings(settings, users, cgroups, student_bin))}
        log = open(settings.state / "jupyterhub.log", "ab")
        proc = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(HUB_DIR / "jupyterhub_config.py")],
                                cwd=settings.state, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + 120
        while not login_page_up(settings):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (settings.state / "jupyterhub.log").read_text(errors="replace")[-3000:]
                raise HubError(f"JupyterHub did not come up:\n{tail}")
            time.sleep(0.2)
    except BaseException:
        stop(settings)
        raise
    running = Running(settings, proc, users, time.monotonic() - t0)
    print(f"JupyterHub for {COURSE_ID} at {settings.url}/  (login page in {running.seconds_to_login:.1f} s)",
          file=out)
    print(f"  instructor: {users['instructor']}   (formgrader: {settings.url}/user/{users['instructor']}/formgrader)",
          file=out)
    print(f"  students:   {', '.join(users['students'])}", file=out)
    print(f"  demo password of the accounts created here: {users['password']}", file=out)
    print(f"  exchange:   {settings.exchange}   course: {course_dir(settings)}", file=out)
    print("  stop: Ctrl-C, or `make hub-stop`", file=out, flush=True)
    return running


def _kill_uids(uids: set[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = processes_of(uids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while pids and processes_of(uids) and time.monotonic() < deadline:
            time.sleep(0.1)


def stop(settings: Settings | None = None, remove: bool = False) -> dict:
    """Stop the hub (its proxy and every user's server with it), then any process left of its
    accounts; restore the repository's modes; free the cgroups. With `remove`, delete the accounts
    made here. Returns what is left (processes, ports): both empty when it stopped cleanly."""
    settings = settings or Settings()
    _require_root()
    pidfile = settings.state / "hub.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(pid, sig) if sig == signal.SIGKILL else os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        break
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                continue
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)   # the proxy, if the hub could not stop it
        pidfile.unlink(missing_ok=True)
    users = _load(settings.users_file, {"instructor": settings.instructor, "students": []})
    uids = {pwd.getpwnam(u).pw_uid for u in [users["instructor"], *users["students"]] if user_exists(u)}
    _kill_uids(uids)
    remove_cgroups(_load(settings.state / "cgroups.json", []))
    (settings.state / "cgroups.json").unlink(missing_ok=True)
    unlock_repository(settings)
    close_python(settings)
    if remove:
        remove_class(settings)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(port_free(p) for p in settings.ports):
        time.sleep(0.2)
    return {"processes": processes_of(uids), "ports": [p for p in settings.ports if not port_free(p)]}


def serve(settings: Settings, students: list[str] | None) -> int:
    """`make hub`: start, then wait; Ctrl-C (or `make hub-stop` from another terminal) stops it."""
    running = start(settings, students)

    def interrupted(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        running.process.wait()
    except KeyboardInterrupt:
        pass
    left = stop(settings)
    print(f"hub stopped; left behind: {left['processes'] or 'no process'}, {left['ports'] or 'no port'}")
    return 0 if not (left["processes"] or left["ports"]) else 1
