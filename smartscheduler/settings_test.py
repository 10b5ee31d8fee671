"""Settings for the test suite: production settings with a throwaway secret.

Tests run with DEBUG off (pytest-django forces it), so they exercise the same
code paths as production; only the secret and hosts are filled in here.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-" + "k9Xq2v7Lm4Rt8Wz1Ys6Pd3Nf5Hb0Jc" * 2)
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="ss-test-var-"))
os.environ.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="ss-test-static-"))

from smartscheduler.settings import *  # noqa: F403
from smartscheduler.settings import PASSWORD_HASHERS as _HASHERS

# Argon2 stays first (tests check the stored hash), but cheaper parameters would
# need a custom hasher; Argon2's defaults cost ~50 ms, acceptable for the suite.
PASSWORD_HASHERS = _HASHERS
SESSION_COOKIE_SECURE = True

# dj-stripe's long migration history costs every test process minutes of
# migration-state rendering; its tables are created straight from its models.
MIGRATION_MODULES = {"djstripe": None}
