"""The words a search looks for: a customer's message without its noise, plus the words
the documents use for what customers call something else."""

from __future__ import annotations

import re

from agentdesk.runtime.knowledge import STOP_WORDS

MAX_QUERY_WORDS = 32  # a long message is searched by its first words: enough, and bounded
_WORD = re.compile(r"[^\W_]+")

# Words a customer's message is full of that say nothing about its topic: function words
# (beyond the runtime's short list), greetings and sign-offs, and the frame of a question
# ("how long does it take", "I need to know"). They would match, and rank, passages at random.
_NOISE = """
    about above after again against all also am any anyone anything anyway around away be been
    before being below between both but could did doing done down during each either else even
    ever every few further had has have having he her here hers herself him himself his im into
    isnt its itself ive just let lets me might mine more most much must myself need needs no nor
    not now off once only other ought ours ourselves out over own same shall she should so some
    something still such than that thats their theirs them themselves then there theres these
    they this those through too under until up upon us very we were what whats whom would yet
    youre yours yourself dont doesnt didnt cant wont isnt arent wasnt werent couldnt wouldnt
    shouldnt havent hasnt hadnt ill id youve weve
    hi hello hey dear thanks thank thx cheers regards best kind kindly please pls sir madam team
    morning afternoon evening quick question questions wondering wonder know tell told ask
    asking asked help want wanted like get got getting go going way really actually already
    advance possible happen happens happened anything ok okay hope hoping sure mean
    long take takes took make made see look looking find usually normally
"""
NOISE_WORDS = STOP_WORDS | frozenset(_NOISE.split())

# The words customers use for what the documents call something else: a question that
# contains a phrase on the left is also searched for the words on the right. General
# vocabulary of shop support, not of particular documents. A phrase matches its words in
# order with up to two words between them ("send it back", "sent my headphones back").
THESAURUS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("money back", "my money", "reimburse", "reimbursed", "reimbursement", "refunded",
      "credited", "paid back", "pay me back"), "refund"),
    (("never used", "not used", "unopened", "still sealed", "sealed", "original box",
      "tags on"), "unused original packaging"),
    (("send back", "send it back", "sent back", "sent it back", "bring back", "bring it back",
      "give back", "take back", "ship back", "post back", "mail back"), "return"),
    (("swap", "switch it", "trade in", "different size", "different colour", "different color",
      "bigger", "smaller", "too small", "too big", "too large", "too tight"), "exchange size"),
    (("voucher", "gift certificate", "egift", "e gift", "store credit"), "gift card"),
    (("coupon", "discount code", "voucher code", "promo", "promotion", "offer code"),
     "promo code discount"),
    (("broken", "broke", "smashed", "cracked", "shattered", "dented", "crushed", "scratched",
      "defective", "dead on arrival", "doa", "in pieces", "pieces"), "damaged faulty"),
    (("stopped working", "not working", "doesnt work", "dont work", "quit working", "died",
      "packed up", "faulty"), "fault warranty"),
    (("postage", "courier", "postman", "mailman", "posted"), "delivery carrier"),
    (("cancel", "cancellation", "stop the order", "stop my order", "stop an order",
      "by mistake", "ordered twice", "dont want it"), "cancel"),
    (("rejected", "declined", "decline", "wont go through", "not going through",
      "payment failed", "card failed", "wont accept"), "declined payment"),
    (("preorder", "preordered", "pre order", "pre ordered", "not released", "back in stock",
      "out of stock", "backorder", "backordered"), "pre order back ordered"),
    (("log in", "login", "logging in", "sign in", "signin", "locked out", "reset email",
      "forgot my password", "forgotten password"), "sign password"),
    (("delete my data", "delete my account", "delete everything", "erase", "gdpr",
      "forget me", "my data", "personal data", "stored about me", "privacy"),
     "delete data privacy"),
    (("receipt", "invoice", "tax number", "vat number", "company name", "accountant",
      "expense"), "invoice receipt"),
    (("pick up", "pickup", "collect", "collection", "in store", "from the shop",
      "from the store"), "collect store pickup"),
    (("which size", "what size", "between sizes", "sizing", "fit", "fits", "measure"),
     "size"),
    (("switch on", "turn on", "power on", "wont start", "wont boot", "black screen",
      "no power", "dead"), "turn on"),
    (("earbud", "earbuds", "earphones", "airpods", "headset", "bluetooth"),
     "headphones earbuds"),
    (("real person", "human", "speak to", "talk to", "call you", "phone number",
      "customer service", "opening hours", "contact"), "contact phone"),
    (("christmas", "xmas", "holiday", "holidays", "present", "birthday present"),
     "holiday gift"),
    (("points", "rewards", "loyalty"), "points reward"),
    (("student", "students", "university", "college", "teacher", "nurse", "nhs"),
     "student discount"),
    (("bulk", "wholesale", "company account", "our company", "our school", "our office",
      "business", "quote"), "business bulk"),
    (("recycle", "recycling", "dispose", "get rid of", "take away", "haul away",
      "old fridge", "old device", "old laptop", "old phone"), "recycling take back old"),
    (("recall", "recalled", "unsafe", "dangerous", "catch fire", "on fire", "overheat",
      "overheating", "safety"), "recall safety"),
    (("dispute", "chargeback", "charge back", "bank claim", "claim with my bank"),
     "dispute chargeback"),
    (("review", "reviews", "rating", "one star", "stars", "feedback"), "review"),
    (("cheaper", "price drop", "price dropped", "price went down", "reduced", "lower price",
      "on sale", "difference"), "price drop"),
    (("charged twice", "double charged", "two charges", "two times", "twice",
      "charged again", "duplicate"), "charged twice"),
    (("tax", "taxes", "customs", "duty", "duties", "import"), "customs duties import"),
    (("membership", "subscription", "subscribe", "renewal", "renew", "renewing",
      "auto renew"), "membership renewal"),
    (("street", "flat", "apartment", "house number", "postcode", "zip", "moved house"),
     "address"),
    (("where is", "wheres", "track", "tracking number", "status"), "tracking"),
    (("missing", "only two", "only one", "not all", "incomplete", "half of"), "missing items"),
    (("wrong", "not what i ordered", "different item", "instead of"), "wrong item"),
    (("lost", "stolen", "never arrived", "never came", "not received", "havent received",
      "didnt receive", "no parcel", "nothing at my door", "not at my door"),
     "delivered not received"),
    (("guarantee", "covered", "cover"), "warranty"),
    (("faster", "quickly", "urgent", "asap", "next day", "by friday", "by monday",
      "tomorrow"), "express shipping"),
    (("normal delivery", "regular delivery", "normal shipping", "regular shipping",
      "how many days"), "standard shipping days"),
    (("abroad", "overseas", "another country", "canada", "europe", "uk", "australia"),
     "international"),
    (("phone order", "over the phone", "by phone", "doesnt use the internet",
      "no internet", "no computer"), "phone order"),
)


def _normal_words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


_PHRASES = [(tuple(tuple(_normal_words(p)) for p in phrases), words.split())
            for phrases, words in THESAURUS]
PHRASE_GAP = 2


def _says(said: list[str], phrase: tuple[str, ...]) -> bool:
    """Whether the words of ``phrase`` occur in ``said`` in order, each at most
    ``PHRASE_GAP`` words after the one before."""
    for start, word in enumerate(said):
        if word != phrase[0]:
            continue
        at = start
        for part in phrase[1:]:
            window = said[at + 1: at + 2 + PHRASE_GAP]
            if part not in window:
                break
            at += 1 + window.index(part)
        else:
            return True
    return False


def query_words(query: str) -> list[str]:
    """The words to search for: the question's own (no noise words, each once), then the
    documents' words for customer phrasings it uses (``THESAURUS``)."""
    said = _normal_words(query)
    words: list[str] = []
    for word in said:
        if len(word) > 1 and word not in NOISE_WORDS and word not in words:
            words.append(word)
            if len(words) == MAX_QUERY_WORDS:
                break
    for phrases, extra in _PHRASES:
        if any(_says(said, phrase) for phrase in phrases):
            words.extend(w for w in extra if w not in words)
    return words
