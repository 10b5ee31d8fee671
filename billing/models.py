"""Each business's subscription state, kept in the control plane.

dj-stripe mirrors Stripe's own objects (customers, subscriptions, invoices,
events); this row is the small summary the entitlement checks read on every
booking, plus what we need to refuse stale webhook events.
"""

from __future__ import annotations

from django.db import models

from tenants.models import Tenant


class BillingAccount(models.Model):
    class Status(models.TextChoices):
        # No Stripe subscription: the plan is set by platform staff in /admin/.
        MANUAL = "manual", "Managed manually"
        INCOMPLETE = "incomplete", "Incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete (expired)"
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        UNPAID = "unpaid", "Unpaid"
        CANCELED = "canceled", "Canceled"
        PAUSED = "paused", "Paused"

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, related_name="billing_account", primary_key=True
    )
    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    # When the current subscription was created at Stripe: a late event about an
    # older subscription of the same business must not replace a newer one.
    subscription_created_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.MANUAL)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # The moment of Stripe's state this row reflects (the time we read it from
    # the API); anything observed earlier is stale and ignored.
    state_as_of = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    past_due_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name"]

    def __str__(self) -> str:
        return f"{self.tenant.slug}: {self.status}"

    @property
    def is_stripe_managed(self) -> bool:
        return bool(self.stripe_subscription_id)
