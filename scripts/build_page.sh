#!/usr/bin/env bash
# Re-vendor the verifier page's two libraries from the npm registry into api/static/vendor/.
# The vendored files are committed, so neither CI nor a node needs npm; run this only to
# update a library (bump the version below, run, review the diff, run the browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

MSGPACK_VERSION="3.1.3"        # @msgpack/msgpack, ISC licence
CANONICALIZE_VERSION="4.0.0"   # canonicalize (RFC 8785 JCS), Apache-2.0 licence

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund \
    "@msgpack/msgpack@$MSGPACK_VERSION" "canonicalize@$CANONICALIZE_VERSION")

vendor=api/static/vendor
rm -rf "$vendor/msgpack" "$vendor/canonicalize"
mkdir -p "$vendor/msgpack/utils" "$vendor/canonicalize"

src="$work/node_modules/@msgpack/msgpack"
# The ES module build, without source-map comments (the maps are not shipped).
for f in "$src"/dist.esm/*.mjs "$src"/dist.esm/utils/*.mjs; do
    rel="${f#"$src/dist.esm/"}"
    sed '/^\/\/# sourceMappingURL=/d' "$f" > "$vendor/msgpack/$rel"
done
cp "$src/LICENSE" "$vendor/msgpack/LICENSE"

src="$work/node_modules/canonicalize"
cp "$src/lib/canonicalize.js" "$vendor/canonicalize/canonicalize.js"
cp "$src/LICENSE" "$vendor/canonicalize/LICENSE"

echo "vendored @msgpack/msgpack $MSGPACK_VERSION and canonicalize $CANONICALIZE_VERSION into $vendor"
