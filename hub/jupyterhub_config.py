"""JupyterHub for the course (started by `python -m labs.hub start`, i.e. `make hub`).

Everything that varies (ports, state folder, accounts, the exchange root) comes from the
settings file `labs.hub` writes (LAB_HUB_SETTINGS); this file holds the policy:
PAM authentication of real system users, one local single-user server per user running as
that user, the instructor's server with the formgrader and the course, students' servers with
the assignment list and Validate only.
"""

import json
import os
from pathlib import Path

c = get_config()  # noqa: F821  (injected by traitlets)

S = json.loads(Path(os.environ["LAB_HUB_SETTINGS"]).read_text())
STATE = Path(S["state"])
HUB = Path(S["hub_dir"])

c.JupyterHub.ip = S["ip"]
c.JupyterHub.port = S["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = S["hub_port"]
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True      # stopping the hub stops every user's server
c.JupyterHub.cleanup_proxy = True

# JupyterHub's own proxy (configurable-http-proxy, npm), started and stopped by the hub.
c.ConfigurableHTTPProxy.command = [S["proxy"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{S['proxy_api_port']}"
c.ConfigurableHTTPProxy.should_start = True

# Real system accounts, authenticated by PAM (the hub runs as root to read the password database
# and to start each server as its user); only the class and its instructor may log in.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = set(S["students"]) | {S["instructor"]}
c.Authenticator.admin_users = set()

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
# Nothing of the hub's (root's) environment reaches a user's server but the locale.
c.Spawner.env_keep = ["LANG", "LC_ALL", "TZ"]
VENV = Path(S["venv"])


def per_role(spawner):
    """The instructor's server: the formgrader, the course importable (labs), grading in the
    cgroup delegated to the instructor. A student's: the assignment list and Validate."""
    name = spawner.user.name
    role = "instructor" if name == S["instructor"] else "student"
    # Students run the venv's packages with a Python they can run (labs.hub.runtime); the instructor
    # the venv itself (its grader's sandboxes bind the venv's prefix).
    bin_dir = S["venv_bin"] if role == "instructor" else S["student_bin"]
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "JUPYTER_CONFIG_PATH": f"{HUB / role}:{VENV / 'etc' / 'jupyter'}",
        "JUPYTER_PATH": str(VENV / "share" / "jupyter"),
        "JUPYTERLAB_DIR": str(VENV / "share" / "jupyter" / "lab"),
        "LAB_HUB_EXCHANGE": S["exchange"],
        "LAB_HUB_COURSE_ID": S["course_id"],
        "LAB_DEVICE": "cpu",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    cmd = [str(Path(bin_dir) / "jupyterhub-singleuser")]
    if role == "instructor":
        env.update({
            "PYTHONPATH": S["repo"],
            "LAB_HUB_COURSE": S["course"],
            "LAB_HUB_CGROUPS": " ".join(S["cgroups"]),
        })
        cmd = ["/bin/sh", str(HUB / "enter-cgroup.sh"), *cmd]
    spawner.environment = env
    spawner.cmd = cmd


c.Spawner.pre_spawn_hook = per_role
