"""A process that has imported ``gateway.cli`` and forks one child per command.

Started by ``tests.processes.gateway``, never imported by the tests. Each request
(one JSON line on stdin: argv, environment, working directory, output files, a time
limit) is run in a fresh fork that becomes what ``python -m gateway ARGS`` is once
its imports are done: its own process, environment, working directory and
``sys.path[0]``, stdin from /dev/null, stdout and stderr to files, and the
interpreter's own exit (``SystemExit``, a traceback, atexit handlers) giving the
exit status, which is written back as one JSON line. The interpreter start and the
imports (about a second of CPU per command) are paid once, here; nothing else is
shared, as the parent never runs a command itself (no event loop, no database, no
thread). This holds while no module reads the environment when imported (none does:
settings are read when a command runs). ``gateway serve`` and the tests of the entry
point itself run real ``python -m gateway`` processes.
"""

from __future__ import annotations

import ast
import gc
import importlib
import json
import os
import runpy
import signal
import sys

sys.path[0] = os.getcwd()  # not this file's directory: as ``python -m`` in a neutral place

import gateway.cli  # noqa: E402  (the point: imported once, before any fork)

# What the commands import when they run (db.accounts hashes a dummy password at
# import, Tortoise reads its models' source): once, here. ``serve``'s imports are not
# (it always runs as a process of its own).
for node in ast.walk(ast.parse(open(gateway.cli.__file__).read())):  # noqa: SIM115
    if isinstance(node, ast.FunctionDef) and node.name != "serve":
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.module and not inner.level:
                importlib.import_module(inner.module)
gc.freeze()  # a child's exit then frees its own objects, not the parent's heap again

requests = os.fdopen(os.dup(0), "rb")
answers = os.fdopen(os.dup(1), "wb")
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 0)
os.dup2(2, 1)  # nothing of the parent's reaches the answers


def serve() -> dict[str, object] | None:
    """Answer requests until stdin ends; in a child, return its request."""
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            return dict(request)
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode())
        answers.write(b"\n")
        answers.flush()
    return None


request = serve()
if request is None:
    sys.exit(0)
requests.close()
answers.close()
os.chdir(str(request["cwd"]))
os.environ.clear()
os.environ.update(request["env"])  # type: ignore[arg-type]
for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
    out = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, fd)
    os.close(out)
os.close(null)
sys.path[0] = os.getcwd()
sys.argv = ["gateway", *request["argv"]]  # type: ignore[list-item]
signal.alarm(int(request["timeout"]))  # type: ignore[call-overload]  # the default action ends it
runpy.run_module("gateway", run_name="__main__", alter_sys=True)
