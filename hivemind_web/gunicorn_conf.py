"""gunicorn settings for `make run` (hivemind_web/run.py passes `-c` this file).

- Errors gunicorn answers itself, before Django sees the request (a request
  line over `limit_request_line`: 414; bad headers: 400; too many headers:
  431), are JSON like every other error a program gets here, not gunicorn's
  HTML page (`_write_json_error`).
- Every database query a request makes is cancelled after 60 s
  (`HIVEMIND_WEB_STATEMENT_TIMEOUT_MS`), so no request holds its thread on a
  runaway query; other waits have their own bounds (the broker 0.5 s, an MCP
  tool 30 s, model and webhook calls their timeouts).
- The access log writes the method, the URL *route* (`/api/v1/traces/<external_id>/outcome`,
  not the id itself), status, size and time: never a query string (search
  words, a task), an id from a path or a referer. Error-log lines pass the
  same redactor as every other log line (workspaces/logredaction.py).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from gunicorn import glogging, util

logger_class = "hivemind_web.gunicorn_conf.RedactingLogger"
# Every query of a web request has a deadline (settings.py); the workers, which
# load the app after this file, inherit it.
os.environ.setdefault("HIVEMIND_WEB_STATEMENT_TIMEOUT_MS", "60000")
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


# The application, its URL conf, views, templates and the embedding model are
# loaded once in the master, before it forks: the workers share those pages
# (copy-on-write) instead of each holding its own copy, and none of them pays
# for loading on its first request.
preload_app = True


def on_starting(server: Any) -> None:
    from hivemind_web.warmup import warm_process

    warm_process()


def post_worker_init(worker: Any) -> None:
    # One inference per worker, after the fork: the model's thread pool is the
    # worker's own (never started in the master), and the first search is not
    # the one that pays for it.
    from hivemind_web.warmup import tune_collector, warm_inference

    warm_inference()
    tune_collector()


def worker_exit(server: Any, worker: Any) -> None:
    """A booted worker leaving by `sys.exit` (a stop, a restart, a timeout's abort)
    ends here with the same exit code: the interpreter's own exit handlers run,
    then the process exits without the C++ teardown that follows them.
    onnxruntime starts threads when it is imported (in the master, before the
    fork); a forked worker holds their handles but not the threads, and joining
    them at its exit aborted every worker on every stop ("terminate called after
    throwing an instance of 'std::system_error'", "Worker was sent SIGABRT!").
    A worker that failed to boot, or that raised anything else, is left to
    gunicorn."""
    import sys

    leaving = sys.exc_info()[1]  # the exception gunicorn's `finally` runs under
    if not worker.booted or not isinstance(leaving, SystemExit):
        return
    code = leaving.code
    import atexit

    atexit._run_exitfuncs()  # logging's flush, the embedded database's handle
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# gunicorn's workers call util.write_error for the errors they answer themselves.
util.write_error = _write_json_error


@lru_cache(maxsize=4096)
def loggable_path(path: str) -> str:
    """The route a path matched, with its parameters named instead of their values;
    static files as they are; anything else "(no route)"."""
    if path.startswith("/static/") and ".." not in path:
        return path
    try:
        from django.urls import Resolver404, resolve

        match = resolve(path)
    except Resolver404:
        return "(no route)"
    except Exception:  # noqa: BLE001 - Django not ready (master process): say nothing
        return "(path not logged)"
    return "/" + match.route.replace("<", "{").replace(">", "}") if match.route else "(no route)"


class RedactingLogger(glogging.Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from workspaces.logredaction import RedactingFilter

        for log in (self.error_log, self.access_log):
            log.addFilter(RedactingFilter())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        path = loggable_path(environ.get("PATH_INFO", "") or "")
        atoms.update({"U": path, "q": "", "f": "-", "a": "-", "r": f"{atoms['m']} {path}"})
        return atoms
