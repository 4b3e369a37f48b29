# bash completion for devbind(1)

_devbind_devices()
{
	local root=${1:-/sys} d
	for d in "$root"/bus/pci/devices/*; do
		[ -e "$d" ] && printf '%s\n' "${d##*/}"
	done
	echo all-nvme
}

# The words of the line up to the cursor, split at blanks only. COMP_WORDS
# is also split at COMP_WORDBREAKS, which holds ':' by default, so a PCI
# address arrives there in pieces ("0000" ":" "00" ":" "0").
_devbind_words()
{
	local line=${COMP_LINE:0:COMP_POINT}

	read -ra words <<<"$line"
	[[ ${#words[@]} -eq 0 || $line == *[[:blank:]] ]] && words+=("")
	cword=$((${#words[@]} - 1))
}

# Bash replaces only the text after the last word break: drop what comes
# before the last ':' of cur from each candidate.
_devbind_colon_trim()
{
	local pre i

	[[ $cur == *:* && $COMP_WORDBREAKS == *:* ]] || return
	pre=${cur%"${cur##*:}"}
	for i in "${!COMPREPLY[@]}"; do
		COMPREPLY[i]=${COMPREPLY[i]#"$pre"}
	done
}

_devbind()
{
	local cur prev words cword root="" cmd="" i
	# Own word splitting, so this works without the bash-completion package.
	_devbind_words
	cur=${words[cword]}
	prev=${words[cword - 1]}

	case $prev in
	--sysfs-root | --proc-root | --modules-dir | --dev-root | --etc-root)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--timeout)
		return
		;;
	--user)
		COMPREPLY=($(compgen -u -- "$cur"))
		return
		;;
	--allow | --deny)
		for ((i = 1; i < cword; i++)); do
			[ "${words[i]}" = --sysfs-root ] && root=${words[i + 1]}
		done
		COMPREPLY=($(compgen -W "$(_devbind_devices "$root" | grep -v all-nvme)" -- "$cur"))
		_devbind_colon_trim
		return
		;;
	esac

	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		--sysfs-root) root=${words[i + 1]} ;;
		list | status | bind | unbind | restore | persist | unpersist | list-persisted | noiommu)
			[ -z "$cmd" ] && cmd=${words[i]}
			;;
		esac
	done

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W '--all --json --force --dry-run --timeout --user
			--noiommu --allow --deny --sysfs-root --proc-root --dev-root --etc-root
			--modules-dir --help' -- "$cur"))
		return
	fi
	case $cmd in
	"")
		COMPREPLY=($(compgen -W 'list status bind unbind restore persist unpersist
			list-persisted noiommu' -- "$cur"))
		;;
	noiommu)
		[ "${words[cword - 1]}" = noiommu ] && COMPREPLY=($(compgen -W 'on off' -- "$cur"))
		;;
	bind | persist)
		if [ "${words[cword - 1]}" = "$cmd" ]; then
			COMPREPLY=($(compgen -W 'uio_pci_generic vfio-pci nvme' -- "$cur"))
		elif [ "${words[cword - 2]}" = --user ] && [ "${words[cword - 3]}" = "$cmd" ]; then
			COMPREPLY=($(compgen -W 'uio_pci_generic vfio-pci' -- "$cur"))
		elif [ "${words[cword - 1]}" = --noiommu ] && [ "${words[cword - 2]}" = "$cmd" ]; then
			COMPREPLY=($(compgen -W 'vfio-pci' -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_devbind_devices "$root")" -- "$cur"))
		fi
		;;
	unbind | restore)
		COMPREPLY=($(compgen -W "$(_devbind_devices "$root")" -- "$cur"))
		;;
	unpersist)
		COMPREPLY=($(compgen -W "all $(_devbind_devices "$root" | grep -v all-nvme)" -- "$cur"))
		;;
	esac
	_devbind_colon_trim
} &&
	complete -F _devbind devbind
