"""django-appointment's slot computation on the availability benchmark's data.

Runs in its own virtualenv (django-appointment and its dependencies only), with
its own minimal Django settings and SQLite file; it imports nothing of this
project. ``bench.availability`` writes the data file, starts this script with
``python -I`` and reads the JSON result it writes (its standard output carries
the package's own log lines):

    python -I bench/django_appointment_slots.py DATA.json RESULT.json

Two timings, each one sample per 14-day search for every staff member:

* ``full``: ``appointment.services.get_available_slots_for_staff`` once per
  (day, staff member), the function its slot page calls; it reads the working
  hours, days off, pending reschedules and appointments itself.
* ``pure``: the arithmetic of that function on data loaded beforehand (working
  hours, days off and appointments with their requests): ``calculate_slots``
  then ``exclude_unavailable_slots``, the same calls with the same arguments.
"""

from __future__ import annotations

import atexit
import json
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from importlib.metadata import version
from pathlib import Path


def configure(db_path: Path, zone: str) -> None:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-django-appointment",
        USE_TZ=True,
        TIME_ZONE=zone,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "django.contrib.messages",
            "phonenumber_field",
            "appointment",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(db_path),
                # The same pragmas as the project's tenant databases.
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;"
                                    "PRAGMA foreign_keys=ON;",
                },
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        LOGGING_CONFIG=None,
    )
    import django

    django.setup()


def hhmm(text: str) -> dtime:
    hour, minute = text.split(":")
    return dtime(int(hour), int(minute))


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text())
    workdir = Path(tempfile.mkdtemp(prefix="ss-bench-appointment-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    configure(workdir / "appointment.sqlite3", data["timezone"])

    from appointment.models import (
        Appointment,
        AppointmentRequest,
        Config,
        DayOff,
        Service,
        StaffMember,
        WorkingHours,
    )
    from appointment.services import get_available_slots_for_staff
    from appointment.utils.db_helpers import (
        calculate_slots,
        exclude_unavailable_slots,
        get_weekday_num_from_date,
    )
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # The package ships no migrations; syncdb creates its tables from the models.
    call_command("migrate", run_syncdb=True, verbosity=0)
    users = get_user_model().objects
    step = data["step_minutes"]
    gap = data["gap_minutes"]
    Config.objects.create(slot_duration=step, lead_time=dtime(8), finish_time=dtime(19),
                          appointment_buffer_time=data["min_notice_minutes"], slot_gap_time=gap)
    service = Service.objects.create(
        name="Consultation", duration=timedelta(minutes=data["service_minutes"]), price=0
    )
    staff = []
    for index, person in enumerate(data["staff"]):
        user = users.create(username=f"staff{index}", first_name=person["name"])
        member = StaffMember.objects.create(user=user, slot_duration=step, slot_gap_time=gap)
        member.services_offered.add(service)
        for weekday, (start, end) in person["hours"].items():
            # Its weekdays count from Sunday = 0; ours (Python's) from Monday = 0.
            WorkingHours.objects.create(staff_member=member, day_of_week=(int(weekday) + 1) % 7,
                                        start_time=hhmm(start), end_time=hhmm(end))
        staff.append(member)
    for index, day in data["days_off"]:
        DayOff.objects.create(staff_member=staff[index], start_date=date.fromisoformat(day),
                              end_date=date.fromisoformat(day))
    client = users.create(username="client", first_name="Client")
    requests = AppointmentRequest.objects.bulk_create(
        AppointmentRequest(date=date.fromisoformat(day), start_time=hhmm(start),
                           end_time=hhmm(end), service=service, staff_member=staff[index])
        for index, day, start, end in data["appointments"]
    )
    Appointment.objects.bulk_create(
        Appointment(client=client, appointment_request=request, amount_to_pay=0)
        for request in requests
    )

    first = date.fromisoformat(data["search"]["start"])
    days = [first + timedelta(days=n) for n in range(data["search"]["days"])]
    staff = list(StaffMember.objects.order_by("pk"))
    service = Service.objects.get()

    def full_search() -> list[tuple[int, datetime]]:
        found = []
        for day in days:
            weekday_num = get_weekday_num_from_date(day)
            for index, member in enumerate(staff):
                for slot in get_available_slots_for_staff(day, member, weekday_num,
                                                          service=service):
                    found.append((index, slot))
        return found

    # Loaded once for the arithmetic-only timing, with the requests joined so
    # get_start_time()/get_end_time() do not query.
    hours = {(wh.staff_member_id, wh.day_of_week): wh for wh in WorkingHours.objects.all()}
    off = {(d.staff_member_id, d.start_date + timedelta(days=n))
           for d in DayOff.objects.all() for n in range((d.end_date - d.start_date).days + 1)}
    booked: dict[tuple[int, date], list[Appointment]] = {}
    for appointment in Appointment.objects.select_related("appointment_request"):
        request = appointment.appointment_request
        booked.setdefault((request.staff_member_id, request.date), []).append(appointment)
    slot_duration = timedelta(minutes=step)
    service_duration = service.duration
    buffer = timedelta(minutes=data["min_notice_minutes"])

    def pure_search() -> list[tuple[int, datetime]]:
        from django.utils import timezone

        found = []
        earliest = timezone.localtime().replace(tzinfo=None) + buffer
        for day in days:
            weekday_num = get_weekday_num_from_date(day)
            for index, member in enumerate(staff):
                if (member.pk, day) in off:
                    continue
                wh = hours.get((member.pk, weekday_num))
                if wh is None:
                    continue
                start = datetime.combine(day, wh.start_time)
                end = datetime.combine(day, wh.end_time)
                slots = calculate_slots(start, end, max(start, earliest), slot_duration,
                                        service_duration)
                slots = exclude_unavailable_slots(
                    slots, appointments=booked.get((member.pk, day), []), unavailabilities=[],
                    slot_duration=slot_duration, service_duration=service_duration,
                    gap_time=gap,
                )
                found.extend((index, slot) for slot in slots)
        return found

    reference = full_search()
    if sorted(pure_search()) != sorted(reference):
        sys.exit("the arithmetic-only search disagrees with get_available_slots_for_staff")
    with CaptureQueriesContext(connection) as queries:
        full_search()
    full_ns: list[int] = []
    full_cpu_ns: list[int] = []
    pure_ns: list[int] = []
    pure_cpu_ns: list[int] = []
    for _ in range(data["repeats"]):
        began, began_cpu = time.perf_counter_ns(), time.process_time_ns()
        full_search()
        full_cpu_ns.append(time.process_time_ns() - began_cpu)
        full_ns.append(time.perf_counter_ns() - began)
        for _ in range(data["pure_per_full"]):
            began, began_cpu = time.perf_counter_ns(), time.process_time_ns()
            pure_search()
            pure_cpu_ns.append(time.process_time_ns() - began_cpu)
            pure_ns.append(time.perf_counter_ns() - began)
    Path(sys.argv[2]).write_text(json.dumps(
        {
            "django_appointment": version("django-appointment"),
            "django": version("django"),
            "full_ns": full_ns,
            "full_cpu_ns": full_cpu_ns,
            "pure_ns": pure_ns,
            "pure_cpu_ns": pure_cpu_ns,
            "queries": len(queries.captured_queries),
            "calls": len(days) * len(staff),
            "slots": [[index, slot.strftime("%Y-%m-%dT%H:%M")] for index, slot in reference],
        }
    ))


if __name__ == "__main__":
    main()
