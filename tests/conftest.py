"""Shared pytest setup: hypothesis profiles.

``dev`` (the default) keeps the suite fast; ``ci`` is the thorough one and is
chosen when the environment has ``CI=true``. Pick one by hand with
``pytest --hypothesis-profile=ci``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=800,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")
