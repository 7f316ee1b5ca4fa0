#!/bin/bash
# bench/durability.sh BIN: fsync/syncfs counts and wall time of a redeploy
# (the release already unpacked, 20 config files, 2 copies). NOSTRACE=1: time only.
# VERSIONS="1 2 …": the redeploys to run. Bounded: each command is one deploy.
set -e
[ -x "$1" ] || { echo "usage: bash bench/durability.sh PATH-TO-UPKEEP" >&2; exit 2; }
BIN=$1
W=$(mktemp -d /tmp/relfs.XXXX); trap 'rm -rf "$W"' EXIT
R=$W/root; H=$W/home; mkdir -p $R $H
mkdir -p $R/etc/upkeep
cat > $R/etc/upkeep/policy.toml <<P
[overlay]
allow = ["etc/"]
[images]
allow_root = true
P
$BIN --root $R --home $H provision >/dev/null 2>&1 || true
for v in 1 2; do
  d=$W/img$v/www-b; mkdir -p $d/config/etc/bench
  printf 'version = "%s"\ncommand = ["/bin/sleep", "1000"]\ncopy = ["etc/bench/c1.conf", "etc/bench/c2.conf"]\n' $v > $d/service.toml
  for i in $(seq 20); do echo "v$v $i" > $d/config/etc/bench/c$i.conf; done
  $BIN --root $R --home $H image add $d >/dev/null
  $BIN --root $R --home $H deploy www-b@$v --keep 3 >/dev/null 2>&1
done
for v in ${VERSIONS:-1 2 1 2 1 2}; do
  s=$(date +%s%N)
  if [ -n "$NOSTRACE" ]; then $BIN --root $R --home $H deploy www-b@$v --keep 3 >/dev/null 2>&1; else strace -f -qq -c -e trace=fsync,fdatasync,syncfs -o $W/c $BIN --root $R --home $H deploy www-b@$v --keep 3 >/dev/null 2>&1; fi
  e=$(date +%s%N)
  echo "$v: $(( (e-s)/1000000 )) ms"; [ -n "$NOSTRACE" ] || awk '/fsync|syncfs/ {printf "%s=%s\n", $NF, $4}' $W/c
done
