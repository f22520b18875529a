# SPDX-License-Identifier: LGPL-2.1-or-later
"""The unrelated process of the Python tests: a separate program that uses wg on its own.

Usage: helper.py VERB ARGS... It reports on stdout, one line per event, and waits for the
test's instructions on stdin where a verb says so.

  done NAME N       open NAME, say "opened", then done N times; say "did N"
  wait NAME         open NAME, say "waiting", wait; say "outcome G S F A" (or "error ERRNO")
  wait-fd FD        attach to the inherited fd FD, say "waiting", wait; say "outcome ..."
  member NAME       join NAME, say "joined", then read a line from stdin (or its end); leave
                    with the status that line gives ("0" if none) and say "left"
  open NAME         open NAME; say "opened" or "error ERRNO CLASS"
"""

from __future__ import annotations

import sys

import wg


def say(line: str) -> None:
    print(line, flush=True)


def report(outcome: wg.Outcome) -> None:
    say(f"outcome {outcome.generation} {outcome.succeeded} {outcome.failed} {outcome.abandoned}")


def main(argv: list[str]) -> int:
    verb, args = argv[0], argv[1:]
    if verb == "done":
        with wg.open(args[0]) as g:
            say("opened")
            for _ in range(int(args[1])):
                g.done()
        say(f"did {args[1]}")
    elif verb in ("wait", "wait-fd"):
        g = wg.open(args[0]) if verb == "wait" else wg.Group.from_fd(int(args[0]))
        with g:
            say("waiting")
            try:
                report(g.wait(timeout=60))
            except OSError as e:
                say(f"error {e.errno}")
    elif verb == "member":
        m = wg.join(args[0])
        say("joined")
        line = sys.stdin.readline().strip()
        with m:
            m.leave(int(line or "0"))
        say("left")
    elif verb == "open":
        try:
            wg.open(args[0]).close()
        except OSError as e:
            say(f"error {e.errno} {type(e).__name__}")
        else:
            say("opened")
    else:
        print(f"helper.py: unknown verb {verb!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
