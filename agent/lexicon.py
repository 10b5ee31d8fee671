"""Word tables for the offline language parser (agent.language).

Kept apart from the parsing logic so the vocabulary can grow without touching
the rules. Everything here is lower case.
"""

from __future__ import annotations


def _words(text: str) -> list[str]:
    return text.split()


WEEKDAYS: dict[str, int] = {
    "monday": 0,
    "mon": 0,
    "tuesday": 1,
    "tue": 1,
    "tues": 1,
    "wednesday": 2,
    "wed": 2,
    "weds": 2,
    "thursday": 3,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "friday": 4,
    "fri": 4,
    "saturday": 5,
    "sat": 5,
    "sunday": 6,
    "sun": 6,
}

# Abbreviations that are also English words: only read as weekdays after a cue
# word ("on sat", "next wed") or when they are the whole message.
AMBIGUOUS_WEEKDAYS = frozenset({"wed", "sat", "sun", "mon"})

MONTHS: dict[str, int] = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}

UNITS: dict[str, int] = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
TEENS: dict[str, int] = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS: dict[str, int] = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}

ORDINAL_UNITS: dict[str, int] = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
}
ORDINAL_TEENS: dict[str, int] = {
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}


def _ordinal_words() -> dict[str, int]:
    words = {**ORDINAL_UNITS, **ORDINAL_TEENS}
    for tens, value in (("twenty", 20), ("thirty", 30)):
        for unit, n in ORDINAL_UNITS.items():
            if value + n <= 31:
                words[f"{tens}-{unit}"] = value + n
                words[f"{tens} {unit}"] = value + n
    return words


ORDINAL_WORDS: dict[str, int] = _ordinal_words()

# Spoken digits in phone numbers ("two one two, five five five ...").
DIGIT_WORDS: dict[str, str] = {
    **{word: str(n) for word, n in UNITS.items()},
    "oh": "0",
    "o": "0",
}

# Shorthand and frequent misspellings, rewritten before anything else reads
# the text. Values may be several words.
ALIASES: dict[str, str] = {
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "tmrow": "tomorrow",
    "tmoro": "tomorrow",
    "tomoz": "tomorrow",
    "2moro": "tomorrow",
    "2morrow": "tomorrow",
    "2mrw": "tomorrow",
    "2day": "today",
    "2nite": "tonight",
    "tonite": "tonight",
    "wensday": "wednesday",
    "wendsday": "wednesday",
    "wednsday": "wednesday",
    "thrusday": "thursday",
    "thursady": "thursday",
    "appt": "appointment",
    "appts": "appointments",
    "appointement": "appointment",
    "apointment": "appointment",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "thnx": "thanks",
    "thanx": "thanks",
    "tks": "thanks",
    "ty": "thanks",
    "tysm": "thanks",
    "u": "you",
    "ur": "your",
    "wanna": "want to",
    "gonna": "going to",
    "im": "i'm",
    "ive": "i've",
    "dont": "don't",
    "cant": "can't",
    "wont": "won't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "isnt": "isn't",
    "arent": "aren't",
    "couldnt": "couldn't",
    "wouldnt": "wouldn't",
    "shouldnt": "shouldn't",
    "whats": "what's",
    "thats": "that's",
    "lets": "let's",
    "whens": "when's",
    "wheres": "where's",
    "hows": "how's",
    "theres": "there's",
    "youre": "you're",
    "yea": "yeah",
    "yah": "yeah",
    "ok": "okay",
    "k": "okay",
    "kk": "okay",
    "cancelation": "cancellation",
    "cancle": "cancel",
    "cancell": "cancel",
    "waitinglist": "waitlist",
    "thankyou": "thank you",
    "goodmorning": "good morning",
    "recepcionist": "receptionist",
    "mins": "minutes",
    "min": "minutes",
    "hrs": "hours",
    "hr": "hour",
    "wk": "week",
    "wks": "weeks",
    "nxt": "next",
    "nite": "night",
    "arvo": "afternoon",
    "noonish": "noon",
}

# Words that the parser itself relies on and that a typo may hide: an unknown
# token within edit distance 1 (2 for words of eight letters or more) of
# exactly one of these is read as that word.
CORRECTABLE: tuple[str, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "today",
    "tomorrow",
    "tonight",
    "morning",
    "afternoon",
    "evening",
    "weekend",
    "appointment",
    "appointments",
    "booking",
    "bookings",
    "cancel",
    "cancellation",
    "reschedule",
    "available",
    "availability",
    "waitlist",
    "schedule",
    "receptionist",
    "representative",
    "please",
    "thanks",
    "thank",
    "hello",
    "goodbye",
    "actually",
    "instead",
    "earliest",
    "anything",
    "something",
    "openings",
    "o'clock",
)

# Words that are never part of a person's name (they end a name after "my
# name is ..."), nor a staff name on their own.
NAME_STOP = frozenset(
    _words(
        """
    a an the and or but so if then than to of in on at by for from with without about
    is am are was were be been being do does did have has had would can could
    shall should might must i i'm i'd i'll i've me my mine you your we our us
    it it's its this that these those there here not no yes please thanks thank
    calling speaking phoning texting looking trying hoping wondering writing
    interested available free new just also too very really again still
        """
    )
)

# Everyday English plus everything the parser itself understands. A word in this
# set is not taken as a name without a strong cue ("my name is ..."), and is not
# spell-corrected into a service name.
_COMMON = """
a about above after again against ago ahead all almost alone along already also
although always am among an and another any anybody anyone anything anytime
anyway anywhere are aren't around as ask asked asking at available away back
bad be because become been before behind being below best better between big
bit both bring brought busy but buy by call called calling came can can't
cannot care case certain change changed check checked clear close closed come
comes coming could couldn't day days did didn't different do does doesn't doing
don't done down during each early earlier easy either else end enough even
evening ever every everyone everything exactly except fast few find fine first
for found free from full get gets getting give given glad go goes going gone
good got great had half happy hard has hasn't have haven't having he help her
here hers herself hey hi him himself his hold home hope hoping how however i
i'd i'll i'm i've if in instead into is isn't it it's its itself just keep
kind know last late later least left less let let's like likely little long
look looking lot love made make makes making many may maybe me mean means
might mind mine minute minutes miss more morning most much must my myself need
needed needs never new next nice night no nobody none nope nor not nothing now
of off often oh okay old on once one only open or other others our out over
own part past people perhaps person please plus possible pretty probably put
quick quickly quite rather ready real really right said same saw say says see
seem seen send sent set several shall she short should shouldn't show since
so some somebody someone something sometime sometimes somewhere soon sorry
still stop such suppose sure take taken talk tell than thank thanks that
that's the their them then there there's these they thing things think this
those though through till time times to today together told too took try
trying under until up upon us use used very visit wait want wanted wants was
wasn't way we week weeks well went were what what's whatever when where which
while who whole whom whose why will with within without won't work works
would wouldn't yeah yes yet you you're your yours yourself
appointment appointments booking bookings book booked reservation reserve
schedule scheduled reschedule cancel cancelled canceled cancellation
slot slots opening openings availability waitlist list option options choice
number phone email address name surname reference code confirmation
morning afternoon evening tonight noon midday midnight lunch lunchtime
weekend weekday tomorrow yesterday week month year hour hours am pm o'clock
price prices cost costs charge fee fees much how many hours open closed
service services treatment treatments offer offers menu policy location
receptionist human someone somebody representative agent operator staff
doctor dr dr. mr mrs ms miss sir madam mister doctor's
hello hiya howdy greetings bye goodbye cheers welcome
yep yup yeah sure okay alright correct perfect great cool awesome excellent
lovely fine wonderful amazing brilliant sounds sound works work
nah nope wrong incorrect neither nevermind actually instead correction
anything everything nothing something earliest latest soonest asap first
second third fourth fifth last next previous other another same
today tomorrow tonight
morning afternoon evening night day days
calling speaking texting wondering interested hoping trying looking waiting
checking booking getting making asking
flexible urgent emergency pain sick ill new returning regular patient client
customer guest walk-in
cancer counsel parcel panel channel cooking hooking lease
here there please thanks thank sorry excuse pardon welcome
"""


def _build_vocabulary() -> frozenset[str]:
    words = set(_words(_COMMON))
    words.update(WEEKDAYS)
    words.update(f"{day}s" for day in WEEKDAYS if len(day) > 3)
    words.update(MONTHS)
    words.update(UNITS)
    words.update(TEENS)
    words.update(TENS)
    words.update(ORDINAL_UNITS)
    words.update(ORDINAL_TEENS)
    words.update(CORRECTABLE)
    words.update(NAME_STOP)
    words.update(ALIASES)
    return frozenset(words)


VOCABULARY: frozenset[str] = _build_vocabulary()

# Words too generic to pick a service on their own ("new patient exam" is not
# meant by "a new appointment"). A service is still chosen when all its words
# are present.
GENERIC_SERVICE_WORDS = frozenset(
    _words(
        """
    and with for of the a an in on at to or by per plus
    new regular standard basic simple full half quick short long extended mini
    express deluxe premium special first follow up followup initial
    appointment appointments visit session sessions service services treatment
    treatments consultation procedure package class lesson
    patient patients client adult adults child children kid kids men women man
    woman mens womens ladies gents boys girls senior student
    minute minutes min mins hour hours hr hrs
            """
    )
)

# Words a customer uses for a service name (stems on both sides). Kept short:
# a wrong synonym books the wrong thing.
SERVICE_SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset({"checkup", "exam", "examination"}),
    frozenset({"clean", "hygiene"}),
    frozenset({"whiten", "bleach"}),
    frozenset({"haircut", "trim"}),
    frozenset({"consult", "consultation"}),
    frozenset({"color", "colour"}),
    frozenset({"xray", "radiograph"}),
)

STAFF_TITLES = frozenset(
    {"dr", "doctor", "mr", "mrs", "ms", "miss", "mx", "prof", "professor", "nurse", "dr."}
)
