"""Availability search: the engine alone, the selector, the whole API request, and
django-appointment's slot computation on the same data.

One business in America/New_York: 5 staff members (one working interval a day,
as django-appointment allows), one 30-minute service with a 10-minute buffer
after it, a 15-minute grid, 2,000 appointments booked through
``appointment_book`` over the next 60 days, one staff day off and one
business holiday. The search covers the 14 days from tomorrow.

* engine: ``booking.availability.find_slots`` on data already loaded by
  ``booking.selectors.engine_data`` (what ``slots_search`` loads);
* selector: ``booking.selectors.slots_search`` (its queries plus the engine);
* API: ``GET /api/b/<slug>/availability?service=..&start=..&end=..`` through
  Django's WSGI handler in-process (middleware, tenant lookup, a fresh SQLite
  connection, django-ninja, JSON);
* django-appointment (``DJANGO_APPOINTMENT`` from PyPI, installed into a
  throwaway virtualenv, never into the project): ``bench/django_appointment_slots.py``
  in its own process times ``get_available_slots_for_staff`` for every
  (day, staff member) of the same search, and its arithmetic alone on loaded
  data. Both engines must return the same (staff, start) pairs.

Run: ``.venv/bin/python -m bench.availability [--appointment-python PATH]``
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import machine, quantile_ms, say, start

DJANGO_APPOINTMENT = "django-appointment==3.12.0"
ZONE = "America/New_York"
SLUG = "bench-clinic"
APPOINTMENTS = 2_000
SPREAD_DAYS = 60
SEARCH_DAYS = 14
STEP, SERVICE_MINUTES, BUFFER_AFTER, MIN_NOTICE = 15, 30, 10, 60
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# name -> {weekday (Monday = 0): (opens, closes)}
STAFF: dict[str, dict[int, tuple[str, str]]] = {
    "Avery": dict.fromkeys(range(5), ("08:00", "18:00")) | {5: ("09:00", "14:00")},
    "Blake": dict.fromkeys(range(5), ("08:00", "18:00")) | {5: ("09:00", "14:00")},
    "Casey": dict.fromkeys(range(6), ("09:00", "18:00")),
    "Devon": dict.fromkeys(range(6), ("09:00", "18:00")),
    "Emery": dict.fromkeys(range(1, 6), ("10:00", "20:00")),
}
HERE = Path(__file__).resolve().parent


def start_quick(name: str, *, full_migrations: bool = False) -> Path:
    """``bench.common.start``, with dj-stripe's tables made from its models.

    Replaying dj-stripe's migrations costs about 100 s of CPU for each fresh
    database (the control plane, then the tenant template, which replays every
    app's migrations), more than the measurements themselves; nothing measured
    here reads those tables.
    """
    import django
    from django.conf import settings

    setup = django.setup

    def setup_then_skip(*args: Any, **kwargs: Any) -> None:
        setup(*args, **kwargs)
        if not full_migrations:
            settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "djstripe": None}

    django.setup = setup_then_skip
    try:
        return start(name)
    finally:
        django.setup = setup


def minutes(hhmm: str) -> int:
    hour, minute = hhmm.split(":")
    return int(hour) * 60 + int(minute)


def hhmm(total: int) -> str:
    return f"{total // 60:02d}:{total % 60:02d}"


def plan_data(today: date) -> dict[str, Any]:
    """The business, its days off and 2,000 non-overlapping appointments, in local wall time."""
    first = today + timedelta(days=1)
    staff_off = (1, first + timedelta(days=3))  # Blake
    holiday = first + timedelta(days=8)
    off = {staff_off} | {(i, holiday) for i in range(len(STAFF))}
    rng = random.Random(2026)
    names = list(STAFF)
    taken: dict[tuple[int, date], list[int]] = {}
    appointments: list[tuple[int, str, str, str]] = []
    block = SERVICE_MINUTES + BUFFER_AFTER
    while len(appointments) < APPOINTMENTS:
        index = rng.randrange(len(names))
        day = first + timedelta(days=rng.randrange(SPREAD_DAYS))
        hours = STAFF[names[index]].get(day.weekday())
        if hours is None or (index, day) in off:
            continue
        opens, closes = minutes(hours[0]), minutes(hours[1])
        starts = range(opens, closes - SERVICE_MINUTES + 1, STEP)
        booked = taken.setdefault((index, day), [])
        # Like a customer taking the first free slot from the time they asked
        # for: appointments pack together and the free time stays usable.
        wanted = rng.randrange(len(starts))
        begin = next((s for s in starts[wanted:]
                      if all(abs(s - other) >= block for other in booked)), None)
        if begin is None:
            continue
        booked.append(begin)
        appointments.append((index, day.isoformat(), hhmm(begin), hhmm(begin + SERVICE_MINUTES)))
    return {
        "timezone": ZONE,
        "step_minutes": STEP,
        "service_minutes": SERVICE_MINUTES,
        "gap_minutes": BUFFER_AFTER,
        "min_notice_minutes": MIN_NOTICE,
        "staff": [{"name": name, "hours": {str(d): list(h) for d, h in hours.items()}}
                  for name, hours in STAFF.items()],
        "days_off": sorted([i, d.isoformat()] for i, d in off),
        "staff_day_off": [staff_off[0], staff_off[1].isoformat()],
        "holiday": holiday.isoformat(),
        "appointments": appointments,
        "search": {"start": first.isoformat(), "days": SEARCH_DAYS},
    }


def setup_document(data: dict[str, Any]) -> dict[str, Any]:
    """The same business as a ``tenant_config`` document."""
    def whole_day(day: str) -> tuple[str, str]:
        following = date.fromisoformat(day) + timedelta(days=1)
        return f"{day}T00:00", f"{following.isoformat()}T00:00"

    staff_index, staff_day = data["staff_day_off"]
    return {
        "name": "Bench Clinic",
        "timezone": ZONE,
        "policy": {"slot_step_minutes": STEP, "min_notice_minutes": MIN_NOTICE,
                   "max_days_ahead": SPREAD_DAYS, "cancellation_notice_minutes": 120,
                   "reminder_offsets_minutes": [1440, 120], "waitlist_hold_minutes": 15},
        "services": [{"name": "Consultation", "duration_minutes": SERVICE_MINUTES,
                      "price": "80.00", "buffer_before_minutes": 0,
                      "buffer_after_minutes": BUFFER_AFTER, "description": ""}],
        "staff": [{"name": name, "services": ["Consultation"],
                   "hours": {WEEK[d]: [list(h)] for d, h in hours.items()}}
                  for name, hours in STAFF.items()],
        "closures": [
            dict(zip(("start", "end"), whole_day(data["holiday"]), strict=True))
            | {"staff": None, "reason": "Holiday"},
            dict(zip(("start", "end"), whole_day(staff_day), strict=True))
            | {"staff": list(STAFF)[staff_index], "reason": "Day off"},
        ],
    }


def seed(data: dict[str, Any]) -> tuple[Any, int, dict[int, int]]:
    """Provision the tenant, import its setup, book every appointment; returns
    (tenant, service id, staff id -> index)."""
    from booking.config import config_import
    from booking.models import Appointment, Service, StaffMember
    from booking.services import appointment_book, customer_upsert
    from tenants.context import tenant_context
    from tenants.services import tenant_create

    tenant = tenant_create(slug=SLUG, name="Bench Clinic", timezone=ZONE,
                           owner_email="owner@bench.invalid", plan="premium")
    tz = ZoneInfo(ZONE)
    with tenant_context(tenant):
        config_import(setup_document(data))
        service_id = Service.objects.get().pk
        ids = dict(StaffMember.objects.values_list("name", "pk"))
        staff_ids = [ids[name] for name in STAFF]
        customers = [customer_upsert(name=f"Customer {n}", phone=f"+1212555{100 + n:04d}")
                     for n in range(50)]
        began = time.perf_counter()
        for n, (index, day, begin, _) in enumerate(data["appointments"]):
            local = datetime.fromisoformat(f"{day}T{begin}").replace(tzinfo=tz)
            appointment_book(service_id=service_id, start=local, staff_id=staff_ids[index],
                             customer=customers[n % len(customers)],
                             channel=Appointment.Channel.API)
        say(f"booked {len(data['appointments'])} appointments through appointment_book "
            f"in {time.perf_counter() - began:.1f} s")
    return tenant, service_id, {pk: i for i, pk in enumerate(staff_ids)}


def environ_for(path: str, query: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


Samples = tuple[list[int], list[int]]  # (wall ns, CPU ns) per call


def timed(fn: Callable[[], object], count: int, into: Samples) -> None:
    wall, cpu = into
    for _ in range(count):
        began, began_cpu = time.perf_counter_ns(), time.process_time_ns()
        fn()
        cpu.append(time.process_time_ns() - began_cpu)
        wall.append(time.perf_counter_ns() - began)


def row(label: str, samples: Samples | list[int]) -> float:
    """Print and return the wall median in ms (CPU median too when it was recorded)."""
    wall = samples[0] if isinstance(samples, tuple) else samples
    median = statistics.median(wall) / 1e6
    cpu = (f"CPU {statistics.median(samples[1]) / 1e6:7.3f} ms | "
           if isinstance(samples, tuple) else "")
    say(f"  {label:<56} {cpu}wall median {median:8.3f} ms, p90 "
        f"{quantile_ms(wall, 0.9):8.3f} ms (n={len(wall)})")
    return median


def profile_requests(api: Callable[[], None]) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(200):
        api()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    say(out.getvalue())


def appointment_python(given: str | None, scratch: Path) -> tuple[Path | None, str]:
    """A Python with django-appointment installed: the given one, or a fresh throwaway venv."""
    if given:
        return Path(given), "given"
    venv = scratch / "django-appointment-venv"
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         DJANGO_APPOINTMENT], capture_output=True, text=True, check=False,
    )
    if installed.returncode != 0:
        return None, f"pip install {DJANGO_APPOINTMENT} failed:\n{installed.stderr[-2000:]}"
    return python, f"installed {DJANGO_APPOINTMENT} into a throwaway venv in " \
                   f"{time.perf_counter() - began:.0f} s"


def run_django_appointment(python: Path, data: dict[str, Any], scratch: Path,
                           repeats: int, pure_per_full: int) -> dict[str, Any]:
    path = scratch / "availability-data.json"
    path.write_text(json.dumps(data | {"repeats": repeats, "pure_per_full": pure_per_full}))
    out = scratch / "django-appointment-result.json"
    done = subprocess.run(
        [str(python), "-I", str(HERE / "django_appointment_slots.py"), str(path), str(out)],
        capture_output=True, text=True, check=False, cwd=scratch,
    )
    if done.returncode != 0:
        raise SystemExit(f"django-appointment run failed:\n{done.stdout[-2000:]}"
                         f"{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--appointment-python", default=None,
                        help="a Python that already has django-appointment (skips the install)")
    parser.add_argument("--appointment-repeats", type=int, default=30)
    parser.add_argument("--no-appointment", action="store_true",
                        help="skip the django-appointment comparison")
    parser.add_argument("--full-migrations", action="store_true",
                        help="replay dj-stripe's migrations too (adds minutes of set-up)")
    parser.add_argument("--profile", action="store_true",
                        help="also print where 200 API requests spend their time (cProfile)")
    args = parser.parse_args()

    var_dir = start_quick("availability", full_migrations=args.full_migrations)
    from django.core.handlers.wsgi import WSGIHandler
    from django.utils import timezone

    from booking import availability
    from booking.models import MAX_BLOCK, Service
    from booking.selectors import engine_data, profile_get, slots_search
    from tenants.context import tenant_context

    say(f"machine: {machine()}")
    scratch = Path(tempfile.mkdtemp(prefix="ss-bench-scratch-", dir=var_dir))
    python, how = (None, "skipped (--no-appointment)") if args.no_appointment else \
        appointment_python(args.appointment_python, scratch)
    say(f"django-appointment: {how}")

    tz = ZoneInfo(ZONE)
    data = plan_data(timezone.now().astimezone(tz).date())
    tenant, service_id, staff_index = seed(data)
    first = date.fromisoformat(data["search"]["start"])
    last = first + timedelta(days=SEARCH_DAYS - 1)
    say(f"search: {first} .. {last} ({SEARCH_DAYS} days), {len(STAFF)} staff, step {STEP} min, "
        f"{APPOINTMENTS} appointments over {SPREAD_DAYS} days")

    with tenant_context(tenant):
        profile = profile_get()
        service = Service.objects.get(pk=service_id)
        # The span slots_search loads for this search.
        span_start = datetime.combine(first, datetime.min.time(), tz) - timedelta(days=1)
        span_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
        span_end += timedelta(days=1)
        loaded = engine_data(profile=profile, service=service, span_start=span_start,
                             span_end=span_end + MAX_BLOCK)
    say(f"loaded for the engine: {len(loaded.busy)} busy blocks, {len(loaded.closures)} closures")

    def engine(any_staff: bool) -> Callable[[], list[availability.Slot]]:
        def run() -> list[availability.Slot]:
            return availability.find_slots(
                tz=loaded.tz, policy=loaded.policy, service=loaded.service, staff=loaded.staff,
                closures=loaded.closures, busy=loaded.busy, now=timezone.now(),
                start_date=first, end_date=last, any_staff=any_staff,
            )
        return run

    def selector(any_staff: bool) -> Callable[[], list[availability.Slot]]:
        def run() -> list[availability.Slot]:
            with tenant_context(tenant):
                return slots_search(service_id=service_id, start_date=first, end_date=last,
                                    any_staff=any_staff)
        return run

    handler = WSGIHandler()
    api_path = f"/api/b/{SLUG}/availability"
    api_query = f"service={service_id}&start={first}&end={last}"
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    bodies: list[bytes] = []

    def api() -> None:
        response = handler(environ_for(api_path, api_query), start_response)
        body = b"".join(response)
        response.close()  # type: ignore[attr-defined]  # fires request_finished
        if not statuses[-1].startswith("200"):
            raise SystemExit(f"availability answered {statuses[-1]}: {body[:300]!r}")
        if not bodies:
            bodies.append(body)

    # Sanity and the like-for-like result: every (staff, start) pair, in local wall time.
    pooled = engine(True)()
    pairs = engine(False)()
    api()
    served = json.loads(bodies[0])["slots"]
    assert len(served) == len(pooled) == len(selector(True)()), "API and engine disagree"
    ours = sorted(
        [staff_index[s.staff_id], s.start.astimezone(tz).strftime("%Y-%m-%dT%H:%M")]
        for s in pairs
    )
    say(f"slots: {len(pooled)} start times offered (any staff), {len(pairs)} (staff, start) pairs")

    def load() -> None:
        with tenant_context(tenant):
            engine_data(profile=profile_get(), service=Service.objects.get(pk=service_id),
                        span_start=span_start, span_end=span_end + MAX_BLOCK)

    samples: dict[str, Samples] = {k: ([], []) for k in (
        "engine_any", "engine_pairs", "load", "selector_any", "selector_pairs", "api")}
    for _ in range(5):  # warm-up
        for fn in (engine(True), engine(False), load, selector(True), selector(False), api):
            fn()

    def rounds(count: int) -> None:
        for _ in range(count):
            timed(engine(True), 50, samples["engine_any"])
            timed(engine(False), 50, samples["engine_pairs"])
            timed(load, 25, samples["load"])
            timed(selector(True), 25, samples["selector_any"])
            timed(selector(False), 25, samples["selector_pairs"])
            timed(api, 25, samples["api"])

    gc.collect()
    # Half before django-appointment runs and half after, so a change in the
    # machine's load during the run falls on both sides.
    rounds(args.rounds // 2)
    theirs: dict[str, Any] | None = None
    if python is not None:
        theirs = run_django_appointment(python, data, scratch, args.appointment_repeats, 10)
    rounds(args.rounds - args.rounds // 2)

    if args.profile:
        profile_requests(api)
    say("Smart Scheduler:")
    engine_any = row("find_slots, any staff (what the API returns)", samples["engine_any"])
    engine_pairs = row("find_slots, every (staff, start) pair", samples["engine_pairs"])
    row("loading alone (profile, service, engine_data)", samples["load"])
    row("slots_search (queries + engine), any staff", samples["selector_any"])
    selector_pairs = row("slots_search (queries + engine), every pair",
                         samples["selector_pairs"])
    api_ms = row("GET /api/b/<slug>/availability (WSGI in-process)", samples["api"])
    say(f"goals: find_slots {engine_any:.3f} ms (<= 2 ms), API request {api_ms:.3f} ms "
        f"(<= 15 ms)")

    if theirs is None:
        say(f"django-appointment: not compared ({how})")
        return
    say(f"django-appointment {theirs['django_appointment']} (Django {theirs['django']}), "
        f"its own process and SQLite file:")
    full = row(f"get_available_slots_for_staff x {theirs['calls']} (days x staff)",
               (theirs["full_ns"], theirs["full_cpu_ns"]))
    pure = row("calculate_slots + exclude_unavailable_slots on loaded data",
               (theirs["pure_ns"], theirs["pure_cpu_ns"]))
    say(f"  queries per search: {theirs['queries']}")
    same = sorted(theirs["slots"]) == ours

    def cpu(values: list[int]) -> float:
        return statistics.median(values) / 1e6

    say(f"same (staff, start) pairs from both: {same} ({len(theirs['slots'])} vs {len(ours)})")
    say(f"ratio, whole search with its queries: django-appointment {full:.1f} ms / "
        f"slots_search {selector_pairs:.3f} ms = {full / selector_pairs:.0f}x wall, "
        f"{cpu(theirs['full_cpu_ns']) / cpu(samples['selector_pairs'][1]):.0f}x CPU "
        f"(goal >= 20x)")
    say(f"ratio, computation on loaded data: {pure:.2f} ms / find_slots {engine_pairs:.3f} ms "
        f"= {pure / engine_pairs:.0f}x wall, "
        f"{cpu(theirs['pure_cpu_ns']) / cpu(samples['engine_pairs'][1]):.0f}x CPU")
    say(f"ratio, django-appointment's function alone vs our whole API request: "
        f"{full / api_ms:.0f}x wall, "
        f"{cpu(theirs['full_cpu_ns']) / cpu(samples['api'][1]):.0f}x CPU")
    if not same:
        missing = {tuple(p) for p in ours} ^ {tuple(p) for p in theirs["slots"]}
        raise SystemExit(f"the two engines disagree on {len(missing)} pairs, e.g. "
                         f"{sorted(missing)[:5]}")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
