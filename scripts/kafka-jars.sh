#!/usr/bin/env bash
# Fetches Apache Kafka (the version pinned in deploy/kafka/pom.xml) and its runtime dependencies
# from Maven Central into a cache reused between runs on this machine, and prints the folder
# holding the jars (one line on standard output; nothing else when all went well).
#
#   cache: ${KAFKA_TIER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tellonce/kafka}/<version>/
#
# (Not TELLONCE_*: tellonce refuses variables of its prefix that name no setting.)
# Idempotent: a complete cache (marked by .complete, which records the pom's checksum) is used
# as it is, without Maven. Otherwise Maven copies the jars into a temporary folder that takes
# the cache's place only once complete, under a lock, so concurrent callers never see half a
# cache. Bounded: Maven gets KAFKA_TIER_FETCH_TIMEOUT_S seconds (default 600). Only the test
# suite and CI call this: the product never downloads anything at run time.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pom="$root/deploy/kafka/pom.xml"
log() { printf 'kafka-jars: %s\n' "$*" >&2; }

for tool in java mvn flock sha256sum; do
  command -v "$tool" >/dev/null || { log "$tool is not installed (Java 17 and Maven are needed)"; exit 3; }
done

version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)"
[ -n "$version" ] || { log "no <kafka.version> in $pom"; exit 3; }
base="${KAFKA_TIER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tellonce/kafka}"
cache="$base/$version"
stamp="$(sha256sum "$pom" | cut -d' ' -f1)"

complete() { [ -f "$cache/.complete" ] && [ "$(cat "$cache/.complete")" = "$stamp" ]; }

if complete; then
  echo "$cache"
  exit 0
fi

mkdir -p "$base"
exec 9>"$base/.lock"
flock -w "${KAFKA_TIER_FETCH_TIMEOUT_S:-600}" 9 || { log "another fetch holds $base/.lock"; exit 1; }
if complete; then  # another caller finished it while this one waited for the lock
  echo "$cache"
  exit 0
fi

work="$(mktemp -d "$base/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "fetching Apache Kafka $version and its dependencies from Maven Central (once per machine)"
if ! timeout "${KAFKA_TIER_FETCH_TIMEOUT_S:-600}" mvn -q -B -f "$pom" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/jars" \
    >"$work/maven.log" 2>&1; then
  log "Maven could not fetch the jars; its last lines:"
  tail -n 30 "$work/maven.log" >&2
  exit 1
fi
ls "$work/jars/kafka_2.13-$version.jar" >/dev/null 2>&1 \
  || { log "Maven finished but kafka_2.13-$version.jar is missing"; exit 1; }
echo "$stamp" >"$work/jars/.complete"
rm -rf "$cache"
mv "$work/jars" "$cache"
echo "$cache"
