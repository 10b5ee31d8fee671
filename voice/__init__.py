"""Phone calls and text messages to a business, answered by its booking assistant.

Webhooks (all POST, signed by Twilio, see ``voice.webhooks``):

    /voice/<slug>/incoming   a call starts            (greeting + speech <Gather>)
    /voice/<slug>/turn       the caller said something (or nothing)
    /voice/<slug>/status     call status callbacks; ``?event=transcription`` for messages
    /voice/<slug>/sms        an incoming text message
    /voice/incoming, /voice/status, /voice/sms
                             the same, the business found by the called number
                             (``To`` = ``Tenant.phone_number``): what a Twilio
                             number's own webhook settings point at

A call's later requests always go to the slug URLs the TwiML names, so a turn
never depends on the number lookup. The turn's time budget and the choice of
answering within the one request (no filler + <Redirect>) are explained in
``voice.views``.
"""
