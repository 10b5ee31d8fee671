"""Run every benchmark, one process each (each sets up its own throwaway VAR_DIR)."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("bench.request_overhead", "bench.provisioning", "bench.migrate_tenants",
              "bench.availability", "bench.booking_cost", "bench.booking_http",
              "bench.chat_load")


def main() -> None:
    failed = []
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        if subprocess.run([sys.executable, "-m", module], check=False).returncode != 0:
            failed.append(module)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
