"""A fake Stripe API: a real HTTP server on loopback speaking the subset we use.

The stripe library (and dj-stripe through it) talks to ``STRIPE_API_BASE``, so
the fake sits at the wire. It keeps customers, prices, products, checkout and
portal sessions, subscriptions and invoices in Stripe's JSON shapes (every
object with its ``object`` field) and answers what the app and dj-stripe ask:

    with FakeStripe() as fake:
        fake.api_base                      # http://127.0.0.1:<port>
        events = fake.complete_checkout(session_id)   # the events Stripe would send
        fake.set_status(sub_id, "past_due") -> event

Tests sign the events with ``stripe.WebhookSignature.generate_signature_header``
and post them to ``/stripe/webhook/``. Every request is kept in ``fake.requests``
as ``(method, path)``. Unknown paths get Stripe's ``resource_missing`` error.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-05-27.dahlia"
PRICES = {"starter": ("price_starter", 4999), "standard": ("price_standard", 9999),
          "premium": ("price_premium", 15099)}
PERIOD = 30 * 24 * 3600


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


class FakeStripe:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.account = {
            "id": "acct_fake", "object": "account", "type": "standard", "country": "US",
            "default_currency": "usd", "email": None, "created": 1_700_000_000,
            "charges_enabled": True, "payouts_enabled": True, "details_submitted": True,
            "business_profile": {"name": "Smart Scheduler", "url": None, "support_email": None},
            "settings": {"dashboard": {"display_name": "Smart Scheduler", "timezone": "Etc/UTC"},
                         "branding": {"icon": None, "logo": None, "primary_color": None,
                                      "secondary_color": None}},
            "metadata": {}, "capabilities": {}, "requirements": {},
        }
        product = self._put({"id": "prod_scheduler", "object": "product",
                             "name": "Smart Scheduler", "active": True, "type": "service",
                             "description": None, "livemode": False, "metadata": {},
                             "created": 1_700_000_000, "updated": 1_700_000_000,
                             "default_price": None, "images": [], "url": None,
                             "unit_label": None, "statement_descriptor": None})
        for code, (price_id, amount) in PRICES.items():
            self._put({"id": price_id, "object": "price", "active": True, "currency": "usd",
                       "unit_amount": amount, "unit_amount_decimal": str(amount),
                       "billing_scheme": "per_unit", "type": "recurring",
                       "recurring": {"interval": "month", "interval_count": 1,
                                     "usage_type": "licensed", "meter": None},
                       "product": product["id"], "livemode": False, "lookup_key": code,
                       "nickname": code.capitalize(), "metadata": {}, "created": 1_700_000_000,
                       "tax_behavior": "unspecified", "tiers_mode": None,
                       "transform_quantity": None})
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle -------------------------------------------------------------

    @property
    def api_base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeStripe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- state -----------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def get(self, object_id: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.objects[object_id]))

    def customer_create(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._put({
            "id": self.new_id("cus"), "object": "customer", "name": params.get("name"),
            "email": params.get("email"), "metadata": params.get("metadata", {}),
            "created": int(time.time()), "livemode": False, "currency": None, "balance": 0,
            "delinquent": False, "description": None, "default_source": None,
            "address": None, "phone": None, "shipping": None, "discount": None,
            "invoice_prefix": "FAKE", "preferred_locales": [], "tax_exempt": "none",
            "invoice_settings": {"default_payment_method": None, "custom_fields": None,
                                 "footer": None, "rendering_options": None},
        })

    def checkout_create(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = self.new_id("cs_test")
        return self._put({
            "id": session_id, "object": "checkout.session", "mode": params.get("mode"),
            "customer": params.get("customer"), "client_reference_id":
            params.get("client_reference_id"), "metadata": params.get("metadata", {}),
            "line_items_requested": params.get("line_items", []),
            "subscription_data_requested": params.get("subscription_data", {}),
            "success_url": params.get("success_url"), "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "status": "open", "payment_status": "unpaid", "subscription": None,
            "payment_intent": None, "setup_intent": None, "invoice": None,
            "livemode": False, "created": int(time.time()), "expires_at":
            int(time.time()) + 86400, "currency": "usd", "amount_total": None,
            "amount_subtotal": None, "customer_email": None, "locale": None,
            "submit_type": None, "payment_method_types": ["card"],
        })

    def portal_create(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = self.new_id("bps")
        return self._put({
            "id": session_id, "object": "billing_portal.session",
            "customer": params.get("customer"), "return_url": params.get("return_url"),
            "flow": params.get("flow_data"), "livemode": False, "created": int(time.time()),
            "url": f"https://billing.stripe.test/p/session/{session_id}",
        })

    def subscription_create(
        self, *, customer: str, plan: str, status: str = "active",
        metadata: dict[str, Any] | None = None, created: int | None = None,
    ) -> dict[str, Any]:
        now = created or int(time.time())
        sub_id = self.new_id("sub")
        price = self.objects[PRICES[plan][0]]
        with self.lock:
            return self._put({
                "id": sub_id, "object": "subscription", "customer": customer,
                "status": status, "created": now, "start_date": now,
                "billing_cycle_anchor": now, "cancel_at_period_end": False,
                "cancel_at": None, "canceled_at": None, "ended_at": None,
                "collection_method": "charge_automatically", "currency": "usd",
                "livemode": False, "metadata": metadata or {}, "latest_invoice": None,
                "default_payment_method": None, "default_source": None, "discounts": [],
                "trial_start": None, "trial_end": None, "pending_update": None,
                "description": None, "days_until_due": None, "application": None,
                "items": {"object": "list", "has_more": False, "total_count": 1,
                          "url": f"/v1/subscription_items?subscription={sub_id}",
                          "data": [{"id": self.new_id("si"), "object": "subscription_item",
                                    "created": now, "current_period_start": now,
                                    "current_period_end": now + PERIOD, "price": price,
                                    "quantity": 1, "subscription": sub_id, "metadata": {},
                                    "discounts": [], "tax_rates": []}]},
            })

    def subscription_change(self, sub_id: str, **changes: Any) -> dict[str, Any]:
        """Apply changes (``status``, ``plan``, ``cancel_at_period_end``...) and
        return the ``customer.subscription.updated`` event."""
        with self.lock:
            sub = self.objects[sub_id]
            previous: dict[str, Any] = {}
            plan = changes.pop("plan", None)
            if plan is not None:
                item = sub["items"]["data"][0]
                previous["items"] = json.loads(json.dumps(sub["items"]))
                item["price"] = self.objects[PRICES[plan][0]]
            for key, value in changes.items():
                previous[key] = sub.get(key)
                sub[key] = value
            event_type = "customer.subscription.updated"
            if sub["status"] == "canceled":
                sub["ended_at"] = sub["canceled_at"] = int(time.time())
                event_type = "customer.subscription.deleted"
        return self.event(event_type, self.get(sub_id), previous_attributes=previous)

    def invoice_for(self, sub_id: str, *, paid: bool) -> dict[str, Any]:
        sub = self.get(sub_id)
        item = sub["items"]["data"][0]
        invoice_id = self.new_id("in")
        amount = item["price"]["unit_amount"]
        with self.lock:
            invoice = self._put({
                "id": invoice_id, "object": "invoice", "customer": sub["customer"],
                "status": "paid" if paid else "open", "paid": paid,
                "amount_due": amount, "amount_paid": amount if paid else 0,
                "amount_remaining": 0 if paid else amount, "attempt_count": 1,
                "attempted": True, "billing_reason": "subscription_cycle",
                "collection_method": "charge_automatically", "currency": "usd",
                "created": int(time.time()), "livemode": False, "metadata": {},
                "number": f"FAKE-{invoice_id[-6:]}", "period_start": item["current_period_start"],
                "period_end": item["current_period_end"], "subtotal": amount, "total": amount,
                "next_payment_attempt": None if paid else int(time.time()) + 3 * 86400,
                "parent": {"type": "subscription_details", "quote_details": None,
                           "subscription_details": {"subscription": sub_id,
                                                    "metadata": sub["metadata"]}},
                "lines": {"object": "list", "data": [], "has_more": False,
                          "url": f"/v1/invoices/{invoice_id}/lines"},
                "discounts": [], "default_payment_method": None, "description": None,
                "hosted_invoice_url": None, "invoice_pdf": None, "status_transitions": {},
                "customer_email": None, "customer_name": None, "auto_advance": not paid,
                "effective_at": int(time.time()), "total_discount_amounts": [],
                "total_taxes": [], "starting_balance": 0, "ending_balance": 0,
            })
            self.objects[sub_id]["latest_invoice"] = invoice_id
        return invoice

    def complete_checkout(self, session_id: str) -> list[dict[str, Any]]:
        """The customer paid: the subscription exists; Stripe's three events."""
        session = self.get(session_id)
        price_id = session["line_items_requested"][0]["price"]
        plan = next(code for code, (pid, _) in PRICES.items() if pid == price_id)
        sub = self.subscription_create(
            customer=session["customer"], plan=plan,
            metadata=session["subscription_data_requested"].get("metadata", {}),
        )
        invoice = self.invoice_for(sub["id"], paid=True)
        with self.lock:
            stored = self.objects[session_id]
            stored.update(status="complete", payment_status="paid", subscription=sub["id"],
                          invoice=invoice["id"], url=None)
        return [
            self.event("customer.subscription.created", self.get(sub["id"])),
            self.event("invoice.paid", self.get(invoice["id"])),
            self.event("checkout.session.completed", self.get(session_id)),
        ]

    def event(self, event_type: str, obj: dict[str, Any],
              previous_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"object": obj}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        with self.lock:
            event = self._put({
                "id": self.new_id("evt"), "object": "event", "api_version": API_VERSION,
                "created": int(time.time()), "data": data, "livemode": False,
                "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            })
        return json.loads(json.dumps(event))

    # -- HTTP ------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
        parts = [p for p in path.split("/") if p][1:]  # drop "v1"
        if method == "GET" and parts == ["account"]:
            return 200, self.account
        if method == "POST" and parts == ["customers"]:
            with self.lock:
                return 200, self.customer_create(params)
        if method == "POST" and parts == ["checkout", "sessions"]:
            with self.lock:
                return 200, self.checkout_create(params)
        if method == "POST" and parts == ["billing_portal", "sessions"]:
            with self.lock:
                return 200, self.portal_create(params)
        if method == "GET" and parts and parts[-1] in self.objects:
            obj = self.get(parts[-1])
            expected = {"customers": "customer", "subscriptions": "subscription",
                        "invoices": "invoice", "prices": "price", "products": "product",
                        "events": "event", "sessions": "checkout.session"}.get(parts[-2])
            if expected == obj["object"]:
                return 200, obj
        return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                               "message": f"No such object: {path}"}}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = _nest(parse_qsl(body or url.query, keep_blank_values=True))
        status, payload = self.fake.handle(method, url.path, params)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_fake")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")
