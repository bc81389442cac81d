complete -c weak-modules -l basedir -d 'Work on the system rooted at DIR instead of /' -r -F
complete -c weak-modules -l dracut -d 'dracut binary for initramfs regeneration' -r -F
complete -c weak-modules -l check-initramfs-prog -d 'Run PROG (with its arguments) as `PROG KREL` instead of the built-in initramfs check' -r
complete -c weak-modules -l add-modules -d 'Read module paths from stdin and link them into every kernel they fit'
complete -c weak-modules -l remove-modules -d 'Read module paths from stdin and remove their links (re-linking another fitting build)'
complete -c weak-modules -l add-kernel -d 'Link every fitting module of the other kernels\' extra/ into KREL (default: running kernel)'
complete -c weak-modules -l remove-kernel -d 'Empty KREL\'s weak-updates/ (default: running kernel)'
complete -c weak-modules -l dry-run -d 'Change nothing; print what would be done'
complete -c weak-modules -l no-initramfs -d 'Do not regenerate initramfs images'
complete -c weak-modules -l verbose -d 'Say what is done and why'
complete -c weak-modules -l delete-modules -d 'Deprecated; has no effect'
complete -c weak-modules -l check -d 'Audit every installed kernel (or each KREL given): report links that dangle, no longer fit or are not the newest fitting build, fitting builds not linked, indexes and initramfs images owed work; change nothing. Exit 0 when all is well, 1 otherwise'
complete -c weak-modules -l sync -d 'Bring every installed kernel to the state --check expects, in one run'
complete -c weak-modules -l explain -d 'Read module paths from stdin and show, for each, a table of every installed kernel: the verdict and why, or where its link is or would be; change nothing'
complete -c weak-modules -l json -d 'Print every event of the run (verdicts with reasons, link changes, depmod, initramfs, findings, problems) as one JSON object a line on stdout; see docs/json.md'
complete -c weak-modules -s h -l help -d 'Print help (see more with \'--help\')'
