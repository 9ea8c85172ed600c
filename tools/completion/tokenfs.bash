# bash completion for tokenfs(1).
#
# Nothing here lists a command or an option by hand: the commands come from
# `tokenfs --help`, each command's options from `tokenfs CMD --help`, and
# the values an option takes from the command itself, so a new command or
# option completes as soon as its --help shows it. Values are found by
# asking: `tokenfs CMD --opt WORD --help` exits 0 only when CMD accepts WORD
# (getopt handles --opt before --help), so the candidates are the words of
# the option's description that the command accepts; an option that accepts
# any word (--token SEL) takes free text and is not completed, and neither
# is a number (--max-unpacked SIZE would offer the "1" of "default 1G", a
# one-byte cap; --lock-timeout MS its default): numbers in a description are
# quantities, not choices. Metavariables
# PATH, FILE and DIR complete file names; a SPEC (--user-pin, --so-pin,
# --new-*-pin) completes the PIN source forms env:, file:, fd:, stdin,
# prompt and pass:, then variable names after env: and file names after
# file:, also after a TOKEN= (--user-pin TOKEN=SPEC).
# Everything is asked once per shell and cached.

declare -gA _tokenfs_cache

# _tokenfs_run BIN ARGS...: the binary's output; never fails the completion.
_tokenfs_run() {
	"$@" 2>/dev/null
}

# The commands of `tokenfs --help`: the indented lines after "Commands:".
_tokenfs_commands() {
	local bin=$1 key="$1|commands"
	if [[ -z ${_tokenfs_cache[$key]+set} ]]; then
		_tokenfs_cache[$key]=$(_tokenfs_run "$bin" --help | awk '
			/^Commands:/ { on = 1; next }
			on && /^ +[a-z]/ { print $1; next }
			on { on = 0 }')
	fi
	printf '%s\n' "${_tokenfs_cache[$key]}"
}

# One line per option of `tokenfs CMD --help`: LONG, SHORT, METAVAR and
# DESCRIPTION (the option's lines joined), separated by \037: read would
# merge an empty SHORT between two tabs, which are white space to it. An
# option line is indented by 2 to 7 spaces and starts with "-x, --long" or
# "--long", the name ended by a blank, "=" or the line's end; lines indented
# by 8 or more continue it, even when they start with an option's name
# ("--min-len to --max-len ...", "--no-encrypt. RSA ...").
_tokenfs_option_table() {
	local bin=$1 cmd=$2 key="$1|$2|options"
	if [[ -z ${_tokenfs_cache[$key]+set} ]]; then
		_tokenfs_cache[$key]=$(_tokenfs_run "$bin" "$cmd" --help | awk '
			function flush() {
				if (long != "")
					printf "%s\037%s\037%s\037%s\n", long, short, meta, desc
				long = ""
			}
			# Two spaces and up to five more: mawk knows no {2,7}.
			/^   ? ? ? ? ?(-[A-Za-z], +)?--[a-z0-9][a-z0-9-]*([ =]|$)/ {
				flush()
				line = $0; sub(/^ +/, "", line); short = ""
				if (line ~ /^-[A-Za-z], /) {
					short = substr(line, 1, 2); line = substr(line, 4); sub(/^ +/, "", line)
				}
				long = line; sub(/[ =].*/, "", long)
				rest = substr(line, length(long) + 1); sub(/^[ =]+/, "", rest)
				meta = rest; sub(/ .*/, "", meta)
				if (meta ~ /^\[/ || meta ~ /^[A-Z][A-Z0-9_]*([=:|].*)?$/)
					rest = substr(rest, length(meta) + 1)
				else
					meta = ""
				desc = rest
				next
			}
			long != "" && /^        +[^ ]/ { desc = desc " " $0; next }
			{ flush() }
			END { flush() }')
	fi
	printf '%s\n' "${_tokenfs_cache[$key]}"
}

# _tokenfs_option BIN CMD OPT: the table line of OPT
# (long or short), nothing when CMD has no such option.
_tokenfs_option() {
	local long short meta desc
	while IFS=$'\037' read -r long short meta desc; do
		if [[ -n $3 && ($3 == "$long" || $3 == "$short") ]]; then
			printf '%s\037%s\037%s\037%s\n' "$long" "$short" "$meta" "$desc"
			return 0
		fi
	done < <(_tokenfs_option_table "$1" "$2")
	return 1
}

# The words CMD accepts after OPT, asked of the command; nothing for an
# option that takes any word.
_tokenfs_values() {
	local bin=$1 cmd=$2 opt=$3 desc=$4 key="$1|$2|$3|values"
	if [[ -z ${_tokenfs_cache[$key]+set} ]]; then
		local values=() w
		if ! "$bin" "$cmd" "$opt" __tokenfs_completion_probe__ --help >/dev/null 2>&1; then
			local -A seen=()
			for w in $(printf '%s\n' "$desc" | tr -c 'a-z0-9-' '\n'); do
				[[ $w == [a-z0-9]* && $w == *[a-z]* && -z ${seen[$w]+set} ]] || continue
				seen[$w]=1
				if "$bin" "$cmd" "$opt" "$w" --help >/dev/null 2>&1; then
					values+=("$w")
				fi
			done
		fi
		_tokenfs_cache[$key]=${values[*]}
	fi
	printf '%s\n' "${_tokenfs_cache[$key]}"
}

# File and directory names beginning with $1, each prefixed with $2;
# directories end in "/" and take no space after them.
_tokenfs_files() {
	local f
	while IFS= read -r f; do
		[[ -d $f ]] && f+=/
		COMPREPLY+=("$2$f")
	done < <(compgen -f -- "$1")
	if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
		compopt -o nospace 2>/dev/null
	fi
}

# A PIN SPEC beginning with $1; $2 set: the option's argument is optional,
# so a word that is no SPEC is a PATH.
_tokenfs_spec() {
	local cur=$1 optional=$2 token=''
	# TOKEN=SPEC (--user-pin, --so-pin): the SPEC after the first "=",
	# unless the word is a SPEC already (a pass: PIN may hold "=").
	case $cur in
	env:* | file:* | fd:* | pass:*) ;;
	*=*) token=${cur%%=*}= cur=${cur#*=} optional='' ;;
	esac
	case $cur in
	env:*)  mapfile -t COMPREPLY < <(compgen -P "${token}env:" -e -- "${cur#env:}") ;;
	file:*) _tokenfs_files "${cur#file:}" "${token}file:" ;;
	fd:*)   ;;
	*)
		mapfile -t COMPREPLY < <(compgen -P "$token" -W 'env: file: fd: stdin prompt pass:' -- "$cur")
		if [[ ${#COMPREPLY[@]} -eq 0 && -n $optional ]]; then
			_tokenfs_files "$cur" ''
		fi
		;;
	esac
	if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *: ]]; then
		compopt -o nospace 2>/dev/null
	fi
}

# The argument of option OPT (metavariable META, description DESC) that
# begins with CUR.
_tokenfs_argument() {
	local bin=$1 cmd=$2 opt=$3 meta=$4 desc=$5 cur=$6
	case $meta in
	*SPEC*) _tokenfs_spec "$cur" "$([[ $meta == \[*\] ]] && echo 1)" ;;
	PATH | *FILE* | *DIR*) _tokenfs_files "$cur" '' ;;
	*) mapfile -t COMPREPLY < <(compgen -W "$(_tokenfs_values "$bin" "$cmd" "$opt" "$desc")" -- "$cur") ;;
	esac
}

# COMP_WORDS as the user typed them: bash splits words at "=" and ":"
# (COMP_WORDBREAKS), which would cut --format=json and env:VAR apart.
# Sets words, cword and prefix: the current word up to its last "=" or ":"
# that is a word break. Bash replaces only the text after that, so the
# prefix is stripped from the replies.
_tokenfs_words() {
	words=() cword=0
	local i j=-1 joining=0 w
	for ((i = 0; i < ${#COMP_WORDS[@]} && i <= COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if ((j >= 0)) && [[ $w =~ ^[=:]+$ && ${COMP_WORDBREAKS-} == *"${w:0:1}"* ]]; then
			words[j]+=$w
			joining=1
		elif ((j >= 0 && joining)); then
			words[j]+=$w
			joining=0
		else
			words[++j]=$w
			joining=0
		fi
		((i == COMP_CWORD)) && cword=$j
	done
	local full=${words[cword]} ch
	prefix=
	for ((i = ${#full} - 1; i >= 0; i--)); do
		ch=${full:i:1}
		if [[ ($ch == = || $ch == :) && ${COMP_WORDBREAKS-} == *"$ch"* ]]; then
			prefix=${full:0:i+1}
			break
		fi
	done
}

_tokenfs() {
	local words cword prefix
	_tokenfs_words
	COMPREPLY=()
	local bin=${words[0]}
	[[ $bin == */* ]] || bin=$(type -P -- "$bin") || return 0
	bin=${bin/#\~/$HOME}
	[[ -x $bin ]] || return 0
	local cur=${words[cword]}

	if ((cword == 1)); then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W '--help --version' -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$(_tokenfs_commands "$bin") help" -- "$cur")
		fi
	else
		local cmd=${words[1]}
		if [[ $cmd == help ]]; then
			((cword == 2)) && mapfile -t COMPREPLY < <(compgen -W "$(_tokenfs_commands "$bin")" -- "$cur")
		elif [[ $cmd != -* ]]; then
			_tokenfs_complete_command "$bin" "$cmd" "$cur" "${words[cword - 1]}"
		fi
	fi

	if [[ -n $prefix ]]; then
		local i
		for i in "${!COMPREPLY[@]}"; do
			COMPREPLY[i]=${COMPREPLY[i]#"$prefix"}
		done
	fi
	return 0
}

# A word of `tokenfs CMD ...`: an option, an option's argument or a PATH.
_tokenfs_complete_command() {
	local bin=$1 cmd=$2 cur=$3 prev=$4 long short meta desc
	if [[ $cur == --*=* ]]; then
		if IFS=$'\037' read -r long short meta desc < <(_tokenfs_option "$bin" "$cmd" "${cur%%=*}"); then
			_tokenfs_argument "$bin" "$cmd" "$long" "$meta" "$desc" "${cur#*=}"
			local i
			for i in "${!COMPREPLY[@]}"; do
				COMPREPLY[i]=$long=${COMPREPLY[i]}
			done
		fi
		return
	fi
	if [[ $prev == -* && $prev != *=* ]] &&
		IFS=$'\037' read -r long short meta desc < <(_tokenfs_option "$bin" "$cmd" "$prev") &&
		[[ -n $meta ]]; then
		# A bare optional SPEC is only taken when the word looks like
		# one; otherwise the word is an option or a PATH.
		if [[ $meta != \[*\] || $cur != -* ]]; then
			_tokenfs_argument "$bin" "$cmd" "$long" "$meta" "$desc" "$cur"
			return
		fi
	fi
	if [[ $cur == -* ]]; then
		local opts=()
		while IFS=$'\037' read -r long short meta desc; do
			[[ -n $long ]] && opts+=("$long")
		done < <(_tokenfs_option_table "$bin" "$cmd")
		mapfile -t COMPREPLY < <(compgen -W "${opts[*]}" -- "$cur")
		return
	fi
	_tokenfs_files "$cur" ''
}

complete -F _tokenfs tokenfs
