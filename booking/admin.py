"""The business's setup and appointments in the owners' dashboard (``/dashboard/``).

Setup (services, staff and their hours, closures, policy) is edited as plain
model admins. Appointments are never saved by the admin: booking, cancelling,
moving and recording the outcome go through ``booking.services`` like every
other channel, and a refusal (slot taken, outside hours...) comes back as an
error message on the page.

The dashboard site runs every view in the business's time zone, so the times
shown and typed here are the business's wall-clock times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from audit.services import actor_from_request, audit_record, field_change
from booking import billing_views  # noqa: F401  (registers the plan page)
from booking.dashboard_views import (
    AppointmentBookForm,
    AppointmentRescheduleForm,
    calendar_feeds_view,
    calendar_view,
    feed_url,
)
from booking.errors import BookingError, InvalidInput
from booking.models import (
    Appointment,
    BusinessProfile,
    Closure,
    Customer,
    Notification,
    Service,
    StaffMember,
    WaitlistEntry,
    Weekday,
    WorkingHours,
)
from booking.selectors import business_zone
from booking.services import (
    appointment_book,
    appointment_cancel,
    appointment_complete,
    appointment_mark_no_show,
    appointment_reschedule,
    customer_details_clean,
)
from booking.waitlist import waitlist_remove
from tenants.dashboard import TenantModelAdmin, dashboard_allows, dashboard_site, request_tenant

dashboard_site.register_view("calendar/", calendar_view, name="calendar", label="Calendar")
dashboard_site.register_view(
    "calendar/feeds/", calendar_feeds_view, name="calendar_feeds", label="Calendar feeds"
)


def local_time(value: datetime | None) -> str:
    """A stored UTC instant as the business's wall-clock time (the view runs in its zone)."""
    if value is None:
        return "—"
    moment = timezone.localtime(value)
    return f"{moment:%a %d %b %Y %H:%M} {moment.tzname()}"


class BookingModelAdmin(TenantModelAdmin):
    change_form_template = "dashboard/booking/change_form.html"

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Ids repeat across business databases: an id that is not in this
            # one is simply not found (Django would redirect with a notice).
            raise Http404
        return obj


class ReadOnlyModelAdmin(BookingModelAdmin):
    """Rows written by the booking engine and the messaging system, shown as they are."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- setup ----------------------------------------------------------------------------


@admin.register(Service, site=dashboard_site)
class ServiceAdmin(BookingModelAdmin):
    list_display = [
        "name", "duration_minutes", "price", "buffer_before_minutes", "buffer_after_minutes",
        "active", "position",
    ]
    list_editable = ["active", "position"]
    list_filter = ["active"]
    search_fields = ["name"]
    ordering = ["position", "name"]
    fields = [
        "name", "description", "duration_minutes", "price",
        "buffer_before_minutes", "buffer_after_minutes", "active", "position",
    ]


OVERLAP_MESSAGE = "These hours overlap other hours of the same day."


class WorkingHoursFormSet(BaseInlineFormSet):
    """Checks the hours as submitted, which is what will be saved.

    The model's own overlap check compares a row with the rows as they are in
    the database, which this very form may be changing (splitting 09:00-17:00
    into 09:00-12:00 and 13:00-17:00 would be refused), so that check is
    replaced by one over the submitted set.
    """

    def clean(self) -> None:
        super().clean()
        kept: dict[int, list[tuple[Any, Any]]] = {}
        for form in self.forms:
            form_errors = form.errors.get("__all__")
            if form_errors is not None and OVERLAP_MESSAGE in form_errors:
                remaining = [str(e) for e in form_errors if str(e) != OVERLAP_MESSAGE]
                if remaining:
                    form.errors["__all__"] = form.error_class(remaining)
                else:
                    del form.errors["__all__"]
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or form.errors:
                continue
            weekday, start, end = data.get("weekday"), data.get("start"), data.get("end")
            if weekday is None or start is None or end is None:
                continue
            for other_start, other_end in kept.get(weekday, []):
                if start < other_end and other_start < end:
                    form.add_error(
                        None,
                        f"{Weekday(weekday).label} {start:%H:%M}-{end:%H:%M} overlaps "
                        f"{other_start:%H:%M}-{other_end:%H:%M} on the same day.",
                    )
                    break
            else:
                kept.setdefault(weekday, []).append((start, end))


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    formset = WorkingHoursFormSet
    fields = ["weekday", "start", "end"]
    # A plain time input: the admin's clock widget offers "now" in the browser's
    # zone, which means nothing for a weekly wall-clock time.
    formfield_overrides = {
        models.TimeField: {"widget": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")},
    }
    extra = 1
    verbose_name = "working hours"
    verbose_name_plural = "working hours (local time; several a day, the gaps are breaks)"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return dashboard_allows(request, "view")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return dashboard_allows(request, "change")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return dashboard_allows(request, "change")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return dashboard_allows(request, "change")


@admin.register(StaffMember, site=dashboard_site)
class StaffMemberAdmin(BookingModelAdmin):
    list_display = ["name", "active", "offers", "weekly_hours"]
    list_filter = ["active", "services"]
    search_fields = ["name"]
    fields = ["name", "active", "services", "calendar_feed"]
    readonly_fields = ["calendar_feed"]
    inlines = [WorkingHoursInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[StaffMember]:
        return super().get_queryset(request).prefetch_related("services", "hours")

    def formfield_for_manytomany(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelMultipleChoiceField | None:
        if db_field.name == "services":
            kwargs["widget"] = forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="services")
    def offers(self, obj: StaffMember) -> str:
        return ", ".join(s.name for s in obj.services.all()) or "—"

    @admin.display(description="hours")
    def weekly_hours(self, obj: StaffMember) -> str:
        days: dict[int, list[str]] = {}
        for h in sorted(obj.hours.all(), key=lambda h: (h.weekday, h.start)):
            days.setdefault(h.weekday, []).append(f"{h.start:%H:%M}-{h.end:%H:%M}")
        return "; ".join(
            f"{Weekday(day).label[:3]} {', '.join(spans)}" for day, spans in days.items()
        ) or "No hours"

    @admin.display(description="calendar feed")
    def calendar_feed(self, obj: StaffMember) -> str:
        if obj.pk is None:
            return "Available once saved."
        manage = reverse(f"{dashboard_site.name}:calendar_feeds")
        if not obj.calendar_token:
            return format_html('Off. <a href="{}">Turn it on</a>', manage)
        return format_html(
            '<code>{}</code> <a href="{}">Regenerate or turn off</a>', feed_url(obj.calendar_token),
            manage,
        )


@admin.register(Closure, site=dashboard_site)
class ClosureAdmin(BookingModelAdmin):
    list_display = ["reason_or_closed", "local_start", "local_end", "who"]
    list_filter = ["staff"]
    date_hierarchy = "start"
    fields = ["start", "end", "staff", "reason"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if formfield is not None and db_field.name in {"start", "end"}:
            formfield.help_text = f"Local time ({timezone.get_current_timezone_name()})."
        return formfield

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> Any:
        if db_field.name == "staff":
            kwargs["empty_label"] = "Whole business"
            kwargs["help_text"] = "Leave on “Whole business” to close for everyone."
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="reason", ordering="reason")
    def reason_or_closed(self, obj: Closure) -> str:
        return obj.reason or "Closed"

    @admin.display(description="from", ordering="start")
    def local_start(self, obj: Closure) -> str:
        return local_time(obj.start)

    @admin.display(description="until", ordering="end")
    def local_end(self, obj: Closure) -> str:
        return local_time(obj.end)

    @admin.display(description="closed for", ordering="staff__name")
    def who(self, obj: Closure) -> str:
        return obj.staff.name if obj.staff is not None else "Whole business"


class BusinessProfileForm(forms.ModelForm):
    class Meta:
        model = BusinessProfile
        fields = [
            "display_name", "address", "phone", "email",
            "slot_step_minutes", "min_notice_minutes", "max_days_ahead",
            "cancellation_notice_minutes", "reminder_offsets_minutes", "waitlist_hold_minutes",
        ]
        help_texts = {
            "display_name": "The name customers see on the booking page and in messages.",
            "slot_step_minutes": "Appointments start every this many minutes (e.g. 15: 9:00, "
                                 "9:15, 9:30...).",
            "min_notice_minutes": "How long ahead customers must book online; 60 means nobody "
                                  "books a slot starting within the hour.",
            "max_days_ahead": "How many days ahead customers may book (the booking window).",
            "cancellation_notice_minutes": "Customers may cancel or move an appointment online "
                                           "until this long before it starts; you always can.",
            "reminder_offsets_minutes": "When reminders go out, in minutes before the "
                                        "appointment: [1440, 120] is a day and two hours "
                                        "ahead; [] sends none.",
            "waitlist_hold_minutes": "How long a freed slot is held for the waitlist customer "
                                     "it was offered to.",
        }

    def clean_reminder_offsets_minutes(self) -> list[int]:
        offsets = self.cleaned_data["reminder_offsets_minutes"]
        if not isinstance(offsets, list) or not all(
            isinstance(o, int) and not isinstance(o, bool) for o in offsets
        ):
            raise ValidationError("Give a list of whole numbers of minutes, e.g. [1440, 120].")
        if len(offsets) > 5:
            raise ValidationError("At most five reminders.")
        if any(not 1 <= o <= 60 * 24 * 30 for o in offsets):
            raise ValidationError("Each reminder must be between 1 minute and 30 days ahead.")
        return sorted(set(offsets), reverse=True)


@admin.register(BusinessProfile, site=dashboard_site)
class BusinessProfileAdmin(BookingModelAdmin):
    form = BusinessProfileForm
    list_display = ["display_name", "phone", "email", "timezone", "updated_at"]
    fieldsets = [
        (None, {"fields": ["display_name", "address", "phone", "email", "timezone"]}),
        (
            "Booking policy",
            {
                "fields": [
                    "slot_step_minutes",
                    "min_notice_minutes",
                    "max_days_ahead",
                    "cancellation_notice_minutes",
                    "reminder_offsets_minutes",
                    "waitlist_hold_minutes",
                ]
            },
        ),
    ]
    # Mirrors the business's zone on the control plane, which owns it.
    readonly_fields = ["timezone"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One profile per business database.
        return super().has_add_permission(request) and not BusinessProfile.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tenant = request_tenant(request)
        if tenant is not None:
            initial.setdefault("display_name", tenant.name)
        return initial

    def save_model(
        self, request: HttpRequest, obj: BusinessProfile, form: Any, change: bool
    ) -> None:
        tenant = request_tenant(request)
        if not change and tenant is not None:
            obj.timezone = tenant.timezone
        super().save_model(request, obj, form, change)


# --- customers ------------------------------------------------------------------------


@admin.register(Customer, site=dashboard_site)
class CustomerAdmin(BookingModelAdmin):
    """Customers are created by bookings; the dashboard may correct a name or email."""

    # The activity log names a customer by id and keeps no contact details.
    audit_label_is_personal = True
    audit_personal_fields = frozenset({"name"})
    list_display = ["name", "phone", "email", "appointment_count", "created_at"]
    search_fields = ["name", "phone", "email"]
    fields = ["name", "phone", "email", "created_at", "recent_appointments"]
    # The phone number is how the booking engine finds the customer again.
    readonly_fields = ["phone", "created_at", "recent_appointments"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        return super().get_queryset(request).annotate(appointment_total=Count("appointments"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="appointments", ordering="appointment_total")
    def appointment_count(self, obj: Customer) -> int:
        return getattr(obj, "appointment_total", 0)

    @admin.display(description="latest appointments")
    def recent_appointments(self, obj: Customer) -> str:
        if obj.pk is None:
            return "—"
        recent = obj.appointments.select_related("service").order_by("-start")[:10]
        if not recent:
            return "None yet."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{}</a> {} — {} ({})</li>',
                (
                    (
                        reverse(f"{dashboard_site.name}:booking_appointment_change",
                                args=[a.pk]),
                        a.reference, local_time(a.start), a.service.name,
                        a.get_status_display(),
                    )
                    for a in recent
                ),
            ),
        )


# --- appointments ---------------------------------------------------------------------


Outcome = Callable[[Appointment], Appointment]

OUTCOMES: dict[str, tuple[str, Outcome]] = {
    "cancel": (
        "Cancelled",
        lambda a: appointment_cancel(appointment=a, by_customer=False),
    ),
    "no_show": ("Marked as no-show", lambda a: appointment_mark_no_show(appointment=a)),
    "complete": ("Marked as completed", lambda a: appointment_complete(appointment=a)),
}


def _audit_appointment(
    request: HttpRequest, action: str, appointment: Appointment, changes: list[dict[str, Any]]
) -> None:
    """The dashboard's appointment changes in the activity log (booking.services made them)."""
    audit_record(
        action=action,
        actor=actor_from_request(request),
        object_type=str(Appointment._meta.verbose_name),
        object_id=appointment.pk,
        label=f"{appointment.reference}, {local_time(appointment.start)}",
        changes=changes,
    )


def _apply_outcome(
    request: HttpRequest, appointments: list[Appointment], outcome: str
) -> None:
    done_label, change = OUTCOMES[outcome]
    done = []
    for appointment in appointments:
        old_status = appointment.status
        try:
            changed = change(appointment)
        except BookingError as exc:
            messages.error(request, f"{appointment.reference}: {exc.message}")
        else:
            done.append(appointment.reference)
            if changed.status != old_status:
                action = (AuditEntry.Action.CANCEL if outcome == "cancel"
                          else AuditEntry.Action.CHANGE)
                _audit_appointment(
                    request, action, changed, [field_change("status", old_status, changed.status)]
                )
    if done:
        messages.success(request, f"{done_label}: {', '.join(done)}.")


def _report_booking_error(request: HttpRequest, form: forms.Form, exc: BookingError) -> None:
    messages.error(request, exc.message)
    if isinstance(exc, InvalidInput):
        field = "time" if exc.field in {"start", "new_start"} else exc.field
        if field in form.fields:
            form.add_error(field, exc.message)


APPOINTMENT_FIELDS: tuple[str, ...] = (
    "reference", "local_start", "local_end", "service", "staff", "customer_link", "status",
    "channel", "notes", "created_at", "cancelled_at",
)


@admin.register(Appointment, site=dashboard_site)
class AppointmentAdmin(BookingModelAdmin):
    list_display = ["reference", "local_start", "service", "staff", "customer", "status",
                    "channel"]
    list_filter = ["status", "channel", "staff", "service", "start"]
    search_fields = ["reference", "customer__name", "customer__phone", "customer__email"]
    list_select_related = ["service", "staff", "customer"]
    date_hierarchy = "start"
    ordering = ["-start", "-pk"]
    fields = APPOINTMENT_FIELDS
    readonly_fields = APPOINTMENT_FIELDS
    actions = ["cancel_selected", "mark_no_show", "mark_completed"]
    change_form_template = "dashboard/booking/appointment_change_form.html"
    change_list_template = "dashboard/booking/appointment_change_list.html"

    # Rows are only ever written by booking.services: the change page is a
    # read-only view with buttons that call it, and nothing is deleted.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return dashboard_allows(request, "change")

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/reschedule/",
                self.admin_site.admin_view(self.reschedule_view),
                name="{}_{}_reschedule".format(*info),
            ),
            path(
                "<path:object_id>/outcome/",
                self.admin_site.admin_view(self.outcome_view),
                name="{}_{}_outcome".format(*info),
            ),
            *super().get_urls(),
        ]

    # The model's str() is the UTC time; owners only ever see local times.
    def action_checkbox(self, obj: Appointment) -> SafeString:
        checkbox = forms.CheckboxInput(
            {"class": "action-select", "aria-label": f"Select appointment {obj.reference}"},
            lambda value: False,
        )
        return checkbox.render(ACTION_CHECKBOX_NAME, str(obj.pk))

    def summary(self, obj: Appointment) -> str:
        return f"{obj.reference}, {local_time(obj.start)}"

    @admin.display(description="start", ordering="start")
    def local_start(self, obj: Appointment) -> str:
        return local_time(obj.start)

    @admin.display(description="end", ordering="end")
    def local_end(self, obj: Appointment) -> str:
        return local_time(obj.end)

    @admin.display(description="customer")
    def customer_link(self, obj: Appointment) -> str:
        customer = obj.customer
        url = reverse(f"{dashboard_site.name}:booking_customer_change", args=[customer.pk])
        return format_html('<a href="{}">{}</a> {} {}', url, customer.name, customer.phone,
                           customer.email)

    # Actions

    @admin.action(description="Cancel the selected appointments", permissions=["manage"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> None:
        _apply_outcome(request, list(queryset.order_by("start", "pk")), "cancel")

    @admin.action(description="Mark the selected appointments as no-show",
                  permissions=["manage"])
    def mark_no_show(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> None:
        _apply_outcome(request, list(queryset.order_by("start", "pk")), "no_show")

    @admin.action(description="Mark the selected appointments as completed",
                  permissions=["manage"])
    def mark_completed(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> None:
        _apply_outcome(request, list(queryset.order_by("start", "pk")), "complete")

    # Views

    def _form_page(
        self, request: HttpRequest, form: forms.Form, *, title: str, submit: str,
        appointment: Appointment | None = None,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "submit_label": submit,
            "original": appointment,
            "media": self.media + form.media,
            "zone": timezone.get_current_timezone_name(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "dashboard/booking/appointment_form.html", context)

    def _change_url(self, appointment: Appointment) -> str:
        return reverse(f"{self.admin_site.name}:booking_appointment_change",
                       args=[appointment.pk])

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        tz = business_zone()
        if request.method == "POST":
            form = AppointmentBookForm(request.POST, tz=tz)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    details = customer_details_clean(
                        name=data["name"], phone=data["phone"], email=data["email"]
                    )
                    appointment = appointment_book(
                        service_id=data["service"].pk,
                        start=data["start"],
                        customer=details,
                        channel=Appointment.Channel.DASHBOARD,
                        staff_id=data["staff"].pk if data["staff"] is not None else None,
                        idempotency_key=f"dashboard:{data['key']}",
                        notes=data["notes"],
                    )
                except BookingError as exc:
                    _report_booking_error(request, form, exc)
                else:
                    _audit_appointment(request, AuditEntry.Action.CREATE, appointment, [
                        field_change(name, None, value) for name, value in (
                            ("service", appointment.service.name),
                            ("staff", appointment.staff.name),
                            ("start", appointment.start),
                        )
                    ])
                    messages.success(
                        request,
                        f"Booked {appointment.reference}: {appointment.service.name} with "
                        f"{appointment.staff.name}, {local_time(appointment.start)}.",
                    )
                    return HttpResponseRedirect(self._change_url(appointment))
        else:
            form = AppointmentBookForm(tz=tz, initial=self._book_initial(request))
        return self._form_page(request, form, title="Book an appointment", submit="Book")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        appointment = self.get_object(request, unquote(object_id))
        context = {
            "subtitle": self.summary(appointment),
            "summary": self.summary(appointment),
            "can_manage": self.has_manage_permission(request),
            "started": timezone.now() >= appointment.start,
            "local_day": timezone.localtime(appointment.start).date(),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def _book_initial(self, request: HttpRequest) -> dict[str, Any]:
        # The calendar links here with the day (and staff member) it shows.
        initial: dict[str, Any] = {}
        for name in ("service", "staff", "date", "time"):
            value = request.GET.get(name)
            if value:
                initial[name] = value
        return initial

    def reschedule_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        appointment = self.get_object(request, unquote(object_id))
        if not self.has_manage_permission(request):
            raise PermissionDenied
        if appointment.status != Appointment.Status.BOOKED:
            messages.error(request, "Only a booked appointment can be moved.")
            return HttpResponseRedirect(self._change_url(appointment))
        tz = business_zone()
        if request.method == "POST":
            form = AppointmentRescheduleForm(
                request.POST, tz=tz, service_id=appointment.service_id
            )
            if form.is_valid():
                staff = form.cleaned_data["staff"]
                old_start, old_staff = appointment.start, appointment.staff.name
                try:
                    moved = appointment_reschedule(
                        appointment=appointment,
                        new_start=form.cleaned_data["start"],
                        by_customer=False,
                        staff_id=staff.pk if staff is not None else None,
                    )
                except BookingError as exc:
                    _report_booking_error(request, form, exc)
                else:
                    _audit_appointment(request, AuditEntry.Action.CHANGE, moved, [
                        field_change("start", old_start, moved.start),
                        field_change("staff", old_staff, moved.staff.name),
                    ])
                    messages.success(
                        request,
                        f"Moved {moved.reference} to {local_time(moved.start)} with "
                        f"{moved.staff.name}.",
                    )
                    return HttpResponseRedirect(self._change_url(moved))
        else:
            start = appointment.start.astimezone(tz)
            form = AppointmentRescheduleForm(
                tz=tz, service_id=appointment.service_id,
                initial={"date": start.date(), "time": start.time()},
            )
        return self._form_page(
            request, form, title=f"Move appointment {appointment.reference}", submit="Move",
            appointment=appointment,
        )

    def outcome_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        appointment = self.get_object(request, unquote(object_id))
        if not self.has_manage_permission(request):
            raise PermissionDenied
        outcome = request.POST.get("outcome", "")
        if outcome not in OUTCOMES:
            messages.error(request, "Unknown change.")
        else:
            _apply_outcome(request, [appointment], outcome)
        return HttpResponseRedirect(self._change_url(appointment))


# --- waitlist and messages ------------------------------------------------------------


@admin.register(WaitlistEntry, site=dashboard_site)
class WaitlistEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["customer", "service", "staff_or_anyone", "status", "wanted",
                    "offer_expires", "created"]
    list_filter = ["status", "service", "staff"]
    search_fields = ["customer__name", "customer__phone"]
    list_select_related = ["customer", "service", "staff"]
    actions = ["remove_selected"]

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return dashboard_allows(request, "change")

    @admin.display(description="staff")
    def staff_or_anyone(self, obj: WaitlistEntry) -> str:
        return obj.staff.name if obj.staff is not None else "Anyone"

    @admin.display(description="wanted")
    def wanted(self, obj: WaitlistEntry) -> str:
        windows = [
            f"{w.get('date', '?')} {w.get('start', '')}-{w.get('end', '')}"
            for w in obj.windows if isinstance(w, dict)
        ]
        if windows:
            return "; ".join(windows)
        if obj.earliest or obj.latest:
            return f"{local_time(obj.earliest)} to {local_time(obj.latest)}"
        return "Any time"

    @admin.display(description="offer expires", ordering="offer_expires_at")
    def offer_expires(self, obj: WaitlistEntry) -> str:
        return local_time(obj.offer_expires_at) if obj.offer_expires_at else ""

    @admin.display(description="joined", ordering="created_at")
    def created(self, obj: WaitlistEntry) -> str:
        return local_time(obj.created_at)

    @admin.action(description="Remove the selected entries from the waitlist",
                  permissions=["manage"])
    def remove_selected(self, request: HttpRequest, queryset: QuerySet[WaitlistEntry]) -> None:
        removed = 0
        for entry in queryset.filter(status__in=[WaitlistEntry.Status.WAITING,
                                                 WaitlistEntry.Status.OFFERED]):
            old_status = entry.status
            try:
                current = waitlist_remove(entry=entry)
            except BookingError as exc:
                messages.error(request, exc.message)
            else:
                removed += 1
                audit_record(
                    action=AuditEntry.Action.CHANGE, actor=actor_from_request(request),
                    object_type=str(WaitlistEntry._meta.verbose_name), object_id=current.pk,
                    label=f"{WaitlistEntry._meta.verbose_name} #{current.pk}",
                    changes=[field_change("status", old_status, current.status)],
                )
        messages.success(request, f"Removed {removed} waitlist entries.")


@admin.register(Notification, site=dashboard_site)
class NotificationAdmin(ReadOnlyModelAdmin):
    list_display = ["scheduled", "kind", "channel", "status", "appointment_ref", "recipient",
                    "attempts", "sent"]
    list_filter = ["status", "kind", "channel"]
    search_fields = ["appointment__reference", "recipient"]
    list_select_related = ["appointment"]
    ordering = ["-scheduled_for", "-pk"]

    @admin.display(description="scheduled for", ordering="scheduled_for")
    def scheduled(self, obj: Notification) -> str:
        return local_time(obj.scheduled_for)

    @admin.display(description="sent", ordering="sent_at")
    def sent(self, obj: Notification) -> str:
        return local_time(obj.sent_at) if obj.sent_at else ""

    @admin.display(description="appointment")
    def appointment_ref(self, obj: Notification) -> str:
        if obj.appointment is None:
            return "—"
        url = reverse(f"{dashboard_site.name}:booking_appointment_change",
                      args=[obj.appointment.pk])
        return format_html('<a href="{}">{}</a>', url, obj.appointment.reference)
