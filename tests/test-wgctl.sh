#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# wgctl as a shell sees it: every verb and every exit code, with a real wgd that wgctl starts on
# demand on a socket of this test's own. TAP output.
#
# Needs: $WGCTL and $WGD (the built binaries), jq for the JSON checks, setpriv for the second uid.
set -u

WGCTL=${WGCTL:?} WGD=${WGD:?}
dir=$(mktemp -d /tmp/wgctl-test-XXXXXX)
chmod 0755 "$dir"
export WGD_SOCKET=$dir/wgd.sock WGCTL_WGD=$WGD
unset WGCTL_NO_AUTOSTART
n=0 failed=0

cleanup() {
    # The wgds started on demand (on sockets in $dir) would exit by themselves when idle; don't
    # leave them for that.
    pkill -f -- "--socket=$dir/" 2>/dev/null
    # (and those that supervise.py starts, with no --socket)
    for f in "$dir"/sd.pid.*; do [ -s "$f" ] && kill -KILL "$(cat "$f")"; done 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }

# expect CODE DESCRIPTION -- COMMAND...: the command exits with CODE.
expect() {
    local want=$1 what=$2 got
    shift 3
    "$@" >"$dir/out" 2>"$dir/err"
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok "$what (exit $want)"
    else
        not_ok "$what: exit $got, expected $want"
        sed 's/^/# /' "$dir/err"
    fi
}

# expect_status CODE STATUS DESCRIPTION: a status collected by hand (of a job in the background).
expect_status() {
    if [ "$2" -eq "$1" ]; then ok "$3 (exit $1)"; else not_ok "$3: exit $2, expected $1"; fi
}

# check DESCRIPTION -- COMMAND...: the command succeeds (a shell test on state).
check() {
    local what=$1
    shift 2
    if "$@" >/dev/null; then ok "$what"; else not_ok "$what"; fi
}

stderr_has() { grep -q -- "$1" "$dir/err"; }
count_of() { "$WGCTL" status "$1" --json | jq -r .count; }
count_is() { test "$(count_of "$1")" -eq "$2"; }
# The sleep that process $1 runs, in $sleeper: the test kills it by pid, never by name, which
# would reach any such sleep on the machine.
sleep_child() { sleeper=$(pgrep -P "$1" -x sleep) && [ -n "$sleeper" ]; }

# Nothing here orders events with a sleep. A command that must still be running when the test
# looks waits on a gate (a fifo) that the test opens when it is done looking; a state the test
# must see is polled for, with a deadline generous enough for valgrind on a loaded machine.
gate() { rm -f "$dir/gate.$1"; mkfifo "$dir/gate.$1"; }
# The command that waits at gate NAME: opening a fifo for reading blocks until a writer comes.
at_gate() { echo "read _ <'$dir/gate.$1'"; }
# Open gate NAME: blocks (60 s at most) until its command is there to be let through.
open_gate() { timeout 60 sh -c "echo >'$dir/gate.$1'"; }
# until_true COMMAND...: poll until COMMAND succeeds, for at most 60 s. (Its arguments are
# expanded once, at the call: what must be looked at again each time goes in a function.)
until_true() {
    local i
    for i in $(seq 1200); do "$@" && return 0; sleep 0.05; done
    return 1
}

# --- start on demand, create, status ---------------------------------------------------------
expect 0 "no wgd yet: create starts one" -- "$WGCTL" create build
check "a wgd now serves the socket" -- test -S "$WGD_SOCKET"
expect 125 "create of an existing group" -- "$WGCTL" create build
check "  says it exists" -- stderr_has "exists"
expect 0 "create --exist-ok of an existing group" -- "$WGCTL" create build --exist-ok
expect 0 "create --count --mode" -- "$WGCTL" create shared --count 2 --mode 0666
expect 0 "status" -- "$WGCTL" status shared
check "  status is key: value lines" -- grep -qx "count: 2" "$dir/out"

expect 0 "status --json" -- "$WGCTL" status shared --json
check "  JSON: name, count, generation, waiters, owner, mode" -- \
    jq -e '.name == "shared" and .count == 2 and .generation == 0 and .waiters == 0 and
           .owner == 0 and .mode == "0666" and (.created_usec | type) == "number"' "$dir/out"

expect 0 "list --json" -- "$WGCTL" list --json
check "  JSON: an array of both groups, in name order" -- \
    jq -e 'length == 2 and .[0].name == "build" and .[1].name == "shared"' "$dir/out"
expect 0 "list" -- "$WGCTL" list
check "  a header and a line per group" -- test "$(wc -l <"$dir/out")" -eq 3

# --- add, done, wait --------------------------------------------------------------------------
expect 0 "add 3" -- "$WGCTL" add build 3
expect 0 "done" -- "$WGCTL" done build
expect 0 "done 2" -- "$WGCTL" done build 2
check "  back at 0, one generation later" -- test "$("$WGCTL" status build --json | jq -c '[.count, .generation]')" = "[0,1]"
expect 125 "done below zero" -- "$WGCTL" done build
check "  says so" -- stderr_has "below zero"
check "  and changed nothing" -- test "$(count_of build)" -eq 0
expect 0 "wait on a group at zero" -- "$WGCTL" wait build
expect 0 "add" -- "$WGCTL" add build
expect 124 "wait --timeout 200ms" -- "$WGCTL" wait build --timeout 200ms
check "  says what is outstanding" -- stderr_has "1 of 1 still outstanding"
"$WGCTL" wait build --progress --timeout 60s 2>"$dir/progress" &
waiter=$!
check "  wait --progress draws its first line while it waits" -- until_true grep -q "0/1 done" "$dir/progress"
"$WGCTL" done build
wait "$waiter"
expect_status 0 $? "wait --progress, released by a done from another shell"
check "  the last progress line says all is done" -- grep -q "1/1 done" "$dir/progress"
if command -v script >/dev/null; then
    "$WGCTL" add build
    expect 124 "wait on a terminal draws a progress bar" -- \
        script -qec "'$WGCTL' wait build --timeout 600ms" /dev/null
    check "  the bar: done/total and elapsed time" -- grep -q '\] 0/1 done  [0-9]*\.[0-9]s' "$dir/out"
    "$WGCTL" done build
else
    ok "# SKIP no script(1) for a terminal"; ok "# SKIP no script(1)"
fi
expect 0 "wait --quiet prints nothing" -- "$WGCTL" wait build --quiet
check "  nothing" -- test ! -s "$dir/err"

# --- run and spawn ---------------------------------------------------------------------------
expect 0 "run true" -- "$WGCTL" run build -- true
expect 7 "run of a command that fails: its status" -- "$WGCTL" run build -- sh -c 'exit 7'
expect 143 "run of a command killed by SIGTERM: 128+15" -- "$WGCTL" run build -- sh -c 'kill -TERM $$'
expect 137 "run of a command killed by SIGKILL: 128+9" -- "$WGCTL" run build -- sh -c 'kill -KILL $$'
expect 127 "run of a command that does not exist" -- "$WGCTL" run build -- /nonexistent/command
expect 126 "run of a file that cannot execute" -- "$WGCTL" run build -- "$dir"
check "  every run did its done" -- test "$(count_of build)" -eq 0
expect 0 "run holds one piece of work while the command runs" -- \
    "$WGCTL" run build -- sh -c "test \"\$('$WGCTL' status build --json | jq .count)\" -eq 1"
expect 3 "run passes arguments untouched" -- "$WGCTL" run build -- sh -c 'exit $#' sh a 'b c' "--"

rm -f "$dir/marker"
expect 0 "spawn, then wait at once" -- \
    bash -c "'$WGCTL' spawn build -- sh -c 'sleep 0.3; touch $dir/marker' && '$WGCTL' wait build --timeout 60s"
check "  the wait saw the spawned command through" -- test -e "$dir/marker"
gate detach
expect 0 "spawn detaches: returns while the command runs" -- \
    timeout 60 "$WGCTL" spawn build -- sh -c "$(at_gate detach)"
check "  the command still counts" -- test "$(count_of build)" -eq 1
open_gate detach
expect 0 "  and is done when it ends" -- "$WGCTL" wait build --timeout 60s
expect 0 "spawn of a command that crashes" -- "$WGCTL" spawn build -- sh -c 'kill -SEGV $$'
expect 1 "  a wait returns, and exits 1: a member failed" -- "$WGCTL" wait build --timeout 30s
check "  and names it, with its status" -- stderr_has "failed with status 139: sh -c kill -SEGV"
expect 127 "spawn of a command that does not exist" -- "$WGCTL" spawn build -- /nonexistent/command
expect 1 "  its leave is done too, as a failure" -- "$WGCTL" wait build --timeout 30s
check "  with status 127" -- stderr_has "failed with status 127"
gate first; gate second
"$WGCTL" spawn build -- sh -c "$(at_gate first); exit 3"
"$WGCTL" spawn build -- sh -c "$(at_gate second)"
"$WGCTL" wait build --timeout 60s --progress 2>"$dir/progress" &
waiter=$!
check "progress: the wait starts at 0 of 2" -- until_true grep -q "0/2 done" "$dir/progress"
open_gate first
check "  counts the failure as the first member ends, before the end" -- \
    until_true grep -q "1/2 done, 1 failed" "$dir/progress"
open_gate second
wait "$waiter"
expect_status 1 $? "  and exits 1 when the second ends: a member failed"

# --- members ----------------------------------------------------------------------------------
gate generation
expect 0 "a generation of members: one spawned" -- "$WGCTL" spawn build -- sh -c "$(at_gate generation)"
expect 0 "  one run while the first still runs" -- "$WGCTL" run build -- true
open_gate generation
expect 0 "  a wait sees them both succeed" -- "$WGCTL" wait build --timeout 60s
expect 0 "status --json shows the last generation's outcome" -- "$WGCTL" status build --json
check "  2 succeeded, none failed" -- jq -e '.outcome.succeeded == 2 and .outcome.failed == 0' "$dir/out"
expect 0 "status lists the members of the current generation" -- \
    "$WGCTL" run build -- sh -c "'$WGCTL' status build >'$dir/members'"
check "  the running member, joined, with its command" -- grep -q "^member: [0-9]* joined: sh -c" "$dir/members"
expect 0 "a supervisor killed by SIGKILL: spawn it" -- "$WGCTL" spawn build -- sleep 60
victim=$(pgrep -f -n "wgctl spawn build -- sleep 60")
check "  found its supervisor" -- test -n "$victim"
check "  and its command" -- until_true sleep_child "$victim"
kill -KILL "$victim" 2>/dev/null
expect 1 "  the wait returns (wgd did its done), and exits 1" -- "$WGCTL" wait build --timeout 30s
check "  it died without leaving" -- stderr_has "died without leaving: sleep 60"
kill "$sleeper" 2>/dev/null
"$WGCTL" run build -- sleep 61 &
runner=$!
check "a 'wgctl run' in the background has joined" -- until_true count_is build 1
check "  and runs its command" -- until_true sleep_child "$runner"
kill -KILL "$runner"
wait "$runner" 2>/dev/null
expect 1 "a 'wgctl run' killed by SIGKILL: the wait returns, and exits 1" -- "$WGCTL" wait build --timeout 30s
check "  it died without leaving" -- stderr_has "died without leaving: sleep 61"
kill "$sleeper" 2>/dev/null
expect 0 "create --on-abandon break" -- "$WGCTL" create fragile --on-abandon break
expect 0 "  a member joins" -- "$WGCTL" spawn fragile -- sleep 60
victim=$(pgrep -f -n "wgctl spawn fragile -- sleep 60")
check "  found its supervisor and its command" -- until_true sleep_child "$victim"
kill -KILL "$victim" 2>/dev/null
expect 1 "  and dies: the group is broken, a wait fails at once" -- "$WGCTL" wait fragile --timeout 30s
check "  and says how to mend it" -- stderr_has "wgctl reset fragile"
kill "$sleeper" 2>/dev/null
expect 125 "  add to a broken group" -- "$WGCTL" add fragile
expect 0 "  reset mends it" -- "$WGCTL" reset fragile
expect 0 "  and it works again" -- "$WGCTL" run fragile -- true
expect 2 "create --on-abandon with a bad policy" -- "$WGCTL" create x --on-abandon maybe

# --- errors -----------------------------------------------------------------------------------
expect 125 "status of an unknown group" -- "$WGCTL" status nosuch
check "  names it" -- stderr_has "nosuch"
expect 125 "wait on an unknown group" -- "$WGCTL" wait nosuch
expect 125 "delete of an unknown group" -- "$WGCTL" delete nosuch
expect 2 "no verb" -- "$WGCTL"
expect 2 "unknown verb" -- "$WGCTL" frobnicate
expect 2 "missing name" -- "$WGCTL" add
expect 2 "invalid name" -- "$WGCTL" add 'a/b'
check "  says what a name may be" -- stderr_has "not a group name"
expect 2 "bad count" -- "$WGCTL" add build zero
expect 2 "zero count" -- "$WGCTL" done build 0
expect 2 "negative count" -- "$WGCTL" add build -3
expect 2 "bad duration" -- "$WGCTL" wait build --timeout 5parsecs
check "  says what a duration is" -- stderr_has "not a duration"
expect 2 "unknown option" -- "$WGCTL" status build --frob
expect 2 "run without a command" -- "$WGCTL" run build --
expect 2 "bad mode" -- "$WGCTL" create m --mode 0777
expect 2 "extra argument" -- "$WGCTL" delete build extra
check "every usage error is one line" -- test "$(wc -l <"$dir/err")" -eq 1
for verb in create add done wait run spawn status list delete reset; do
    expect 0 "$verb --help" -- "$WGCTL" "$verb" --help
done
expect 0 "--help" -- "$WGCTL" --help
expect 0 "--version" -- "$WGCTL" --version

# --- another uid --------------------------------------------------------------------------------
# (The build tree may sit where nobody cannot go, like a clone in a 0700 directory: then skip.)
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null &&
    setpriv --reuid=65534 --regid=65534 --clear-groups -- "$WGCTL" --version >/dev/null 2>&1; then
    as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
    expect 125 "another uid: add to a 0600 group" -- as_nobody "$WGCTL" add build
    check "  permission denied" -- stderr_has "does not allow"
    expect 125 "another uid: status of a 0600 group" -- as_nobody "$WGCTL" status build
    expect 0 "another uid: add to a 0666 group" -- as_nobody "$WGCTL" add shared
    expect 125 "another uid: delete of root's group" -- as_nobody "$WGCTL" delete shared
    expect 0 "another uid: list shows only what it may read" -- as_nobody "$WGCTL" list --json
    check "  just the 0666 group" -- jq -e 'length == 1 and .[0].name == "shared"' "$dir/out"
    "$WGCTL" create readable --mode 0644 --count 1 >/dev/null
    expect 0 "another uid: wait on a 0644 group goes through wgd" -- \
        bash -c "(sleep 0.3; '$WGCTL' done readable) & setpriv --reuid=65534 --regid=65534 --clear-groups -- '$WGCTL' wait readable --timeout 30s"
    expect 124 "another uid: a timed-out wait through wgd" -- \
        bash -c "'$WGCTL' add readable; setpriv --reuid=65534 --regid=65534 --clear-groups -- '$WGCTL' wait readable --timeout 300ms"
else
    for i in 1 2 3 4 5 6 7 8 9; do ok "# SKIP not root, no setpriv, or nobody cannot run wgctl here"; done
fi

# --- text that others chose ---------------------------------------------------------------------
# A member's description is whatever its joiner sent: here a command line with escape sequences
# (colour, a window title, CSI as a C1 byte and as UTF-8, a right-to-left override). None of it
# may reach a terminal as bytes. Joined by another uid where the test can, as an attacker would.
esc=$(printf '\033')
hostile=$(printf 'a\033[31mred\033]0;title\007\r\bb\233\302\2332J\342\200\256c')
# no_control FILE: nothing in FILE that a terminal would act on (ESC, BEL, CR, BS, C1 bytes).
no_control() { ! LC_ALL=C grep -q "[$esc$(printf '\007\r\b\233')]" "$1"; }
other=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null &&
    setpriv --reuid=65534 --regid=65534 --clear-groups -- "$WGCTL" --version >/dev/null 2>&1; then
    other=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
"$WGCTL" create hostile --mode 0666 >/dev/null
gate hostile
expect 0 "a member whose command line holds escape sequences joins${other:+ (as another uid)}" -- \
    "${other[@]}" "$WGCTL" spawn hostile -- sh -c "$(at_gate hostile); exit 3" "$hostile"
expect 0 "  status lists it" -- "$WGCTL" status hostile
check "  escaped: no control byte on stdout" -- no_control "$dir/out"
check "  but its text, as \\033 and octal" -- grep -qF 'a\033[31mred\033]0;title\a\r\bb\233' "$dir/out"
expect 0 "  status --json" -- "$WGCTL" status hostile --json
check "  no control byte in the JSON either" -- no_control "$dir/out"
check "  and only UTF-8, as JSON must be" -- iconv -f UTF-8 -t UTF-8 "$dir/out"
check "  which is valid, with the description's controls in it" -- \
    jq -e '.members[0].description | startswith("sh -c ") and contains("a\u001b[31mred")' "$dir/out"
open_gate hostile
expect 1 "  wait names it as failed" -- "$WGCTL" wait hostile --timeout 60s
check "  escaped: no control byte on stderr" -- no_control "$dir/err"
check "  but its text" -- grep -qF 'failed with status 3: sh -c' "$dir/err"
expect 127 "run of a command named with escape sequences" -- "$WGCTL" run hostile -- "$(printf '\033[31mX')"
check "  the error names it escaped" -- grep -qF '\033[31mX: command not found' "$dir/err"
check "  no control byte on stderr" -- no_control "$dir/err"
expect 1 "  and the wait after it names it escaped" -- "$WGCTL" wait hostile --timeout 60s
check "  no control byte on stderr" -- no_control "$dir/err"
expect 2 "a group name with an escape sequence: the usage error escapes it" -- "$WGCTL" add "$(printf 'x\033[2J')"
check "  no control byte on stderr" -- no_control "$dir/err"

# Printable text beyond ASCII goes out as it is in a UTF-8 locale, and escaped in any other: wgctl
# reads the locale when it first prints such text (not at start-up, which an add or done pays).
"$WGCTL" create accents >/dev/null
gate accents
expect 0 "a member whose command line holds a printable UTF-8 character joins" -- \
    "$WGCTL" spawn accents -- sh -c "$(at_gate accents)" "caf$(printf '\303\251')"
expect 0 "  status in a UTF-8 locale" -- env LC_ALL=C.UTF-8 "$WGCTL" status accents
check "  shows it as it is" -- grep -qF "caf$(printf '\303\251')" "$dir/out"
expect 0 "  status in the C locale" -- env LC_ALL=C "$WGCTL" status accents
check "  shows it escaped" -- grep -qF 'caf\303\251' "$dir/out"
open_gate accents
expect 0 "  and the generation ends" -- "$WGCTL" wait accents --timeout 60s

# --- wgd dies while wgctl waits ---------------------------------------------------------------
# A wait sleeps on the segment's futex, which wgd's death does not touch: wgctl must notice the
# death through the connection it keeps. (Each wgd here serves a socket of its own.)
on_sock() { local sock=$1; shift; WGD_SOCKET="$dir/$sock" "$WGCTL" "$@"; }
# sleeping_on SOCK NAME: a waiter has registered on the segment of NAME (so it is waiting).
sleeping_on() { test "$(on_sock "$1" status "$2" --json | jq -r .futex_waiters)" = true; }
expect 0 "a wgd started on demand, and a group with one piece outstanding" -- on_sock die.sock create doomed --count 1
timeout 60 env WGD_SOCKET="$dir/die.sock" "$WGCTL" wait doomed 2>"$dir/doomed.err" &
waiter=$!
check "  a wait without --timeout sleeps on it" -- until_true sleeping_on die.sock doomed
pkill -KILL -f -- "--socket=$dir/die.sock"
wait "$waiter"
expect_status 125 $? "  wgd killed by SIGKILL: the wait fails at once (timeout(1) would say 124)"
# How the reconnect fails depends on how far the kernel got with the dead wgd's socket (refused,
# reset, no answer): each says so, after the same words.
check "  and says wgd died" -- grep -q "'doomed': wgd died while we waited, and " "$dir/doomed.err"

# Under systemd, the socket outlives wgd, and the wgd started next takes its groups back from
# the fdstore: the wait goes on, on its segment. supervise.py plays systemd's part: it holds the
# listening socket and the fdstore, and starts wgd when a client connects, as socket activation
# does. It writes each wgd's pid to sd.pid.N.
cat >"$dir/supervise.py" <<'PY'
import fcntl, os, select, socket, sys

wgd, sock_path, notify_path, pid_prefix = sys.argv[1:5]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
listener.bind(sock_path)
listener.listen(64)
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
store = {}


def take(until_ready):
    """Read what wgd said: FDSTORE and FDSTOREREMOVE; until READY=1 if asked to."""
    while True:
        notify.setblocking(until_ready)
        try:
            msg, fds, _, _ = socket.recv_fds(notify, 4096, 16)
        except BlockingIOError:
            return
        fields = dict(line.split("=", 1) for line in msg.decode().split("\n") if "=" in line)
        if fields.get("FDSTORE") == "1" and fds:
            store[fields["FDNAME"]] = fds.pop(0)
        elif fields.get("FDSTOREREMOVE") == "1" and fields["FDNAME"] in store:
            os.close(store.pop(fields["FDNAME"]))
        for fd in fds:
            os.close(fd)
        if fields.get("READY") == "1":
            until_ready = False


def start(n):
    names = ["control"] + list(store)
    fds = [listener.fileno()] + list(store.values())
    pid = os.fork()
    if pid == 0:
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
        env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(fds)),
                   LISTEN_FDNAMES=":".join(names), NOTIFY_SOCKET=notify_path)
        os.execve(wgd, [wgd], env)
    take(until_ready=True)
    with open(f"{pid_prefix}.{n}", "w") as f:
        f.write(f"{pid}\n")
    return pid


os.waitpid(start(1), 0)
take(until_ready=False)
select.select([listener], [], [])
os.waitpid(start(2), 0)
PY
# (Python 3.9 has socket.recv_fds; meson needs Python, so it is there.)
if python3 -c 'import socket; socket.recv_fds' 2>/dev/null; then
    timeout 120 python3 "$dir/supervise.py" "$WGD" "$dir/sd.sock" "$dir/sd.notify" "$dir/sd.pid" &
    supervisor=$!
    check "a wgd as systemd runs it" -- until_true test -s "$dir/sd.pid.1"
    expect 0 "  a group with one piece outstanding" -- env WGCTL_NO_AUTOSTART=1 WGD_SOCKET="$dir/sd.sock" \
        "$WGCTL" create kept --count 1
    timeout 60 env WGCTL_NO_AUTOSTART=1 WGD_SOCKET="$dir/sd.sock" "$WGCTL" wait kept 2>"$dir/kept.err" &
    waiter=$!
    check "  a wait sleeps on it" -- until_true sleeping_on sd.sock kept
    kill -KILL "$(cat "$dir/sd.pid.1")"
    check "  wgd killed by SIGKILL: the wait asks again, which starts wgd" -- until_true test -s "$dir/sd.pid.2"
    expect 0 "  a done, on the wgd after it" -- env WGCTL_NO_AUTOSTART=1 WGD_SOCKET="$dir/sd.sock" "$WGCTL" done kept
    wait "$waiter"
    expect_status 0 $? "  the wait went on, and ends as usual"
    check "  having said nothing" -- test ! -s "$dir/kept.err"
    kill "$(cat "$dir/sd.pid.2")"
    wait "$supervisor"
else
    for i in 1 2 3 4 5 6 7; do ok "# SKIP no python3 with socket.recv_fds to play systemd"; done
fi

# --- delete, and no daemon ----------------------------------------------------------------------
expect 0 "delete" -- "$WGCTL" delete shared
expect 125 "status after delete" -- "$WGCTL" status shared
expect 125 "no daemon and no start on demand" -- env WGCTL_NO_AUTOSTART=1 WGD_SOCKET="$dir/none.sock" "$WGCTL" list
check "  says wgd cannot be reached" -- stderr_has "cannot reach wgd"
case $WGCTL in
*/wgctl/wgctl)
    expect 0 "a wgctl in its build tree, without WGCTL_WGD: starts a wgd" -- \
        env -u WGCTL_WGD WGD_SOCKET="$dir/tree.sock" "$WGCTL" list
    tree_wgd=$(pgrep -f -n -- "--socket=$dir/tree.sock")
    check "  the wgd of the same build tree" -- \
        test -n "$tree_wgd" -a "$(readlink "/proc/$tree_wgd/exe")" = "$(readlink -f "${WGCTL%/wgctl/wgctl}/wgd/wgd")"
    pkill -f -- "--socket=$dir/tree.sock"
    ;;
*)
    ok "# SKIP wgctl is not in a build tree: $WGCTL"; ok "# SKIP wgctl is not in a build tree"
    ;;
esac
# A wgd started on demand from a systemd service must not take the service's environment: it
# would send READY=1 (and its groups, FDSTORE=1) to the caller's unit, whose socket this is.
expect 0 "a wgd started under a systemd service's environment" -- \
    env NOTIFY_SOCKET="$dir/notify.sock" LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=wgd.socket \
    WATCHDOG_USEC=1000000 WATCHDOG_PID=$$ WGD_SOCKET="$dir/env.sock" "$WGCTL" list
env_wgd=$(pgrep -f -n -- "--socket=$dir/env.sock")
check "  found it" -- test -n "$env_wgd"
check "  it has none of NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*" -- \
    bash -c "! tr '\\0' '\\n' <'/proc/$env_wgd/environ' | grep -E '^(NOTIFY_SOCKET|LISTEN_PID|LISTEN_FDS|LISTEN_FDNAMES|WATCHDOG_USEC|WATCHDOG_PID)='"
check "  but the rest of the caller's environment" -- \
    bash -c "tr '\\0' '\\n' <'/proc/$env_wgd/environ' | grep -qx 'WGD_SOCKET=$dir/env.sock'"
pkill -f -- "--socket=$dir/env.sock"
# (Before, wgctl waited 5 s for a wgd that could never run: timeout(1) would make that 124.)
expect 125 "a wgd that does not exist: fails at once" -- \
    env WGCTL_WGD="$dir/no-such-wgd" WGD_SOCKET="$dir/nowgd.sock" timeout 5 "$WGCTL" list
check "  names the path, and why" -- stderr_has "cannot start wgd: $dir/no-such-wgd: No such file or directory"
expect 125 "a wgd that cannot be executed: fails at once" -- \
    env WGCTL_WGD="$dir" WGD_SOCKET="$dir/nowgd.sock" timeout 5 "$WGCTL" wait build
check "  names the path, and why" -- stderr_has "cannot start wgd: $dir: Permission denied"
expect 125 "spawn, with a wgd that does not exist: fails at once" -- \
    env WGCTL_WGD="$dir/no-such-wgd" WGD_SOCKET="$dir/nowgd.sock" timeout 5 "$WGCTL" spawn build -- true
check "  and its supervisor says why" -- stderr_has "cannot start wgd: $dir/no-such-wgd: No such file"

echo "1..$n"
[ "$failed" -eq 0 ]
