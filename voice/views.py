"""Twilio webhooks: the phone flow and the SMS assistant.

A call goes: ``incoming`` (greeting, then a speech <Gather>) -> ``turn`` for
each thing the caller says (the assistant's answer is spoken and the next
<Gather> opened) -> a hang-up, a transfer (<Dial> the business) or a message
(<Record>). ``status`` records how the call ended. ``sms`` runs the same
assistant over text messages.

Time: Twilio waits at most 15 s for a webhook. A turn passes the assistant a
budget of VOICE_TURN_TIMEOUT_SECONDS (no retries); past it the offline
assistant answers the same turn, so one request always answers in time and no
"please hold" <Redirect> round trip is needed.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from agent.engine import conversation_end, conversation_for_key, conversation_turn
from agent.models import Conversation
from billing.entitlements import has_feature
from billing.plans import PHONE
from booking.phones import phone_normalize_or_none
from booking.selectors import business_region, profile_get, services_list
from tenants.models import Tenant
from voice import services
from voice.models import Call
from voice.webhooks import per_caller, twilio_webhook

LANGUAGE = "en-US"
# Carriers' and Twilio's opt-out words: Twilio answers them itself; we stay silent.
# ("YES", also an opt-in word, is left alone: here it confirms a booking.)
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                           "START", "UNSTOP"})
# "Reply R to reschedule" in a reminder.
RESCHEDULE_WORDS = frozenset({"R"})
RESCHEDULE_REQUEST = "I'd like to reschedule my appointment."

REPROMPT = "Sorry, I didn't catch that. How can I help you?"
GOODBYE_LINK = ("I still can't hear you, so I've texted you a link to book online. "
                "Thank you for calling. Goodbye!")
GOODBYE_NO_LINK = ("I still can't hear you. You can book online on our website. "
                   "Thank you for calling. Goodbye!")
LEAVE_MESSAGE = ("No one can take your call right now. Please leave a message after the "
                 "tone, and the team will call you back.")
MESSAGE_THANKS = "Thank you, your message has been passed on. Goodbye!"
NO_MESSAGE = "I didn't get a message. Goodbye!"
DIAL_FAILED = "Sorry, no one could answer. Please try again later. Goodbye!"
UNKNOWN_CALL = "Sorry, this call can't be continued. Please call again. Goodbye!"


def turn_timeout() -> float:
    return float(settings.VOICE_TURN_TIMEOUT_SECONDS)


def _url(tenant: Tenant, endpoint: str, query: str = "") -> str:
    # Absolute: Twilio signs the URL it requests, and that must be the public one.
    return f"{settings.PUBLIC_BASE_URL}/voice/{tenant.slug}/{endpoint}{query}"


def _twiml(response: VoiceResponse | MessagingResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


def _business_name(tenant: Tenant) -> str:
    return profile_get().display_name or tenant.name


def _hints() -> str:
    names = list(services_list().values_list("name", flat=True)[:50])
    return ", ".join([*names, "talk to a person", "cancel", "reschedule"])


def spoken(text: str) -> str:
    """The assistant's text as it should sound (a typed "(yes/no)" is not read out)."""
    return text.replace(" (yes/no)", "").replace("(yes/no)", "").strip()


def _say(response: VoiceResponse | Gather, text: str) -> None:
    response.say(spoken(text), language=LANGUAGE)


def _listen(response: VoiceResponse, tenant: Tenant, prompt: str) -> None:
    """Say ``prompt`` and wait for speech; silence also comes back to ``turn``."""
    action = _url(tenant, "turn")
    gather = Gather(input="speech", speech_timeout="auto", action=action, method="POST",
                    hints=_hints(), language=LANGUAGE, action_on_empty_result=True)
    _say(gather, prompt)
    response.append(gather)
    # Carriers that ignore actionOnEmptyResult fall through to here: same as silence.
    response.redirect(action, method="POST")


def _hang_up(response: VoiceResponse, text: str) -> HttpResponse:
    _say(response, text)
    response.hangup()
    return _twiml(response)


def _caller(request: HttpRequest) -> str:
    return request.POST.get("From", "")


def _paused(tenant: Tenant) -> str:
    return (f"Sorry, {tenant.name} isn't taking calls on this line at the moment. "
            "Please try again later. Goodbye!")


def _not_on_plan(request: HttpRequest, tenant: Tenant, call: Call | None) -> HttpResponse:
    texted = services.booking_link_send(to=_caller(request))
    name = _business_name(tenant)
    text = (f"Thank you for calling {name}. You can book online anytime"
            + (", and I've just texted you the link." if texted else " on our website.")
            + " Goodbye!")
    if call is not None:
        services.call_set_outcome(call=call, outcome=Call.Outcome.NOT_ON_PLAN)
    return _hang_up(VoiceResponse(), text)


def _voice_allowed(tenant: Tenant) -> bool:
    return tenant.is_active and has_feature(tenant, PHONE)


# --- the call ------------------------------------------------------------------------------


@twilio_webhook
@per_caller("voice_number")
def incoming(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    call_sid = request.POST.get("CallSid", "")
    caller, called = _caller(request), request.POST.get("To", "")
    if not call_sid:
        return HttpResponse(status=400)
    if not tenant.is_active:
        services.call_begin(call_sid=call_sid, caller=caller, called=called,
                            outcome=Call.Outcome.UNAVAILABLE)
        return _hang_up(VoiceResponse(), _paused(tenant))
    if not has_feature(tenant, PHONE):
        call = services.call_begin(call_sid=call_sid, caller=caller, called=called)
        return _not_on_plan(request, tenant, call)
    conversation = conversation_for_key(channel=Conversation.Channel.PHONE,
                                        external_key=call_sid, customer_phone=caller)
    services.call_begin(call_sid=call_sid, caller=caller, called=called,
                        conversation=conversation)
    response = VoiceResponse()
    _listen(response, tenant, f"Thank you for calling {_business_name(tenant)}. I'm the "
                              "booking assistant. How can I help you today?")
    return _twiml(response)


@twilio_webhook
@per_caller("voice_number")
def turn(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    call = services.call_get(request.POST.get("CallSid", ""))
    if call is None or call.conversation is None:
        # Not a call this business answered (or a CallSid from elsewhere): no state to continue.
        return _hang_up(VoiceResponse(), UNKNOWN_CALL)
    if not tenant.is_active:
        return _hang_up(VoiceResponse(), _paused(tenant))
    if not has_feature(tenant, PHONE):
        return _not_on_plan(request, tenant, call)
    if request.GET.get("step") == "recorded":
        return _recorded(request, call)

    speech = request.POST.get("SpeechResult", "").strip()
    if not speech:
        return _silence(request, tenant, call)
    services.call_heard(call=call)
    handed_off_before = call.conversation.outcome == Conversation.Outcome.HANDED_OFF
    result = conversation_turn(conversation=call.conversation, text=speech,
                               timeout=turn_timeout())
    services.call_outcome_from_conversation(call=call, conversation_outcome=result.outcome)
    response = VoiceResponse()
    if result.outcome == Conversation.Outcome.HANDED_OFF and (
        result.finished or not handed_off_before
    ):
        # On the phone "a person, please" means now: put the call through.
        text = result.text if result.finished else (
            f"Of course. I'm passing you to a member of the team at {_business_name(tenant)}."
        )
        return _hand_off(response, tenant, call, text)
    if result.finished:
        if call.outcome == Call.Outcome.OPEN:
            services.call_set_outcome(call=call, outcome=Call.Outcome.ENDED)
        return _hang_up(response, result.text)
    _listen(response, tenant, result.text)
    return _twiml(response)


def _silence(request: HttpRequest, tenant: Tenant, call: Call) -> HttpResponse:
    response = VoiceResponse()
    if services.call_silence(call=call) < 2:
        _listen(response, tenant, REPROMPT)
        return _twiml(response)
    texted = services.booking_link_send(to=call.caller or _caller(request))
    services.call_set_outcome(call=call, outcome=Call.Outcome.LINK_TEXTED)
    if call.conversation is not None:
        conversation_end(conversation=call.conversation, outcome="abandoned")
    return _hang_up(response, GOODBYE_LINK if texted else GOODBYE_NO_LINK)


def _hand_off(response: VoiceResponse, tenant: Tenant, call: Call, text: str) -> HttpResponse:
    listed = profile_get().phone
    phone = phone_normalize_or_none(listed, region=business_region()) if listed else None
    _say(response, text)
    if phone:
        services.call_set_outcome(call=call, outcome=Call.Outcome.TRANSFERRED)
        response.dial(phone, timeout=25)
        # <Dial> falls through here when nobody answers.
        return _hang_up(response, DIAL_FAILED)
    _say(response, LEAVE_MESSAGE)
    response.record(
        action=_url(tenant, "turn", "?step=recorded"), method="POST", max_length=120,
        timeout=5, play_beep=True, transcribe=True,
        transcribe_callback=_url(tenant, "status", "?event=transcription"),
    )
    return _hang_up(response, NO_MESSAGE)


def _recorded(request: HttpRequest, call: Call) -> HttpResponse:
    recording = request.POST.get("RecordingUrl", "")
    if recording:
        services.call_message_store(call=call, recording_url=recording)
        return _hang_up(VoiceResponse(), MESSAGE_THANKS)
    return _hang_up(VoiceResponse(), NO_MESSAGE)


@twilio_webhook
def status(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    call_sid = request.POST.get("CallSid", "")
    if not call_sid:
        return HttpResponse(status=400)
    if request.GET.get("event") == "transcription":
        call = services.call_get(call_sid)
        if call is not None:
            services.call_message_store(
                call=call, transcription=request.POST.get("TranscriptionText", "")
            )
        return HttpResponse(status=204)
    raw_duration = request.POST.get("CallDuration", "")
    services.call_record_status(
        call_sid=call_sid, status=request.POST.get("CallStatus", ""),
        duration=int(raw_duration) if raw_duration.isdigit() else None,
        caller=_caller(request), called=request.POST.get("To", ""),
    )
    return HttpResponse(status=204)


# --- text messages -------------------------------------------------------------------------


@twilio_webhook
@per_caller("sms_number")
def sms(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    response = MessagingResponse()
    body = request.POST.get("Body", "").strip()
    sender = phone_normalize_or_none(_caller(request), region=business_region())
    if not sender or body.upper() in OPT_OUT_WORDS:
        # Opt-outs are Twilio's to confirm; a number we cannot read gets nothing.
        return _twiml(response)
    if not tenant.is_active:
        response.message(f"Sorry, {tenant.name} isn't taking bookings by text at the moment.")
        return _twiml(response)
    if not has_feature(tenant, PHONE):
        response.message(f"{_business_name(tenant)}: book your appointment online at "
                         f"{services.booking_link()}")
        return _twiml(response)
    if body.upper() in RESCHEDULE_WORDS:
        body = RESCHEDULE_REQUEST
    conversation = conversation_for_key(channel=Conversation.Channel.SMS, external_key=sender,
                                        customer_phone=sender)
    result = conversation_turn(conversation=conversation, text=body, timeout=turn_timeout())
    response.message(result.text)
    return _twiml(response)
