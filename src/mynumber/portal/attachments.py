"""Attached documents (添付書類) of an application made without the number: the checks a file
passes before anything is stored. Pure functions, no I/O.

Security decisions:

- The type is read from the content's first bytes (PDF ``%PDF-``, JPEG ``FF D8 FF``, PNG's
  8-byte signature); the type the browser declares is never asked. Anything else is refused.
- The stored name is sanitised: no directory part, no control or path characters, NFC, at most
  ``MAX_FILENAME`` characters, and its extension always matches the detected type (a PDF sent as
  ``x.html`` is kept as ``x.html.pdf``): a member of staff who opens a download opens what the
  content is.
- Size and count limits are checked here (MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS); the request
  body limit for the form's path (kernel.limits) bounds what reaches them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from mynumber.portal.interfaces import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    OPTIONAL_DOCUMENTS,
    REQUIRED_DOCUMENTS,
    AttachmentEmpty,
    AttachmentMissing,
    AttachmentTooLarge,
    AttachmentWrongType,
    DocumentUpload,
    InvalidAttachment,
    TooManyAttachments,
)

MAX_FILENAME = 100
# (content type, signature at offset 0, extensions; the first is added when none matches)
SIGNATURES: tuple[tuple[str, bytes, tuple[str, ...]], ...] = (
    ("application/pdf", b"%PDF-", (".pdf",)),
    ("image/jpeg", b"\xff\xd8\xff", (".jpg", ".jpeg")),
    ("image/png", b"\x89PNG\r\n\x1a\n", (".png",)),
)
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*;]')


@dataclass(frozen=True)
class CheckedDocument:
    """A file that passed every check, ready to be stored."""

    kind: str
    filename: str
    content_type: str
    content: bytes
    sha256: str


def content_type(content: bytes) -> str | None:
    """The type the bytes are (by their signature), None when not one accepted."""
    for media_type, signature, _ in SIGNATURES:
        if content.startswith(signature):
            return media_type
    return None


def safe_filename(name: str, media_type: str, kind: str) -> str:
    """The name kept for a file: its last path part, without control or path characters,
    ending in an extension of ``media_type``; ``kind`` + extension when nothing is left."""
    extensions = next(e for t, _, e in SIGNATURES if t == media_type)
    text = unicodedata.normalize("NFC", str(name))
    text = re.split(r"[/\\]", text)[-1]  # a browser may send C:\\path\\name.pdf
    text = _UNSAFE.sub("_", text)
    text = " ".join(text.split()).strip(" .")  # no leading dot: never a hidden file
    if not text.lower().endswith(extensions):
        text = f"{text}{extensions[0]}" if text else f"{kind}{extensions[0]}"
    if len(text) > MAX_FILENAME:  # shortened before the extension, which stays
        stem, dot, ext = text.rpartition(".")
        text = f"{stem[:MAX_FILENAME - len(ext) - 1]}{dot}{ext}"
    return text


def check_documents(uploads: Sequence[DocumentUpload]) -> list[CheckedDocument]:
    """Every upload checked, in order; the first refusal raises (its ``field`` the input).
    Every required document must be there; none is stored by this function."""
    if len(uploads) > MAX_ATTACHMENTS:
        # The field named is the one that brought the count over the limit.
        raise TooManyAttachments(
            f"at most {MAX_ATTACHMENTS} files can be attached to one application",
            field=uploads[MAX_ATTACHMENTS].field)
    checked: list[CheckedDocument] = []
    for upload in uploads:
        if not isinstance(upload, DocumentUpload):
            raise InvalidAttachment("documents: not an uploaded file", field="documents")
        if upload.kind not in REQUIRED_DOCUMENTS + OPTIONAL_DOCUMENTS:
            raise InvalidAttachment("unknown kind of document", field=upload.field)
        if not upload.content:
            raise AttachmentEmpty("the file is empty", field=upload.field)
        if len(upload.content) > MAX_ATTACHMENT_BYTES:
            raise AttachmentTooLarge(
                f"a file can have at most {MAX_ATTACHMENT_BYTES} bytes", field=upload.field)
        media_type = content_type(upload.content)
        if media_type is None:
            raise AttachmentWrongType("attach a PDF, JPEG or PNG file", field=upload.field)
        checked.append(CheckedDocument(
            kind=upload.kind, filename=safe_filename(upload.filename, media_type, upload.kind),
            content_type=media_type, content=upload.content,
            sha256=hashlib.sha256(upload.content).hexdigest()))
    attached = {c.kind for c in checked}
    for kind in REQUIRED_DOCUMENTS:
        if kind not in attached:
            raise AttachmentMissing("attach this document", field=f"document_{kind}")
    return checked
