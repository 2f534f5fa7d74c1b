"""UID replacement: a keyed HMAC of the original UID, written as a ``2.25.<integer>`` UID.

``2.25`` is the root for UIDs made from a UUID (PS3.5 B.2): the first 128 bits of the HMAC,
marked as a version-8 ("custom") UUID, give an integer of at most 39 digits, so the UID has
at most 44 characters (the limit is 64). The same key maps a UID to the same replacement in
every file, series, study and run, which keeps references between objects intact.

Well-known UIDs (SOP classes, transfer syntaxes, DICOM coding schemes and context groups:
everything under the DICOM root ``1.2.840.10008``) are never replaced.
"""

from __future__ import annotations

from pydicom.uid import UID

from medsight.deid.keys import keyed_digest

__all__ = ["UIDMap", "names_a_class", "replace_uid"]

# Unlisted UI attributes whose keyword ends so name a class, a transfer syntax or a coding
# scheme (SNOMED CT is 2.16.840.1.113883.6.96, outside the DICOM root), not an instance.
_CLASS_SUFFIXES = (
    "ClassUID",
    "ClassUIDInFile",
    "TransferSyntaxUID",
    "TransferSyntaxUIDInFile",
    "CodingSchemeUID",
    "MappingResourceUID",
    "ContextUID",
    "SOPClassesInStudy",
)


def replace_uid(key: bytes, uid: str) -> str:
    """The replacement of `uid` under `key`; well-known and empty UIDs come back unchanged."""
    uid = str(uid).rstrip("\0 ")  # a UID may be padded to even length with NUL (or a space)
    if not uid or not UID(uid).is_private:
        return uid
    bits = bytearray(keyed_digest(key, "uid", uid)[:16])
    bits[6] = (bits[6] & 0x0F) | 0x80  # UUID version 8
    bits[8] = (bits[8] & 0x3F) | 0x80  # RFC 9562 variant
    return f"2.25.{int.from_bytes(bits, 'big')}"


def names_a_class(keyword: str) -> bool:
    """True for attributes that hold class, transfer syntax or coding scheme UIDs."""
    return keyword.endswith(_CLASS_SUFFIXES)


class UIDMap:
    """`replace_uid` with one key, remembering what it replaced (for a re-identification table)."""

    def __init__(self, key: bytes):
        self._key = key
        self.replaced: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        new = self.replaced.get(uid)
        if new is None:
            new = replace_uid(self._key, uid)
            if new != uid:
                self.replaced[uid] = new
        return new
