#!/bin/sh
# A tiny custom executor driver that proves the harness: a "container" is a
# directory under $FAKE_ROOT (from the runner's own environment), a script
# runs on the host with `env -i`. The job variable FAKE_MODE picks a
# misbehaviour.
set -eu
cmd=$1
shift
name="fake-${CUSTOM_ENV_CI_RUNNER_ID}-${CUSTOM_ENV_CI_PROJECT_ID}-${CUSTOM_ENV_CI_CONCURRENT_PROJECT_ID}-${CUSTOM_ENV_CI_JOB_ID}"
box="$FAKE_ROOT/$name"
mode="${CUSTOM_ENV_FAKE_MODE:-}"
echo "$cmd $*" >>"$FAKE_ROOT/calls.log"

case "$cmd" in
config)
	if [ "$mode" = config_fail ]; then
		echo "config: broken" >&2
		exit "$SYSTEM_FAILURE_EXIT_CODE"
	fi
	printf '{"builds_dir":"%s/builds","cache_dir":"%s/cache","builds_dir_is_shared":false,"hostname":"%s","driver":{"name":"fake","version":"0.0.1"},"shell":"bash","job_env":{"FAKE_JOB_ENV":"%s"}}\n' \
		"$box" "$box" "$name" "$name"
	;;
prepare)
	n=$(cat "$FAKE_ROOT/prepare.count" 2>/dev/null || echo 0)
	n=$((n + 1))
	echo "$n" >"$FAKE_ROOT/prepare.count"
	case "$mode" in
	prepare_fail_once) if [ "$n" -le 1 ]; then echo "prepare: transient" >&2; exit "$SYSTEM_FAILURE_EXIT_CODE"; fi ;;
	prepare_fail) echo "prepare: broken" >&2; exit "$SYSTEM_FAILURE_EXIT_CODE" ;;
	prepare_build_fail) exit "$BUILD_FAILURE_EXIT_CODE" ;;
	prepare_leak) sleep 5 & ;; # a "monitor" that keeps prepare's stdout open
	prepare_detached) sleep 5 </dev/null >/dev/null 2>&1 & ;; # the same, done right
	esac
	mkdir -p "$box/builds" "$box/cache"
	echo "$PPID" >"$box/runner.pid" # the runner that owns the job
	echo "prepared $name with FAKE_JOB_ENV=$FAKE_JOB_ENV"
	;;
run)
	script=$1 stage=$2
	if [ ! -d "$box" ]; then
		echo "$name: not prepared" >&2
		exit "$SYSTEM_FAILURE_EXIT_CODE"
	fi
	if [ "$mode" = "run_exit_$stage" ]; then exit 42; fi
	mkdir -p "$box/scripts"
	echo "$$" >"$box/run.pid" # this call's process group
	cp "$script" "$box/scripts/$stage"
	code=0
	env -i PATH="$PATH" HOME="$box" "$box/scripts/$stage" || code=$?
	if [ "$code" -ne 0 ]; then
		echo "$code" >"$BUILD_EXIT_CODE_FILE"
		exit "$BUILD_FAILURE_EXIT_CODE"
	fi
	;;
cleanup)
	case "$mode" in
	cleanup_hang) sleep 30 ;;
	cleanup_stubborn) trap '' TERM; sleep 30 ;;
	esac
	rm -rf "$box"
	;;
*)
	echo "unknown command $cmd" >&2
	exit "$SYSTEM_FAILURE_EXIT_CODE"
	;;
esac
