# The booking tests' businesses and frozen clock; the billing tests' fake Stripe.
from tests.billing.conftest import fake_stripe  # noqa: F401
from tests.booking.conftest import frozen, make_shop  # noqa: F401
