# bash completion for devbind(1)

_devbind_devices()
{
	local root=${1:-/sys} d
	for d in "$root"/bus/pci/devices/*; do
		[ -e "$d" ] && printf '%s\n' "${d##*/}"
	done
	echo all-nvme
}

_devbind()
{
	local cur prev words cword root="" cmd="" i
	# Plain COMP_WORDS, so this works without the bash-completion package.
	words=("${COMP_WORDS[@]}")
	cword=$COMP_CWORD
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}

	case $prev in
	--sysfs-root | --proc-root | --modules-dir | --dev-root)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--timeout)
		return
		;;
	esac

	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		--sysfs-root) root=${words[i + 1]} ;;
		list | bind | unbind | restore) [ -z "$cmd" ] && cmd=${words[i]} ;;
		esac
	done

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W '--all --json --force --dry-run --timeout
			--sysfs-root --proc-root --dev-root --modules-dir --help' -- "$cur"))
		return
	fi
	case $cmd in
	"")
		COMPREPLY=($(compgen -W 'list bind unbind restore' -- "$cur"))
		;;
	bind)
		if [ "${words[cword - 1]}" = bind ]; then
			COMPREPLY=($(compgen -W 'uio_pci_generic vfio-pci nvme' -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_devbind_devices "$root")" -- "$cur"))
		fi
		;;
	unbind | restore)
		COMPREPLY=($(compgen -W "$(_devbind_devices "$root")" -- "$cur"))
		;;
	esac
} &&
	complete -F _devbind devbind
