"""Platform console (``/admin/``): subscriptions per business, MRR by plan, failed payments.

dj-stripe registers its own mirrors (customers, subscriptions, invoices, events,
webhook triggers) on the same site; this page is the per-business summary.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from audit.services import actor_from_request
from billing.models import BillingAccount
from billing.plans import PLANS
from billing.reconcile import account_refresh
from billing.services import tenant_plan_set
from billing.stripe_api import billing_enabled
from tenants.directory import control_plane_changed
from tenants.models import Tenant

# Subscriptions that are billed each month (past due still owes the month).
BILLED_STATUSES = (BillingAccount.Status.ACTIVE, BillingAccount.Status.PAST_DUE)
FAILED_STATUSES = (BillingAccount.Status.PAST_DUE, BillingAccount.Status.UNPAID)


def mrr_by_plan(accounts: QuerySet[BillingAccount]) -> list[dict[str, Any]]:
    rows = []
    for code, spec in PLANS.items():
        count = accounts.filter(status__in=BILLED_STATUSES, tenant__plan=code).count()
        rows.append({"plan": spec.name, "subscriptions": count,
                     "mrr": spec.monthly_price * count})
    return rows


def _plan_action(code: str) -> Any:
    def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet[BillingAccount]) -> None:
        stripe_managed = 0
        for account in queryset.select_related("tenant"):
            if account.is_stripe_managed:
                # Stripe is the truth for these; a manual change would be undone.
                stripe_managed += 1
                continue
            tenant_plan_set(tenant=account.tenant, plan=code, actor=actor_from_request(request))
        if stripe_managed:
            messages.warning(request, f"{stripe_managed} business(es) pay through Stripe: "
                                      "change their plan in Stripe.")
        messages.success(request, f"Plan set to {PLANS[code].name} where billing is manual.")

    action.__name__ = f"set_plan_{code}"
    return admin.action(description=f"Set plan to {PLANS[code].name} (manual billing)")(action)


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    change_list_template = "billing/admin_change_list.html"
    list_display = ["tenant", "plan", "status", "current_period_end", "cancel_at_period_end",
                    "past_due_since", "last_synced_at"]
    list_filter = ["status", "tenant__plan", "cancel_at_period_end"]
    search_fields = ["tenant__name", "tenant__slug", "stripe_customer_id",
                     "stripe_subscription_id"]
    list_select_related = ["tenant"]
    readonly_fields = ["tenant", "stripe_customer_id", "stripe_subscription_id", "status",
                       "subscription_created_at", "current_period_end", "cancel_at_period_end",
                       "state_as_of", "last_synced_at", "past_due_since", "updated_at"]
    actions = ["refresh_from_stripe", *(_plan_action(code) for code in PLANS)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts appear with their business; the state comes from Stripe.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Plan", ordering="tenant__plan")
    def plan(self, account: BillingAccount) -> str:
        return PLANS[account.tenant.plan].name

    @admin.action(description="Refresh selected from Stripe")
    def refresh_from_stripe(self, request: HttpRequest, queryset: QuerySet[BillingAccount]) -> None:
        if not billing_enabled():
            messages.warning(request, "Stripe is not configured: billing is manual.")
            return
        for account in queryset.select_related("tenant"):
            account_refresh(account.tenant, force=True)
        messages.success(request, "Refreshed from Stripe (failures are in the log).")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Every business gets a row here, so manual plans can be set from this page too.
        BillingAccount.objects.bulk_create(
            [BillingAccount(tenant=t) for t in Tenant.objects.filter(billing_account__isnull=True)],
            ignore_conflicts=True,
        )
        control_plane_changed()  # bulk inserts send no signal
        accounts = BillingAccount.objects.all()
        mrr = mrr_by_plan(accounts)
        extra = {
            "mrr_rows": mrr,
            "mrr_total": sum((row["mrr"] for row in mrr), Decimal("0")),
            "failed_payments": accounts.filter(status__in=FAILED_STATUSES)
            .select_related("tenant")
            .order_by("past_due_since"),
            "stripe_billing": billing_enabled(),
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})
