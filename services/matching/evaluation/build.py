"""Build the matching evaluation set: a fixed synthetic expert pool and labelled needs.

    uv run python services/matching/evaluation/build.py      # rewrites pool.jsonl, needs.jsonl

Deterministic (seeded): running it again writes the same files. The rules that make
the pool and that decide which experts a coordinator would pick for each need are
written down in README.md beside this file; the code below follows them.
"""

# ESCO's French labels use the typographic apostrophe (U+2019); they are matched exactly.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from diaspora_reference import esco

HERE = Path(__file__).resolve().parent
SEED = 2026
POOL_SIZE = 1000
NEEDS_PER_SPECIALTY = 3
# The evaluation runs "on" this day: needs start after it.
TODAY = date(2026, 12, 1)
NAMESPACE = uuid.UUID("5b1f3c0e-9d1e-4c8e-8a53-6d2f0c7a9e11")


@dataclass(frozen=True)
class Specialty:
    key: str
    isco: tuple[str, ...]  # how most people code it
    isco_alt: tuple[str, ...]  # how the others do (coarser, neighbouring, associate level)
    esco: tuple[str, ...]  # French ESCO labels of its skills (resolved to URIs)
    free: tuple[str, ...]  # how people write its skills by hand (fr and en, some typos)
    titles: tuple[str, ...]  # job titles
    isced: tuple[int, int]  # usual range of the highest level
    missions: tuple[str, ...]  # mission types such people offer
    need_titles: tuple[str, ...]
    need_text: tuple[str, ...]  # sentences describing such a need
    min_isced: int | None
    remote_ok: bool = False


SPECIALTIES: tuple[Specialty, ...] = (
    Specialty(
        "surgery",
        ("2212",),
        ("2211",),
        ("chirurgie",),
        (
            "chirurgie viscérale",
            "laparoscopie",
            "surgical procedures",
            "traumatologie",
            "chirugie générale",
        ),
        ("Chirurgien", "Chirurgien viscéral", "Surgeon", "Consultant surgeon"),
        (7, 8),
        ("medical", "teaching"),
        ("Chirurgien pour mission au CHU", "Formation des internes en chirurgie"),
        (
            "Interventions chirurgicales programmées et urgences, bloc opératoire.",
            "Encadrer les internes en chirurgie viscérale et traumatologie.",
        ),
        7,
    ),
    Specialty(
        "anaesthesia",
        ("2212",),
        ("2211",),
        ("anesthésie-réanimation",),
        ("réanimation", "intensive care", "anesthesiology", "gestion de la douleur"),
        ("Médecin anesthésiste-réanimateur", "Anaesthetist", "Réanimateur"),
        (7, 8),
        ("medical", "teaching"),
        ("Anesthésiste-réanimateur pour le bloc", "Appui au service de réanimation"),
        (
            "Anesthésie au bloc opératoire et prise en charge en réanimation.",
            "Former les infirmiers anesthésistes et organiser la réanimation.",
        ),
        7,
    ),
    Specialty(
        "paediatrics",
        ("2212",),
        ("2211",),
        ("pédiatrie",),
        ("néonatologie", "child health", "vaccination des enfants", "pédiatre"),
        ("Pédiatre", "Paediatrician", "Médecin néonatologue"),
        (7, 8),
        ("medical", "volunteering"),
        ("Pédiatre pour mission médicale", "Appui en néonatologie"),
        (
            "Consultations pédiatriques et prise en charge des nouveau-nés.",
            "Renforcer le service de néonatologie et la santé de l'enfant.",
        ),
        7,
    ),
    Specialty(
        "obstetrics",
        ("2212",),
        ("2222",),
        ("gynécologie - obstétrique",),
        ("échographie obstétricale", "maternal health", "suivi de grossesse", "césarienne"),
        ("Gynécologue-obstétricien", "Obstetrician", "Gynécologue"),
        (7, 8),
        ("medical", "teaching"),
        ("Gynécologue-obstétricien pour la maternité", "Santé maternelle: mission médicale"),
        (
            "Suivi des grossesses à risque, césariennes et échographie obstétricale.",
            "Réduire la mortalité maternelle à la maternité régionale.",
        ),
        7,
    ),
    Specialty(
        "general_medicine",
        ("2211",),
        ("2212",),
        ("médecine interne",),
        ("médecine générale", "primary care", "soins de santé primaires", "consultations"),
        ("Médecin généraliste", "General practitioner", "Médecin de famille"),
        (7, 8),
        ("medical", "volunteering"),
        ("Médecin généraliste pour un centre de santé", "Caravane médicale"),
        (
            "Consultations de médecine générale et soins de santé primaires.",
            "Caravane médicale dans les villages: consultations et dépistage.",
        ),
        7,
    ),
    Specialty(
        "nursing",
        ("2221",),
        ("3221",),
        ("soins infirmiers spécialisés",),
        ("soins infirmiers", "nursing", "wound care", "soins intensifs infirmiers"),
        ("Infirmier", "Infirmière diplômée d'État", "Registered nurse"),
        (5, 6),
        ("medical", "volunteering"),
        ("Infirmiers pour mission médicale", "Formation continue des infirmiers"),
        (
            "Soins infirmiers, pansements et suivi des patients hospitalisés.",
            "Former les infirmiers du district aux soins spécialisés.",
        ),
        5,
    ),
    Specialty(
        "midwifery",
        ("2222",),
        ("3222",),
        ("accouchement",),
        ("sage-femme", "midwifery", "soins prénataux", "accouchements"),
        ("Sage-femme", "Midwife", "Maïeuticienne"),
        (5, 6),
        ("medical", "volunteering"),
        ("Sages-femmes pour la maternité", "Formation des accoucheuses"),
        (
            "Accouchements, consultations prénatales et soins du post-partum.",
            "Former les accoucheuses des centres de santé périphériques.",
        ),
        5,
    ),
    Specialty(
        "public_health",
        ("2269",),
        ("2263", "2120"),
        ("épidémiologie", "santé publique"),
        ("surveillance épidémiologique", "public health", "biostatistiques", "epidemiology"),
        ("Épidémiologiste", "Epidemiologist", "Médecin de santé publique"),
        (7, 8),
        ("technical_assistance", "teaching"),
        ("Épidémiologiste pour le ministère de la santé", "Appui à la surveillance"),
        (
            "Surveillance épidémiologique et analyse des données de santé publique.",
            "Renforcer le système de surveillance des maladies.",
        ),
        7,
        True,
    ),
    Specialty(
        "lab_medicine",
        ("3212",),
        ("2131",),
        ("technologie de laboratoire médical",),
        ("analyses biologiques", "microbiologie", "lab diagnostics", "biologie médicale"),
        ("Technicien de laboratoire", "Biologiste médical", "Lab technician"),
        (5, 7),
        ("medical", "technical_assistance"),
        ("Technicien de laboratoire d'analyses", "Mise en place d'un laboratoire"),
        (
            "Analyses biologiques et microbiologie au laboratoire de l'hôpital.",
            "Équiper et organiser le laboratoire de biologie médicale.",
        ),
        5,
    ),
    Specialty(
        "maths_teaching",
        ("2310",),
        ("2330", "2120"),
        ("enseigner les mathématiques", "pédagogie"),
        ("algèbre", "analyse mathématique", "mathematics", "statistiques"),
        (
            "Enseignant-chercheur en mathématiques",
            "Professeur de mathématiques",
            "Lecturer in mathematics",
        ),
        (7, 8),
        ("teaching",),
        ("Enseignant de mathématiques", "Cours d'algèbre à l'université"),
        (
            "Cours d'algèbre et d'analyse pour les étudiants de licence.",
            "Enseigner les mathématiques et encadrer des mémoires.",
        ),
        7,
    ),
    Specialty(
        "physics_teaching",
        ("2310",),
        ("2330", "2111"),
        ("physique", "pédagogie"),
        ("mécanique", "électromagnétisme", "physics", "physique des matériaux"),
        ("Enseignant-chercheur en physique", "Professeur de physique", "Physics lecturer"),
        (7, 8),
        ("teaching",),
        ("Enseignant de physique", "Travaux pratiques de physique"),
        (
            "Cours de mécanique et d'électromagnétisme en licence.",
            "Monter des travaux pratiques de physique pour la faculté des sciences.",
        ),
        7,
    ),
    Specialty(
        "software",
        ("2512",),
        ("2514", "2519"),
        ("programmation informatique", "base de données"),
        ("Python", "développement web", "Java", "dévelopement logiciel", "software engineering"),
        ("Développeur", "Software engineer", "Ingénieur logiciel"),
        (6, 7),
        ("technical_assistance", "teaching", "co_development"),
        ("Développeur pour un service en ligne", "Formation au développement logiciel"),
        (
            "Développer une application web et sa base de données.",
            "Former les jeunes développeurs à la programmation.",
        ),
        6,
        True,
    ),
    Specialty(
        "networks",
        ("2523",),
        ("2529", "3513"),
        ("cybersécurité",),
        ("réseaux informatiques", "network administration", "pare-feu", "administration système"),
        ("Administrateur réseaux", "Network engineer", "Ingénieur sécurité"),
        (5, 7),
        ("technical_assistance",),
        ("Ingénieur réseaux et sécurité", "Audit de cybersécurité"),
        (
            "Concevoir le réseau informatique et sa sécurité pour une administration.",
            "Auditer la cybersécurité des systèmes d'information.",
        ),
        6,
        True,
    ),
    Specialty(
        "civil_engineering",
        ("2142",),
        ("3112",),
        ("génie civil", "tester du béton", "topographie"),
        ("ponts et chaussées", "structural design", "BTP", "calcul de structures"),
        ("Ingénieur génie civil", "Civil engineer", "Conducteur de travaux"),
        (6, 7),
        ("technical_assistance", "co_development"),
        ("Ingénieur génie civil pour des ouvrages", "Contrôle de chantier"),
        (
            "Calcul de structures et contrôle des ouvrages en béton.",
            "Suivre les chantiers de routes et de ponts.",
        ),
        6,
    ),
    Specialty(
        "water",
        ("2142", "2143"),
        ("3112",),
        ("hydraulique", "créer des réseaux d’assainissement"),
        ("eau potable", "WASH", "forages", "assainissement"),
        ("Ingénieur hydraulicien", "Water engineer", "Ingénieur eau et assainissement"),
        (6, 7),
        ("technical_assistance", "co_development"),
        ("Ingénieur eau et assainissement", "Adduction d'eau potable"),
        (
            "Concevoir l'adduction d'eau potable et les forages d'une commune.",
            "Réseaux d'assainissement et hygiène (WASH).",
        ),
        6,
    ),
    Specialty(
        "agronomy",
        ("2132",),
        ("3142", "2131"),
        ("agronomie", "systèmes d’irrigation"),
        ("cultures vivrières", "soil fertility", "agroécologie", "irrigation"),
        ("Agronome", "Agronomist", "Ingénieur agronome"),
        (6, 8),
        ("technical_assistance", "co_development", "volunteering"),
        ("Agronome pour une coopérative", "Irrigation des périmètres maraîchers"),
        (
            "Améliorer les rendements des cultures vivrières et la fertilité des sols.",
            "Concevoir l'irrigation des périmètres maraîchers.",
        ),
        6,
    ),
    Specialty(
        "veterinary",
        ("2250",),
        ("3240",),
        ("appliquer des normes sur la santé animale",),
        ("santé animale", "élevage", "vaccination du bétail", "animal health"),
        ("Vétérinaire", "Veterinarian", "Docteur vétérinaire"),
        (7, 8),
        ("technical_assistance", "volunteering"),
        ("Vétérinaire pour la santé animale", "Campagne de vaccination du bétail"),
        (
            "Santé animale et vaccination du bétail dans les élevages.",
            "Appuyer les éleveurs: suivi sanitaire des troupeaux.",
        ),
        7,
    ),
    Specialty(
        "accounting",
        ("2411",),
        ("3313",),
        ("comptabilité", "réaliser des audits financiers"),
        ("SYSCOHADA", "audit", "financial reporting", "contrôle de gestion"),
        ("Expert-comptable", "Accountant", "Auditeur financier"),
        (6, 7),
        ("technical_assistance", "co_development"),
        ("Expert-comptable pour une mutuelle", "Audit financier d'un projet"),
        (
            "Tenue de la comptabilité SYSCOHADA et états financiers.",
            "Auditer les comptes d'un projet de développement.",
        ),
        6,
        True,
    ),
    Specialty(
        "law",
        ("2611",),
        ("2619",),
        ("droit des affaires",),
        ("droit OHADA", "contrats", "corporate law", "droit commercial"),
        ("Avocat d'affaires", "Juriste", "Lawyer"),
        (7, 8),
        ("technical_assistance", "teaching"),
        ("Juriste en droit des affaires", "Cours de droit OHADA"),
        (
            "Rédaction de contrats et conseil en droit des affaires OHADA.",
            "Enseigner le droit commercial à la faculté de droit.",
        ),
        7,
        True,
    ),
    Specialty(
        "solar",
        ("2151",),
        ("3113", "7411"),
        ("énergie solaire", "concevoir des systèmes d’énergie solaire"),
        ("photovoltaïque", "mini-réseaux", "solar PV", "électrification rurale"),
        ("Ingénieur électricien", "Solar engineer", "Ingénieur énergies renouvelables"),
        (6, 7),
        ("technical_assistance", "co_development"),
        ("Ingénieur solaire pour l'électrification rurale", "Mini-réseaux photovoltaïques"),
        (
            "Dimensionner des installations photovoltaïques pour des centres de santé.",
            "Électrification rurale par mini-réseaux solaires.",
        ),
        6,
    ),
)

FIRST = (
    "Kossi",
    "Afi",
    "Yao",
    "Ama",
    "Komi",
    "Akossiwa",
    "Edem",
    "Dzifa",
    "Sena",
    "Mawuli",
    "Kodjo",
    "Abla",
    "Koffi",
    "Enyonam",
    "Selom",
    "Kafui",
    "Elom",
    "Yawa",
    "Kokou",
    "Adjo",
)
LAST = (
    "Mensah",
    "Amouzou",
    "Agbeko",
    "Kpodar",
    "Lawson",
    "Adjovi",
    "Tchalla",
    "Gnassingbé",
    "Atayi",
    "Dossou",
    "Ekué",
    "Sossou",
    "Koudjo",
    "Ahadji",
    "Bawa",
    "Tchédré",
)
COUNTRIES = (
    ("FR", "fr-paris", "fr"),
    ("DE", "de-berlin", "fr"),
    ("US", "us-washington", "en"),
    ("GH", "gh-accra", "en"),
    ("BE", "be-brussels", "fr"),
    ("CA", "ca-ottawa", "fr"),
    ("CI", "ci-abidjan", "fr"),
    ("GB", "gb-london", "en"),
)
ALL_MISSIONS = ("teaching", "medical", "volunteering", "co_development", "technical_assistance")


def _uris() -> dict[str, str]:
    found = {}
    for specialty in SPECIALTIES:
        for label in specialty.esco:
            hits = [s for s in esco.find_skills(label, "fr", 5) if s.label("fr") == label]
            if not hits:
                raise SystemExit(f"ESCO skill {label!r} not found in the reference data")
            found[label] = hits[0].uri
    return found


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 6:
        return text
    i = rng.randrange(1, len(text) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def make_expert(rng: random.Random, index: int, uris: dict[str, str]) -> dict[str, Any]:
    specialty = SPECIALTIES[index % len(SPECIALTIES)]
    member_id = str(uuid.uuid5(NAMESPACE, f"expert-{index}"))
    country, embassy, preferred = rng.choice(COUNTRIES)
    years = rng.choice((0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25))
    code_roll = rng.random()
    code = rng.choice(specialty.isco) if code_roll < 0.75 else rng.choice(specialty.isco_alt)
    occupations = []
    if code_roll < 0.9:  # the others declare no occupation, only their jobs
        occupations.append({"isco_code": code, "title": rng.choice(specialty.titles)})
    experience = []
    if years:
        start = TODAY.year - years
        job_code = code if rng.random() < 0.8 else None
        experience.append(
            {
                "title": rng.choice(specialty.titles),
                "isco_code": job_code,
                "start_year": start,
                "end_year": None,
            }
        )
    if rng.random() < 0.3:  # an earlier job in another field
        other = rng.choice([s for s in SPECIALTIES if s.key != specialty.key])
        end = TODAY.year - years
        experience.append(
            {
                "title": rng.choice(other.titles),
                "isco_code": rng.choice(other.isco),
                "start_year": end - rng.randint(1, 4),
                "end_year": end,
            }
        )
    skills = []
    for label in specialty.esco:
        if rng.random() < 0.55:
            skills.append({"esco_uri": uris[label], "label": label})
    for text in rng.sample(specialty.free, rng.randint(0, min(3, len(specialty.free)))):
        skills.append({"esco_uri": None, "label": _typo(rng, text) if rng.random() < 0.1 else text})
    if rng.random() < 0.35:  # a skill from elsewhere (project management, a hobby...)
        other = rng.choice([s for s in SPECIALTIES if s.key != specialty.key])
        skills.append({"esco_uri": None, "label": rng.choice(other.free)})
    low, high = specialty.isced
    level = rng.randint(low, high) if rng.random() < 0.85 else rng.randint(max(3, low - 2), low)
    education = [{"isced_level": level, "field": specialty.key.replace("_", " ")}]
    languages = {"fr"} if preferred == "fr" or rng.random() < 0.8 else set()
    if preferred == "en" or rng.random() < 0.45:
        languages.add("en")
    if rng.random() < 0.3:
        languages.add(rng.choice(("ee", "kbp", "de", "es")))
    if not languages:
        languages.add(preferred)
    offered = set(rng.sample(specialty.missions, rng.randint(1, len(specialty.missions))))
    if rng.random() < 0.3:
        offered.add(rng.choice(ALL_MISSIONS))
    roll = rng.random()
    available_from = available_until = None
    if roll < 0.25:
        available_from = TODAY + timedelta(days=rng.randint(10, 200))
    elif roll < 0.4:
        available_until = TODAY + timedelta(days=rng.randint(20, 200))
    consent = rng.random() > 0.05
    profile = {
        "given_name": rng.choice(FIRST),
        "family_name": rng.choice(LAST),
        "date_of_birth": date(1960 + rng.randint(0, 35), rng.randint(1, 12), rng.randint(1, 28)),
        "email": f"expert{index}@example.org",
        "phone": f"+336{index:08d}",
        "preferred_language": preferred,
        "country_of_residence": country,
        "embassy_id": embassy,
        "languages": sorted(languages),
        "occupations": occupations,
        "skills": skills,
        "education": education,
        "experience": experience,
        "availability": {
            "mission_types": sorted(offered),
            "available_from": available_from,
            "available_until": available_until,
            "remote": rng.random() < 0.4,
        },
        "consents": [
            {
                "purpose": "contact_for_missions",
                "granted": consent,
                "at": datetime(2026, 6, 1, tzinfo=UTC),
            }
        ],
    }
    return {
        "member_id": member_id,
        "specialty": specialty.key,
        "years_in_specialty": years,
        "profile": profile,
    }


def make_need(
    rng: random.Random, specialty: Specialty, variant: int, uris: dict[str, str]
) -> dict[str, Any]:
    english = variant == 2 and rng.random() < 0.5
    need_type = specialty.missions[variant % len(specialty.missions)]
    skills: list[dict[str, Any]] = [{"esco_uri": uris[label]} for label in specialty.esco[:2]]
    skills += [{"label": text} for text in rng.sample(specialty.free, 1 + (variant == 0))]
    if variant == 0:
        occupations = [specialty.isco[0]]
    elif variant == 1:
        occupations = [specialty.isco[0][:3]]  # a coarser group: "any 221x"
    else:
        occupations = []  # skills and words only
    starts = TODAY + timedelta(days=rng.randint(20, 150))
    ends = starts + timedelta(days=rng.choice((14, 21, 30, 60)))
    min_years = (5, 3, 0)[variant]
    languages = ["fr"]
    if english:
        languages = ["en"]
    elif variant == 1 and rng.random() < 0.3:
        languages = ["fr", "en"]
    description = rng.choice(specialty.need_text)
    if min_years:
        description += f" Au moins {min_years} ans d'expérience dans le domaine."
    return {
        "specialty": specialty.key,
        "min_years": min_years,
        "need": {
            "title": specialty.need_titles[variant % len(specialty.need_titles)],
            "type": need_type,
            "institution": "Institution publique togolaise",
            "institution_kind": "ministry",
            "description": description,
            "occupations": occupations,
            "skills": skills,
            "min_isced_level": specialty.min_isced if variant == 0 else None,
            "languages": languages,
            "starts_on": starts,
            "ends_on": ends,
            "region": rng.choice(("TG-M", "TG-P", "TG-C", "TG-K", "TG-S")),
            "work_mode": "remote" if variant == 2 and specialty.remote_ok else "on_site",
            "experts_wanted": rng.randint(1, 4),
        },
    }


def would_pick(expert: dict[str, Any], need: dict[str, Any]) -> bool:
    """The coordinator's rule (README.md): the constraints of the need, then the person's
    actual specialty and years in it (known here, seen by the ranking only through what
    people wrote)."""
    profile, wanted = expert["profile"], need["need"]
    availability = profile["availability"]
    granted = any(c["granted"] for c in profile["consents"])
    if not granted or wanted["type"] not in availability["mission_types"]:
        return False
    if not set(wanted["languages"]) <= set(profile["languages"]) | {profile["preferred_language"]}:
        return False
    level = max(e["isced_level"] for e in profile["education"])
    if wanted["min_isced_level"] is not None and level < wanted["min_isced_level"]:
        return False
    if availability["available_from"] and availability["available_from"] > wanted["starts_on"]:
        return False
    if availability["available_until"] and availability["available_until"] < wanted["ends_on"]:
        return False
    if wanted["work_mode"] == "remote" and not availability["remote"]:
        return False
    return bool(
        expert["specialty"] == need["specialty"]
        and expert["years_in_specialty"] >= need["min_years"]
    )


def build() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(SEED)
    uris = _uris()
    pool = [make_expert(rng, i, uris) for i in range(POOL_SIZE)]
    needs = []
    for specialty in SPECIALTIES:
        for variant in range(NEEDS_PER_SPECIALTY):
            need = make_need(rng, specialty, variant, uris)
            need["id"] = str(uuid.uuid5(NAMESPACE, f"need-{specialty.key}-{variant}"))
            need["relevant"] = sorted(e["member_id"] for e in pool if would_pick(e, need))
            needs.append(need)
    return pool, needs


def _json(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(type(value))


def main() -> None:
    pool, needs = build()
    with (HERE / "pool.jsonl").open("w", encoding="utf-8") as out:
        for expert in pool:
            out.write(json.dumps(expert, default=_json, ensure_ascii=False, sort_keys=True) + "\n")
    with (HERE / "needs.jsonl").open("w", encoding="utf-8") as out:
        for need in needs:
            out.write(json.dumps(need, default=_json, ensure_ascii=False, sort_keys=True) + "\n")
    sizes = [len(n["relevant"]) for n in needs]
    print(
        f"{len(pool)} experts, {len(needs)} needs; relevant per need: "
        f"min {min(sizes)}, median {sorted(sizes)[len(sizes) // 2]}, max {max(sizes)}"
    )


if __name__ == "__main__":
    main()
