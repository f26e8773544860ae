#!/bin/sh
# A stand-in for udocker, for faas-supervisor's Lambda zip-runtime path (the only one of its
# paths that hands a timed-out run to Batch).  faas-supervisor runs "$UDOCKER_EXEC images",
# "ps", "setup" and then "--quiet run -v ... --env K=V ... --entrypoint=/bin/sh SCRIPT NAME";
# this answers the first ones and turns the last into "exec /bin/sh SCRIPT" with the
# variables exported: no image, no proot, no udocker Python process (the cheapest possible
# udocker, so the comparison favours faas-supervisor).
[ "$1" = "--quiet" ] && shift
command=$1
shift
case "$command" in
  images) echo "REPOSITORY"; echo "${FAKE_UDOCKER_IMAGE:-bench-plain}"; exit 0 ;;
  ps) echo "CONTAINER ID"; echo "udocker_container"; exit 0 ;;
  create|setup|load|pull) exit 0 ;;
  run) ;;
  *) echo "fake udocker: unsupported command $command" >&2; exit 64 ;;
esac
entrypoint=""
while [ $# -gt 1 ]; do
  case "$1" in
    -v) shift 2 ;;
    --env) export "$2"; shift 2 ;;
    --entrypoint=*) entrypoint=${1#--entrypoint=}; shift ;;
    *) shift ;;
  esac
done
[ -n "$entrypoint" ] || { echo "fake udocker: no entrypoint" >&2; exit 64; }
# shellcheck disable=SC2086  # "/bin/sh /path/script": split on purpose
exec $entrypoint
