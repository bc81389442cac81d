_weak__modules() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="weak__modules"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        weak__modules)
            opts="-h --add-modules --remove-modules --add-kernel --remove-kernel --dry-run --no-initramfs --verbose --delete-modules --basedir --dracut --check-initramfs-prog --check --sync --explain --json --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --basedir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --dracut)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --check-initramfs-prog)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _weak__modules -o nosort -o bashdefault -o default weak-modules
else
    complete -F _weak__modules -o bashdefault -o default weak-modules
fi
