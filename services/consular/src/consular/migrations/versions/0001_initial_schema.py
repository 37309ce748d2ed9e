"""initial schema: outbox, inbox, audit log (append-only, hash-chained), the applicants
read model, the service catalogue (seeded with the six service types of issue 17),
applications and their history

Revision ID: 0001
Revises:
Create Date: 2026-12-07 20:42:18.563834
"""

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from diaspora_service.migrations import create_plumbing_tables, drop_plumbing_tables


def _labels(fr: str, en: str) -> dict[str, str]:
    return {"fr": fr, "en": en}


def _field(
    name: str,
    type_: str,
    fr: str,
    en: str,
    *,
    required: bool = True,
    options: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "required": required,
        "labels": _labels(fr, en),
        "options": options or [],
    }


def _document(code: str, fr: str, en: str, *, required: bool = True) -> dict[str, Any]:
    return {"code": code, "labels": _labels(fr, en), "required": required}


_APPLICANT_EMBASSY = {"rule": "applicant_embassy", "embassy_id": None}
_KINDS = ["first", "renewal", "replacement"]

# The six service types of issue 17, version 1 (catalogue.domain.ServiceTypeDefinition as
# JSON). Fixed here, not imported: a migration's data never changes with the code. The
# ministry edits them through PUT /catalogue/service-types/{code} (new versions).
SEED_TYPES: dict[str, dict[str, Any]] = {
    "consular_card": {
        "labels": _labels("Carte consulaire", "Consular card"),
        "descriptions": _labels(
            "Atteste votre immatriculation auprès de l'ambassade de votre juridiction.",
            "Proves your registration with the embassy of your jurisdiction.",
        ),
        "form_fields": [
            _field("address_abroad", "text", "Adresse à l'étranger", "Address abroad"),
            _field("profession", "text", "Profession", "Occupation", required=False),
            _field(
                "marital_status",
                "choice",
                "Situation matrimoniale",
                "Marital status",
                options=["single", "married", "divorced", "widowed"],
            ),
            _field("emergency_contact_name", "text", "Personne à prévenir", "Emergency contact"),
            _field(
                "emergency_contact_phone",
                "text",
                "Téléphone de la personne à prévenir",
                "Emergency contact's phone",
            ),
        ],
        "required_documents": [
            _document("identity_document", "Passeport ou carte d'identité", "Passport or ID card"),
            _document("photo", "Photo d'identité", "Passport photo"),
            _document("proof_of_residence", "Justificatif de domicile", "Proof of residence"),
        ],
        "eligibility": "verified_identity_in_jurisdiction",
        "fee": {"amount": "10000.00", "currency": "XOF"},
        "processing": _APPLICANT_EMBASSY,
        "target_processing_days": 15,
    },
    "laissez_passer": {
        "labels": _labels("Laissez-passer", "Laissez-passer (emergency travel document)"),
        "descriptions": _labels(
            "Document de voyage pour rentrer au Togo sans passeport valide.",
            "Travel document to return to Togo without a valid passport.",
        ),
        "form_fields": [
            _field(
                "reason",
                "choice",
                "Motif",
                "Reason",
                options=["lost_passport", "stolen_passport", "expired_passport", "repatriation"],
            ),
            _field("travel_date", "date", "Date du voyage", "Travel date"),
            _field("destination", "text", "Destination", "Destination"),
            _field(
                "expected_return_date",
                "date",
                "Date de retour prévue",
                "Expected return date",
                required=False,
            ),
        ],
        "required_documents": [
            _document("photo", "Photo d'identité", "Passport photo"),
            _document(
                "loss_declaration",
                "Déclaration de perte ou de vol",
                "Loss or theft report",
                required=False,
            ),
            _document("travel_ticket", "Billet de voyage", "Travel ticket", required=False),
        ],
        "eligibility": "verified_identity_in_jurisdiction",
        "fee": {"amount": "15000.00", "currency": "XOF"},
        "processing": _APPLICANT_EMBASSY,
        "target_processing_days": 5,
    },
    "passport_preparation": {
        "labels": _labels(
            "Préparation de demande de passeport", "Passport application preparation"
        ),
        "descriptions": _labels(
            "Dossier préparé à l'ambassade pour l'autorité nationale qui produit les passeports.",
            "File prepared at the embassy for the national authority that produces passports.",
        ),
        "form_fields": [
            _field("request_kind", "choice", "Type de demande", "Request", options=_KINDS),
            _field(
                "previous_passport_number",
                "text",
                "Numéro du passeport précédent",
                "Previous passport number",
                required=False,
            ),
            _field("height_cm", "number", "Taille (cm)", "Height (cm)"),
            _field("place_of_birth", "text", "Lieu de naissance", "Place of birth"),
        ],
        "required_documents": [
            _document("birth_certificate", "Acte de naissance", "Birth certificate"),
            _document(
                "nationality_certificate", "Certificat de nationalité", "Nationality certificate"
            ),
            _document("photo", "Photo d'identité", "Passport photo"),
        ],
        "eligibility": "registered_member",
        "fee": {"amount": "50000.00", "currency": "XOF"},
        "processing": _APPLICANT_EMBASSY,
        "target_processing_days": 30,
    },
    "national_id_preparation": {
        "labels": _labels(
            "Préparation de demande de carte nationale d'identité",
            "National identity card application preparation",
        ),
        "descriptions": _labels(
            "Dossier préparé à l'ambassade pour l'autorité nationale qui produit les cartes.",
            "File prepared at the embassy for the national authority that produces the cards.",
        ),
        "form_fields": [
            _field("request_kind", "choice", "Type de demande", "Request", options=_KINDS),
            _field("place_of_birth", "text", "Lieu de naissance", "Place of birth"),
            _field("father_name", "text", "Nom du père", "Father's name"),
            _field("mother_name", "text", "Nom de la mère", "Mother's name"),
        ],
        "required_documents": [
            _document("birth_certificate", "Acte de naissance", "Birth certificate"),
            _document(
                "nationality_certificate", "Certificat de nationalité", "Nationality certificate"
            ),
            _document("photo", "Photo d'identité", "Passport photo"),
        ],
        "eligibility": "registered_member",
        "fee": {"amount": "6000.00", "currency": "XOF"},
        "processing": _APPLICANT_EMBASSY,
        "target_processing_days": 30,
    },
    "civil_status_transcription": {
        "labels": _labels("Transcription d'acte d'état civil", "Civil-status transcription"),
        "descriptions": _labels(
            "Transcription dans les registres togolais d'une naissance, d'un mariage ou d'un "
            "décès survenu à l'étranger.",
            "Transcription into Togo's registers of a birth, marriage or death abroad.",
        ),
        "form_fields": [
            _field(
                "event_kind",
                "choice",
                "Événement",
                "Event",
                options=["birth", "marriage", "death"],
            ),
            _field("event_date", "date", "Date de l'événement", "Date of the event"),
            _field("event_country", "country", "Pays de l'événement", "Country of the event"),
            _field(
                "local_registry_office",
                "text",
                "Service d'état civil local",
                "Local registry office",
            ),
            _field("persons_concerned", "long_text", "Personnes concernées", "Persons concerned"),
        ],
        "required_documents": [
            _document("local_certificate", "Acte local (copie intégrale)", "Local certificate"),
            _document(
                "certified_translation",
                "Traduction certifiée",
                "Certified translation",
                required=False,
            ),
        ],
        "eligibility": "registered_member",
        "fee": {"amount": "0.00", "currency": "XOF"},
        "processing": _APPLICANT_EMBASSY,
        "target_processing_days": 45,
    },
    "e_visa": {
        "labels": _labels("Visa électronique", "E-visa"),
        "descriptions": _labels(
            "Visa pour les visiteurs étrangers, demandé avec leur propre compte.",
            "Visa for foreign visitors, applied for with their own account.",
        ),
        "form_fields": [
            _field("given_name", "text", "Prénom(s)", "Given name(s)"),
            _field("family_name", "text", "Nom", "Family name"),
            _field("date_of_birth", "date", "Date de naissance", "Date of birth"),
            _field("passport_number", "text", "Numéro de passeport", "Passport number"),
            _field(
                "passport_expiry_date",
                "date",
                "Date d'expiration du passeport",
                "Passport expiry date",
            ),
            _field("nationality", "country", "Nationalité", "Nationality"),
            _field("arrival_date", "date", "Date d'arrivée", "Arrival date"),
            _field("stay_days", "number", "Durée du séjour (jours)", "Length of stay (days)"),
            _field(
                "purpose",
                "choice",
                "Motif du voyage",
                "Purpose of travel",
                options=["tourism", "business", "family", "conference", "transit"],
            ),
        ],
        "required_documents": [
            _document("passport_scan", "Page d'identité du passeport", "Passport data page"),
            _document("photo", "Photo d'identité", "Passport photo"),
        ],
        "eligibility": "none",
        "fee": {"amount": "25000.00", "currency": "XOF"},
        "processing": {"rule": "fixed_embassy", "embassy_id": "tg-lome"},
        "target_processing_days": 3,
    },
}

# Fixed ids: the seed's versions are the same in every database.
_SEED_NAMESPACE = uuid.UUID("5b8f3c52-9d2e-4f0a-8b71-c4e6a1d0f3b9")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "applicants",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("given_name", sa.Text(), nullable=False),
        sa.Column("family_name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("preferred_language", sa.String(length=2), server_default="fr", nullable=False),
        sa.Column("country_of_residence", sa.String(length=2), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=True),
        sa.Column("identity_level", sa.Text(), nullable=True),
        sa.Column("identity_method", sa.Text(), nullable=True),
        sa.Column("identity_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("identity_embassy_id", sa.Text(), nullable=True),
        sa.Column("source_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("member_id"),
    )
    # outbox, inbox, audit log (append-only, hash-chained): the same in every service.
    create_plumbing_tables()
    op.create_table(
        "removed_applicants",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_table(
        "service_types",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "service_type_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["code"],
            ["service_types.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "version", name="service_type_versions_code_version"),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("applicant_id", sa.Uuid(), nullable=True),
        sa.Column("applicant_subject", sa.Text(), nullable=False),
        sa.Column("service_type", sa.Text(), nullable=False),
        sa.Column("service_version_id", sa.Uuid(), nullable=False),
        sa.Column("catalogue_version", sa.Integer(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="draft", nullable=False),
        sa.Column(
            "answers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("assigned_to", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_digest", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["service_version_id"],
            ["service_type_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
        sa.UniqueConstraint(
            "applicant_subject", "idempotency_key", name="applications_idempotency_key"
        ),
    )
    op.create_index(
        "applications_applicant_idx", "applications", ["applicant_id", "created_at"], unique=False
    )
    op.create_index(
        "applications_subject_idx",
        "applications",
        ["applicant_subject", "created_at"],
        unique=False,
    )
    op.create_index(
        "applications_queue_idx", "applications", ["embassy_id", "status", "due_at"], unique=False
    )
    op.create_index(
        "applications_sla_idx",
        "applications",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text(
            "escalated_at IS NULL AND status IN ('submitted', 'under_review', 'resubmitted')"
        ),
    )
    op.create_table(
        "application_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor_subject", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "application_history_application_idx",
        "application_history",
        ["application_id", "id"],
        unique=False,
    )
    # ### end Alembic commands ###
    types = sa.table("service_types", sa.column("code"), sa.column("current_version"))
    versions = sa.table(
        "service_type_versions",
        sa.column("id"),
        sa.column("code"),
        sa.column("version"),
        sa.column("definition", postgresql.JSONB),
    )
    op.bulk_insert(types, [{"code": c, "current_version": 1} for c in SEED_TYPES])
    op.bulk_insert(
        versions,
        [
            {
                "id": uuid.uuid5(_SEED_NAMESPACE, f"{code}/1"),
                "code": code,
                "version": 1,
                "definition": json.loads(json.dumps(definition)),
            }
            for code, definition in SEED_TYPES.items()
        ],
    )


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_index("application_history_application_idx", table_name="application_history")
    op.drop_table("application_history")
    op.drop_index(
        "applications_sla_idx",
        table_name="applications",
        postgresql_where=sa.text(
            "escalated_at IS NULL AND status IN ('submitted', 'under_review', 'resubmitted')"
        ),
    )
    op.drop_index("applications_queue_idx", table_name="applications")
    op.drop_index("applications_subject_idx", table_name="applications")
    op.drop_index("applications_applicant_idx", table_name="applications")
    op.drop_table("applications")
    op.drop_table("service_type_versions")
    op.drop_table("service_types")
    op.drop_table("removed_applicants")
    drop_plumbing_tables()
    op.drop_table("applicants")
    # ### end Alembic commands ###
