#!/usr/bin/env bash
# ci/demo.sh: what quiesce catches. Installs what it needs, builds the dev
# preset and runs quiesce-demo (tools/demo), which walks through the example
# suites. Its exit status is this script's.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev

# Found by name, so the demo may sit anywhere under build/dev/tools.
demo=$(find build/dev/tools -name quiesce-demo -type f -perm -u+x 2>/dev/null | head -n 1)
if [ -z "$demo" ]; then
	echo "ci/demo.sh: quiesce-demo was not built (see build/dev)" >&2
	exit 1
fi
exec "$demo" "$@"
