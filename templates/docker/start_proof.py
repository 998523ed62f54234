"""The start proof `cargo xtask docker build` runs inside a built image: import each of the
app's entry modules (argv) as the app would start, from /app, as the image's own user.

One JSON line per module on stdout: {"module", "ok", "seconds"}, and for a failure also
"error" (the exception, one line) and "where" (the project's file:line it came from); the
traceback goes to stderr. Exit 0 when every module imports, 1 at the first that does not.
"""

import importlib
import json
import os
import sys
import time
import traceback

APP = "/app/"


def where(exc):
    """The innermost place in the app's own code (under /app) the exception came from."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return "%s:%s" % (exc.filename.replace(APP, "", 1), exc.lineno)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(APP)]
    if not frames:
        return None
    return "%s:%s" % (frames[-1].filename[len(APP):], frames[-1].lineno)


def main():
    user = {"uid": os.getuid(), "python": sys.version.split()[0], "prefix": sys.prefix}
    print(json.dumps({"user": user}), flush=True)
    for module in sys.argv[1:]:
        started = time.monotonic()
        try:
            importlib.import_module(module)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt at import are failures too
            traceback.print_exc()
            line = "%s: %s" % (type(exc).__name__, exc)
            print(json.dumps({"module": module, "ok": False,
                              "seconds": round(time.monotonic() - started, 3),
                              "error": line.splitlines()[0], "where": where(exc)}), flush=True)
            return 1
        print(json.dumps({"module": module, "ok": True,
                          "seconds": round(time.monotonic() - started, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
