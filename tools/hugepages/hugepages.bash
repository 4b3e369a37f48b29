# bash completion for hugepages(1)

_hugepages_sizes()
{
	local root=${1:-/sys} d kb
	for d in "$root"/kernel/mm/hugepages/hugepages-*kB; do
		[ -e "$d" ] || continue
		kb=${d##*hugepages-}
		kb=${kb%kB}
		if ((kb % 1048576 == 0)); then
			echo "$((kb / 1048576))G"
		elif ((kb % 1024 == 0)); then
			echo "$((kb / 1024))M"
		else
			echo "${kb}K"
		fi
	done
}

_hugepages()
{
	local cur prev words cword root="" cmd="" i
	# Plain COMP_WORDS, so this works without the bash-completion package.
	words=("${COMP_WORDS[@]}")
	cword=$COMP_CWORD
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}

	case $prev in
	--sysfs-root | --proc-root | --etc-root)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--size)
		for ((i = 1; i < cword; i++)); do
			[ "${words[i]}" = --sysfs-root ] && root=${words[i + 1]}
		done
		COMPREPLY=($(compgen -W "$(_hugepages_sizes "$root")" -- "$cur"))
		return
		;;
	--node)
		COMPREPLY=($(compgen -W "$(ls -d /sys/devices/system/node/node* 2>/dev/null |
			sed 's/.*node//')" -- "$cur"))
		return
		;;
	--count | --mem)
		return
		;;
	--user)
		COMPREPLY=($(compgen -u -- "$cur"))
		return
		;;
	esac

	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		info | setup | clear | mount | umount) [ -z "$cmd" ] && cmd=${words[i]} ;;
		esac
	done

	if [[ $cur == -* ]]; then
		local opts='--sysfs-root --proc-root --help'
		case $cmd in
		info) opts+=' --json' ;;
		setup) opts+=' --count --mem --size --node --persist --dry-run --etc-root' ;;
		clear) opts+=' --size --persist --dry-run --etc-root' ;;
		mount) opts+=' --size --user --etc-root --dry-run' ;;
		umount) opts+=' --dry-run' ;;
		esac
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	case $cmd in
	"") COMPREPLY=($(compgen -W 'info setup clear mount umount' -- "$cur")) ;;
	mount | umount) COMPREPLY=($(compgen -d -- "$cur")) ;;
	esac
} &&
	complete -F _hugepages hugepages
