# KTAP output for the shell suites: . /usr/lib/umw/lib/ktap.sh
#
#   ktap_plan 4
#   ktap_ok name            ktap_fail name "why"
#   ktap_skip name "why"    ktap_check name "why" command...
#   ktap_done               (exit status: 1 when a test failed)

ktap_n=0
ktap_failed=0

ktap_plan() {
	echo "KTAP version 1"
	echo "1..$1"
}

ktap_ok() {
	ktap_n=$((ktap_n + 1))
	echo "ok $ktap_n $1"
}

ktap_fail() {
	ktap_n=$((ktap_n + 1))
	ktap_failed=1
	echo "# $1: $2"
	echo "not ok $ktap_n $1"
}

ktap_skip() {
	ktap_n=$((ktap_n + 1))
	echo "ok $ktap_n $1 # SKIP $2"
}

# ktap_check NAME WHY COMMAND...: ok when COMMAND succeeds.
ktap_check() {
	name=$1
	why=$2
	shift 2
	if "$@"; then
		ktap_ok "$name"
	else
		ktap_fail "$name" "$why"
	fi
}

ktap_note() {
	echo "# $*"
}

ktap_done() {
	exit $ktap_failed
}

# Milliseconds since boot (CLOCK_MONOTONIC), from the static helper.
now_ms() {
	monotime-ms
}
