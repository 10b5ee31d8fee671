"""Settings for the benchmarks: the production settings (DEBUG off) on a throwaway VAR_DIR.

``bench.common.start`` fills the environment before this module is imported.
"""

import warnings

from smartscheduler.settings import *  # noqa: F403

# Static files are not collected for the benchmarks; whitenoise says so once per handler.
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

ROOT_URLCONF = "bench.urls"
# Provisioning logs one info line per tenant; thousands of them would drown the results.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "ERROR"},
}
# The benchmarks send thousands of requests from one address on purpose.
RATELIMIT_ENABLE = False
