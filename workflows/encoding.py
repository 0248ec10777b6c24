"""BPMN files saved in another encoding than UTF-8 (GBK, GB18030, UTF-16 — common for files
saved by Chinese tools) become UTF-8 before anything reads them: decoded by the byte-order
mark or the XML declaration, the declaration made to say UTF-8, nothing else touched (the
lines stay where they were, so problems keep their line numbers). A file that is UTF-8
already (no declaration, or one saying UTF-8) is left byte for byte."""
import codecs
import re

_DECLARED = re.compile(rb'\A\s*<\?xml[^>]*?\bencoding\s*=\s*["\']([A-Za-z0-9._:-]+)["\']')
_DECLARATION_TEXT = re.compile(r'\A(\s*<\?xml[^>]*?\bencoding\s*=\s*["\'])([A-Za-z0-9._:-]+)')
# UTF-16 told by its byte-order mark, or by the "<" of the declaration without one.
_WIDE = ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
         (b"<\x00", "utf-16-le"), (b"\x00<", "utf-16-be"))
# The Chinese national encodings read as GB18030, which contains GB2312 and GBK: files
# declared GB2312 often hold GBK characters.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030"}


def _codec(data):
    for start, codec in _WIDE:
        if data.startswith(start):
            return codec
    declared = _DECLARED.match(data)
    if declared is None:
        return None
    try:
        name = codecs.lookup(declared.group(1).decode("ascii")).name
    except LookupError:
        return None  # validation says the file is not UTF-8
    return None if name == "utf-8" else _SUPERSETS.get(name, name)


def to_utf8(xml):
    """The document's bytes as UTF-8; unchanged when already UTF-8, or when it cannot be read
    in the encoding it declares (validation then reports why, as for any bad file)."""
    data = bytes(xml)
    codec = _codec(data)
    if codec is None:
        return data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return data
    text = _DECLARATION_TEXT.sub(r"\1UTF-8", text.lstrip("\ufeff"), count=1)
    return text.encode("utf-8")
