"""The printable credential: an A4 page (PDF, fpdf2) with the holder's data in French and
English and a QR code (segno) carrying the signed token, drawn as vector squares so that
it prints sharp at any size. Scanning the QR gives the token; anyone verifies it with the
ministry's published key (domain.verify)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

import segno
from fpdf import FPDF

from consular.credentials.domain import Holder

TITLES = {
    "consular_card": ("CARTE CONSULAIRE", "Consular card"),
    "e_visa": ("VISA ÉLECTRONIQUE", "Electronic visa"),
}
# Module size of the QR code on paper, in millimetres, and its quiet zone in modules.
MODULE_MM = 0.55
QUIET_ZONE = 4


@dataclass(frozen=True)
class PrintedCredential:
    credential_id: str
    credential_type: str
    holder: Holder
    embassy_id: str
    reference: str | None
    issued_at: datetime
    expires_at: datetime
    token: str


def qr_payload(credential: PrintedCredential) -> str:
    """What the QR code carries: the token, as it is (no URL around it)."""
    return credential.token


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR code's modules (True: dark), error correction M (15 % of a worn print)."""
    code = segno.make(payload, error="m", micro=False, boost_error=False)
    return [[bool(v) for v in row] for row in code.matrix]


def printable(value: str) -> str:
    """Text the PDF's core font can print (Latin-1): French accents kept, other letters
    reduced to their base letter where Unicode gives one (ŭ -> u), else '?'. The token in
    the QR code keeps the exact spelling."""
    out = []
    for char in value:
        try:
            char.encode("latin-1")
            out.append(char)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode()
            out.append(base[:1] or "?")
    return "".join(out)


def _row(pdf: FPDF, label_fr: str, label_en: str, value: str) -> None:
    pdf.set_font("helvetica", size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(0, 4, printable(f"{label_fr} / {label_en}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "B", size=12)
    pdf.set_text_color(0, 0, 0)
    pdf.cell(0, 7, printable(value), new_x="LMARGIN", new_y="NEXT")


def _draw_qr(pdf: FPDF, matrix: list[list[bool]], x: float, y: float) -> float:
    """Draw the QR at (x, y) (top left of its quiet zone); returns its width in mm."""
    size = (len(matrix) + 2 * QUIET_ZONE) * MODULE_MM
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(
                x + (QUIET_ZONE + start) * MODULE_MM,
                y + (QUIET_ZONE + r) * MODULE_MM,
                (c - start) * MODULE_MM,
                MODULE_MM,
                style="F",
            )
    return size


def render_pdf(credential: PrintedCredential) -> bytes:
    title_fr, title_en = TITLES.get(credential.credential_type, ("TITRE", "Credential"))
    holder = credential.holder
    pdf = FPDF(format="A4")
    pdf.set_title(printable(f"{title_fr} / {title_en}"))
    pdf.set_author("République togolaise")
    pdf.set_creation_date(credential.issued_at)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("helvetica", "B", size=11)
    pdf.cell(0, 6, printable("RÉPUBLIQUE TOGOLAISE"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    pdf.cell(
        0,
        5,
        printable("Ministère chargé des Togolais de l'extérieur"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(4)
    pdf.set_font("helvetica", "B", size=20)
    pdf.cell(0, 10, printable(title_fr), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    pdf.cell(0, 6, title_en, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    _row(pdf, "Nom", "Surname", holder.family_name)
    _row(pdf, "Prénoms", "Given names", holder.given_name)
    if holder.date_of_birth is not None:
        _row(pdf, "Date de naissance", "Date of birth", holder.date_of_birth.isoformat())
    if holder.passport_number:
        _row(pdf, "Passeport n°", "Passport no.", holder.passport_number)
    if holder.nationality:
        _row(pdf, "Nationalité", "Nationality", holder.nationality)
    _row(pdf, "Délivré par", "Issued by", credential.embassy_id)
    if credential.reference:
        _row(pdf, "Référence", "Reference", credential.reference)
    _row(pdf, "Délivré le", "Issued on", credential.issued_at.date().isoformat())
    _row(pdf, "Valable jusqu'au", "Valid until", credential.expires_at.date().isoformat())
    _row(pdf, "Identifiant", "Credential id", credential.credential_id)
    y = pdf.get_y() + 6
    width = _draw_qr(pdf, qr_matrix(qr_payload(credential)), pdf.l_margin, y)
    pdf.set_xy(pdf.l_margin, y + width + 2)
    pdf.set_font("helvetica", size=8)
    pdf.multi_cell(
        0,
        4,
        printable(
            "Vérifiez ce document en scannant le code : la signature se contrôle avec la clé "
            "publique du ministère (JWKS publié), sans connexion. / Verify this document by "
            "scanning the code: its signature checks against the ministry's published public "
            "key (JWKS), offline."
        ),
    )
    return bytes(pdf.output())
