"""A small, valid PDF of a sandbox invoice, written by hand (PDF 1.4: one page, Helvetica),
so the sandbox serves `.../invoices/{id}/pdf` without a PDF library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_LEFT = 56
_TOP = 780
_LINE = 16


def _text(value: object) -> str:
    """PDF string contents: Helvetica's WinAnsi covers Latin-1 at best, so anything else is
    a `?`; backslashes and parentheses are escaped."""
    text = str(value).encode("latin-1", "replace").decode("latin-1")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _amount(total: float, credit_type: Mapping[str, Any]) -> str:
    if credit_type.get("name") == "USD (cents)":
        sign = "-" if total < 0 else ""
        return f"{sign}${abs(total) / 100:,.2f}"
    return f"{total:,.2f} {credit_type.get('name', '')}"


def invoice_pdf(invoice: Mapping[str, Any], customer_name: str) -> bytes:
    lines = [
        ("F2", 18, "Invoice"),
        ("F1", 11, f"Customer: {customer_name}"),
        ("F1", 11, f"Invoice ID: {invoice['id']}"),
        ("F1", 11, f"Status: {invoice['status']}    Type: {invoice['type']}"),
        ("F1", 11, f"Period: {invoice['start_timestamp'][:10]} to {invoice['end_timestamp'][:10]}"),
        ("F1", 11, ""),
    ]
    for item in invoice["line_items"][:30]:
        lines.append(("F1", 11, f"{item['name']}: {_amount(item['total'], item['credit_type'])}"))
    lines.append(("F2", 12, f"Total: {_amount(invoice['total'], invoice['credit_type'])}"))
    lines.append(("F1", 8, "Sandbox data: not a real invoice."))

    content = ["BT", f"{_LEFT} {_TOP} Td"]
    for index, (font, size, text) in enumerate(lines):
        if index:
            content.append(f"0 -{_LINE + (6 if index == 1 else 0)} Td")
        content.append(f"/{font} {size} Tf ({_text(text)}) Tj")
    content.append("ET")
    stream = "\n".join(content).encode("latin-1")

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
