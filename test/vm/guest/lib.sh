# Shell functions the guest's test scripts share (sourced by run.sh). Every check prints one line
# on the console: "SG-RESULT ok NAME" or "SG-RESULT fail NAME <last lines of its output>", and
# keeps its full output in /job/out/NAME.log for the host.
mkdir -p /job/out
failures=0

# check NAME COMMAND...: runs COMMAND, reports its outcome.
check() {
  name=$1
  shift
  if "$@" >"/job/out/$name.log" 2>&1; then
    echo "SG-RESULT ok $name"
  else
    failures=$((failures + 1))
    echo "SG-RESULT fail $name $(tail -n 8 "/job/out/$name.log" | tr '\n' '|')"
  fi
}

# The gateway's portal as the guest reaches it (set by the host in /job/env).
portal() { echo "$GATEWAY_HOST:$GATEWAY_PORT"; }

# discover_and_login SUFFIX...: SendTargets discovery, then a login to each target whose name
# ends in -SUFFIX, by the portal the guest reaches (a gateway that advertises 127.0.0.1 — no
# iscsi.advertise — is not reachable from here under that address).
discover_and_login() {
  iscsiadm -m discovery -t sendtargets -p "$(portal)" -o nonpersistent >/job/out/sendtargets.txt || return 1
  cat /job/out/sendtargets.txt
  for suffix in "$@"; do
    iqn=$(awk '{print $2}' /job/out/sendtargets.txt | grep -e "-$suffix\$") || { echo "no target -$suffix in SendTargets"; return 1; }
    iscsiadm -m node -o new -T "$iqn" -p "$(portal)" >/dev/null || return 1
    iscsiadm -m node -T "$iqn" -p "$(portal)" --login || return 1
  done
  udevless_settle
}

# Without udev, wait until every logged-in session's LUN has its device nodes.
udevless_settle() {
  for _ in $(seq 1 600); do
    missing=0
    for s in /sys/class/iscsi_session/session*; do
      ls -d "$s"/device/target*/*:*:*:*/scsi_generic/sg* >/dev/null 2>&1 || missing=1
    done
    [ "$missing" = 0 ] && return 0
    sleep 0.1
  done
  echo "device nodes did not appear"
  return 1
}

# device_of SUFFIX CLASS: the /dev node of class (scsi_generic, scsi_tape, block) of the LUN of
# the target whose name ends in -SUFFIX.
device_of() {
  for s in /sys/class/iscsi_session/session*; do
    case "$(cat "$s/targetname")" in *-"$1") ;; *) continue ;; esac
    for d in "$s"/device/target*/*:*:*:*/"$2"/*; do
      [ -e "$d" ] || continue
      name=$(basename "$d")
      case "$2" in scsi_tape) case "$name" in st[0-9]*) case "$name" in *[lma]) continue ;; esac; echo "/dev/n$name"; return 0 ;; esac ;; *) echo "/dev/$name"; return 0 ;; esac
    done
  done
  return 1
}

# tree DIR SEED FILES: a directory of FILES files of pseudo-random sizes and contents.
make_tree() {
  mkdir -p "$1/sub"
  i=0
  while [ "$i" -lt "$3" ]; do
    head -c $(((i * 7919 + $2) % 300000 + 1)) /dev/urandom >"$1/f$i"
    i=$((i + 1))
  done
  head -c 2000000 /dev/urandom >"$1/sub/big"
}

# same_tree A B: the two trees hold the same files with the same contents.
same_tree() { diff -r "$1" "$2"; }

finish() {
  echo "SG-DONE failures=$failures"
}
