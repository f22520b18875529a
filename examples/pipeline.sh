#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A shell pipeline coordinated by wgctl: jobs started from unrelated process trees (a new
# session with setsid, a nohup'd process, another shell) all join one group, and a waiter in yet
# another shell watches them finish, with a progress bar when its stderr is a terminal.
#
# Usage: examples/pipeline.sh        (wgctl from $PATH; a wgd is started on demand if none runs)
set -euo pipefail

group=pipeline-demo-$$
workdir=$(mktemp -d)
trap 'wgctl delete "$group" 2>/dev/null || true; rm -rf "$workdir"' EXIT

say() { printf '%s %s\n' "$(date +%T.%N | cut -c1-12)" "$*"; }

wgctl create "$group"
say "group $group created"

# A job: sleeps a while (its "work"), then logs that it finished and from which process.
cat >"$workdir/job" <<'JOB'
#!/bin/sh
sleep "$2"
printf '%s job %-9s finished (pid %s, session %s)\n' "$(date +%T.%N | cut -c1-12)" "$1" $$ "$(ps -o sid= $$)"
JOB
chmod +x "$workdir/job"
job() { echo "$workdir/job $1 $2 >>$workdir/log"; }

# Each job is one piece of work: 'wgctl spawn' adds it before it returns (so the waiter below
# cannot miss it), runs the command detached, and marks it done when the command ends.
setsid -w wgctl spawn "$group" -- sh -c "$(job fetch 1.0)"              # a session of its own
nohup wgctl spawn "$group" -- sh -c "$(job resize 2.5)" >/dev/null 2>&1  # immune to hangups
sh -c "wgctl spawn $group -- sh -c '$(job index 1.5)'"                  # from another shell
for i in 1 2 3; do                                                       # a little fan-out
    wgctl spawn "$group" -- sh -c "$(job "shard-$i" "0.$((i * 3))")"
done
say "6 jobs started; a waiter in another shell follows them:"

# The waiter: a separate shell, as a second terminal would be. --progress draws even when stderr
# is not a terminal (CI); on a terminal it draws a bar in place.
bash -c "wgctl wait '$group' --timeout 60s --progress"

sort "$workdir/log"
say "all jobs finished; status of the group:"
wgctl status "$group"
