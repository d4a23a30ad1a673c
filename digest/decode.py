"""Bytes of a local document -> text: the only module that imports charset-normalizer.

A file says nothing about its encoding, so it is found in this order: a byte
order mark (UTF-8, UTF-16, UTF-32), then strict UTF-8 (most files), then
charset-normalizer's detection (Latin-1, Windows-1252, Shift JIS, ...). A file
that is none of these, or holds NUL bytes without a UTF-16/32 mark, is binary:
`BinaryDocumentError`, so it is skipped rather than shown as noise.
"""

from __future__ import annotations

import codecs

from digest.errors import ExtractError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_COMMONEST = "cp1252"
_CONTROL_SHARE = 0.05  # more control characters than this in the decoded text: binary after all
_SAMPLE = 64 * 1024  # bytes charset-normalizer looks at; a bigger file is decoded whole with its answer


class BinaryDocumentError(ExtractError):
    """The bytes are not text in any encoding we can tell."""


def decode_document(raw: bytes, cut: bool = False) -> str:
    """The text of a document's bytes (without a byte order mark); BinaryDocumentError if it is not text.

    `cut`: the bytes are the start of a longer file, so a character cut in two at the end is dropped."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return _text_only(_decode(raw[len(bom) :], encoding, cut))
            except UnicodeDecodeError:
                raise BinaryDocumentError(f"not valid {encoding.upper()} after its byte order mark") from None
    if b"\0" in raw[:_SAMPLE]:
        raise BinaryDocumentError("binary file (NUL bytes and no UTF-16/32 byte order mark)")
    try:
        return _text_only(_decode(raw, "utf-8", cut))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(raw[:_SAMPLE])
    best = matches.best()
    if best is None or best.encoding is None:
        raise BinaryDocumentError("binary file (no text encoding fits its bytes)")
    encoding = best.encoding
    # A short Western text fits several single-byte code pages equally well: then the web's
    # most common one, Windows-1252 (what browsers read "latin-1" as), is the likeliest.
    if any(m.encoding == _COMMONEST and (m.chaos, m.coherence) == (best.chaos, best.coherence) for m in matches):
        encoding = _COMMONEST
    try:
        return _text_only(_decode(raw, encoding, cut))
    except UnicodeDecodeError:  # the sample fitted, a later byte does not
        return _text_only(raw.decode(encoding, errors="replace"))


def _decode(raw: bytes, encoding: str, cut: bool) -> str:
    return codecs.getincrementaldecoder(encoding)().decode(raw, final=not cut)


def _text_only(text: str) -> str:
    """`text`, unless control characters (other than white space) make up more than a sliver of it."""
    sample = text[:_SAMPLE]
    controls = sum(1 for c in sample if c < " " and c not in "\t\n\r\f\v" or "\x7f" <= c < "\xa0")
    if sample and controls > len(sample) * _CONTROL_SHARE:
        raise BinaryDocumentError("binary file (mostly control characters)")
    return text
