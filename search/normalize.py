"""One normal form for what is indexed and for what is typed into the search box."""
import unicodedata

KEY_LENGTH = 200  # search_keys.key

# Dropped: every punctuation (dashes, parentheses, the middle dot of "买买提·艾力", quotes,
# %, _, *), separator (spaces, full-width too) and control or format character, and "+".
_DROPPED = ("P", "Z", "C")


def normalize(text):
    """NFKC (full-width digits and letters become half-width), case-folded (an ID number's
    "x" is its "X"), without spaces, dashes or other punctuation; at most KEY_LENGTH
    characters. The same function builds the index and reads the query, so any spelling of
    an identifier that differs only in these respects finds it."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    kept = "".join(ch for ch in folded
                   if ch != "+" and unicodedata.category(ch)[0] not in _DROPPED)
    # casefold may decompose again (e.g. "ß" → "ss"); NFKC once more keeps it canonical.
    return unicodedata.normalize("NFKC", kept)[:KEY_LENGTH]


def phone_keys(phone):
    """A phone's keys: the number as written, and without China's country code, so that
    "+86 138 0000 0000" is found by "13800000000"."""
    key = normalize(phone)
    if not key:
        return set()
    keys = {key}
    if key.startswith("86") and len(key) == 13:
        keys.add(key[2:])
    if key.startswith("0086") and len(key) == 15:
        keys.add(key[4:])
    return keys


# A name's suffixes are indexed so that any part of it is a key prefix; a long company name
# gives at most this many.
MAX_SUFFIXES = 40


def name_keys(name):
    """Every suffix of the normalized name (a part of the name is the prefix of one)."""
    key = normalize(name)
    return {key[at:] for at in range(min(len(key), MAX_SUFFIXES))}
