# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bash completion for wgctl(1): the verbs, each verb's options, group names, and after the "--"
# of run and spawn, the command as bash would complete it. Installed as completions/wgctl, which
# bash-completion loads the first time wgctl is completed; it also works sourced on its own.
#
# Group names come from "wgctl list" (the first column, under the header), asked of the wgd that
# is already running: completing never starts one. Durations and counts are not completed.

# _wgctl_groups WGCTL: the groups the caller may read, one per line.
_wgctl_groups() {
        WGCTL_NO_AUTOSTART=1 "$1" list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_wgctl() {
        local cur prev words cword split=false
        local verb='' verb_at=0 dashdash=0 n=0 i cmd opts=''

        if declare -F _init_completion >/dev/null; then
                _init_completion -s || return
        else
                # Without bash-completion: the words as bash split them.
                words=("${COMP_WORDS[@]}")
                cword=$COMP_CWORD
                cur=${words[cword]}
                prev=${words[cword - 1]}
        fi

        # The verb is the first word that is not an option; for run and spawn, what follows
        # "--" is the command.
        for ((i = 1; i < cword; i++)); do
                if [[ -z $verb ]]; then
                        if [[ ${words[i]} != -* ]]; then
                                verb=${words[i]}
                                verb_at=$i
                        fi
                elif [[ ${words[i]} == -- && ($verb == run || $verb == spawn) ]]; then
                        dashdash=1
                        break
                fi
        done

        if ((dashdash)); then
                # COMP_WORDS, not words: _command_offset counts in the former.
                for ((i = 1; i < COMP_CWORD; i++)); do
                        [[ ${COMP_WORDS[i]} == -- ]] && break
                done
                if declare -F _command_offset >/dev/null; then
                        _command_offset $((i + 1))
                elif ((COMP_CWORD == i + 1)); then
                        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                fi
                return
        fi

        if [[ -z $verb ]]; then
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W '--help --version' -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W 'create add done wait run spawn status list delete reset' -- "$cur")
                fi
                return
        fi

        # An option's value.
        case $prev in
        --mode)
                mapfile -t COMPREPLY < <(compgen -W '0600 0640 0644 0660 0666' -- "$cur")
                return
                ;;
        --on-abandon)
                mapfile -t COMPREPLY < <(compgen -W 'done break' -- "$cur")
                return
                ;;
        --count | --timeout)
                return
                ;;
        esac
        if $split; then
                return
        fi

        # How many arguments the verb has before this one, leaving out options and their values.
        for ((i = verb_at + 1; i < cword; i++)); do
                case ${words[i]} in
                --count | --mode | --on-abandon | --timeout) i=$((i + 1)) ;;
                -*) ;;
                *) n=$((n + 1)) ;;
                esac
        done

        case $verb in
        create) opts='--count --mode --exist-ok --on-abandon' ;;
        wait) opts='--timeout --progress --quiet' ;;
        status | list) opts='--json' ;;
        run | spawn) ((n >= 1)) && opts='--' ;;
        add | done | delete | reset) ;;
        *) return ;;
        esac

        if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$opts --help" -- "$cur")
                return
        fi

        # The group's name: the first argument of every verb but create (a new name) and list.
        if ((n == 0)) && [[ $verb != create && $verb != list ]]; then
                cmd=${words[0]/#\~/$HOME}
                mapfile -t COMPREPLY < <(compgen -W "$(_wgctl_groups "$cmd")" -- "$cur")
        elif ((n == 1)) && [[ $verb == run || $verb == spawn ]]; then
                mapfile -t COMPREPLY < <(compgen -W '--' -- "$cur")
        fi
}

complete -F _wgctl wgctl
