"""Synthetic members of the Togolese diaspora, realistic in spread, for benchmarks.

    uv run python bench/synthetic_members.py --count 5            # JSON lines on stdout
    uv run python bench/synthetic_members.py --count 100000 --summary

Nothing here is a real person. What the spread follows:

- countries of residence: weighted by the Togo-born migrant stock by destination of
  UN DESA (International Migrant Stock 2019, ``diaspora_reference.un_desa``, latest
  year: Nigeria, Benin, Ghana, Côte d'Ivoire, France, Gabon, Burkina Faso, Germany...),
  plus the United States (20,000) and Canada (6,000), which that table does not report
  (their statistics do not single out people born in Togo): those two weights are our
  assumption, of the order of the American Community Survey's Togo-born figure;
- embassy: derived from the country by the jurisdictions table (diaspora_identity);
- city: among the 40 most populous cities of the country in the packaged gazetteer
  (``diaspora_reference.places``), weighted by population^0.8 (people go to the big
  cities, but not only to the capital);
- names: Togolese given names (Ewe day names such as Kossi, Kodjo, Akossiwa, Kabye,
  Christian and Muslim names) and family names (with their accents: Agbéko, Kouévi),
  mixed with 15% of names from Faker's French, English, German locales (mixed
  families, naturalised spellings); emails and phones made from them (phones valid
  E.164 for the country, from libphonenumber's example numbers);
- sex 54% male, 45% female, 1% unspecified; age: normal around 36 years (sd 11),
  18 to 85;
- occupation: ISCO-08 unit groups (``diaspora_reference.isco``) with the major groups
  weighted as a diaspora labour force (professionals 18%, services and sales 19%,
  elementary 11%, technicians 10%, crafts 10%...), 12% with none (students,
  job seekers); highest education level (ISCED) correlated with the major group;
- skills: 0 to 5 ESCO skills (``diaspora_reference.esco``) from a pool of common ones,
  10% of them free text; languages: French, Ewe or Kabye-speaking (Ewe coded), plus
  the country's language(s);
- availability for missions 25%; consent to statistics 95% (2% refuse);
- registered in the last 6 years; confirmed at some point by 70% of them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from uuid import UUID

import phonenumbers
from faker import Faker

from diaspora_identity.jurisdictions import default_jurisdictions
from diaspora_reference import esco, isco, places, un_desa


def accumulate(values: Any) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += float(v)
        out.append(total)
    return out


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


# Not reported by UN DESA (see the module docstring): assumed weights.
ASSUMED_STOCK = {"US": 20_000, "CA": 6_000}

GIVEN_MALE = _names(
    "Kossi, Komi, Kodjo, Kokou, Koffi, Kofi, Yao, Kwami, Komla, Kossivi, Kouassi, Koami, "
    "Edem, Sena, Elom, Dodzi, Mawuli, Selom, Yawo, Agbéko, Mensah, Essowè, Pyabalo, "
    "Tchilabalo, Essozimna, Pidassa, Essohana, Palakiyèm, Bakoma, Akim, Abalo, Atsu, "
    "Fiifi, Messan, Ayao, Kangni, Kudzo, Dzidula, Jean, Pierre, Joseph, Emmanuel, Paul, "
    "Jacques, Michel, Victor, François, Serge, Didier, Eric, Abdoulaye, Ibrahim, Moussa, "
    "Issifou, Alassane, Aboubakar, Ousmane, Tchédré, Faure, Gilchrist"
)
GIVEN_FEMALE = _names(
    "Akossiwa, Adjoa, Abla, Ama, Afi, Yawa, Afiwa, Akouvi, Ablavi, Ayawavi, Kafui, "
    "Enyonam, Sitsofe, Dzifa, Mawusi, Elinam, Akpénè, Essivi, Kossiwa, Amévi, Edoh, "
    "Yayra, Esi, Efua, Adzo, Dédé, Essodina, Mazamesso, Pouwèdéou, Essoyomewè, Akpéna, "
    "Hodalo, Mamavi, Nana, Marie, Jeanne, Cécile, Florence, Pauline, Christine, Sylvie, "
    "Brigitte, Eugénie, Victoire, Aïcha, Fatima, Mariama, Safiatou, Rahinatou, Zénabou, "
    "Awa, Ramatou"
)
FAMILY = _names(
    "Agbéko, Mensah, Amégan, Lawson, Adjovi, Ayité, Kpodar, Tchalla, Kpatcha, Bawa, "
    "Gbadoé, Akakpo, Amouzou, Dogbé, Agbodjan, Kodjo, Attiogbé, Adjamagbo, Eklu, Folly, "
    "Sossah, Amédomé, Agbényéga, Apédo, Dzidzinyo, Kouévi, Tsogbé, Ahadji, Akpo, Bamazé, "
    "Pali, Kombaté, Tchakondo, Essowè, Abalo, Ouro-Akpo, Tcha-Tchibara, Djobo, Sanvee, "
    "Olympio, Quashie, d'Almeida, Johnson, de Souza, Wilson, Santos, Agbobli, Gnininvi, "
    "Adodo, Kokou, Assogba, Hounkpati, Koudjo, Ekué, Aziaka, Gbeassor, Kpémissi, "
    "Adjakly, Afanou, Agboli, Akouété, Amavi, Anani, Assiongbon, Atayi, Awoussi, Azoti, "
    "Bassabi, Batchati, Bodjona, Boukari, Dadjo, Dagnon, Degbe, Djagba, Djossou, Dossou, "
    "Dovi, Fiagbé, Gaba, Gbikpi, Gnamké, Hlomador, Houngbo, Kassegne, Kelem, Klutse, "
    "Kolani, Kouma, Kpakpabia, Kpogo, Kuassi, Lantam, Latévi, Madjé, Mawuena, Nabédé, "
    "Nayo, Ouadja, Pitassa, Sama, Sodji, Soglo, Tagba, Tchamdja, Tétévi, Toglo, Tossou, "
    "Wiyao, Yakubu, Zinsou, Zodanou"
)
COUNTRY_LANGUAGES = {
    "NG": ["en", "yo", "ha"],
    "GH": ["en", "ak"],
    "BJ": ["fon"],
    "CI": [],
    "GA": [],
    "BF": [],
    "NE": ["ha"],
    "DE": ["de"],
    "US": ["en"],
    "CA": ["en"],
    "GB": ["en"],
    "BE": ["nl"],
    "IT": ["it"],
    "ES": ["es"],
    "CH": ["de"],
    "NL": ["nl"],
    "SE": ["sv"],
}
# Share of ISCO-08 major groups among those with an occupation; "" is none.
MAJOR_WEIGHTS = {
    "1": 4,
    "2": 18,
    "3": 10,
    "4": 6,
    "5": 19,
    "6": 2,
    "7": 10,
    "8": 6,
    "9": 11,
    "0": 0.5,
    "": 12,
}
# Highest ISCED level per major group (weights for levels 1..8), and for "none".
EDUCATION = {
    "1": [0, 1, 8, 3, 10, 35, 35, 8],
    "2": [0, 0, 2, 1, 5, 35, 45, 12],
    "3": [0, 2, 20, 8, 25, 30, 13, 2],
    "4": [0, 4, 35, 10, 20, 25, 6, 0],
    "5": [8, 20, 40, 8, 10, 10, 4, 0],
    "6": [25, 30, 30, 5, 5, 5, 0, 0],
    "7": [10, 25, 40, 10, 10, 5, 0, 0],
    "8": [10, 25, 45, 10, 5, 5, 0, 0],
    "9": [20, 35, 35, 5, 3, 2, 0, 0],
    "0": [0, 5, 40, 10, 20, 20, 5, 0],
    "": [5, 10, 35, 5, 10, 25, 9, 1],
}
EDUCATION_CUMULATIVE = {k: [float(x) for x in accumulate(v)] for k, v in EDUCATION.items()}
SKILL_WORDS = (
    "soins infirmiers",
    "comptabilité",
    "enseigner",
    "programmation",
    "gestion de projet",
    "vente",
    "conduire",
    "cuisine",
    "maçonnerie",
    "installations électriques",
    "agriculture",
    "traduction",
    "marketing",
    "chirurgie",
    "pédiatrie",
    "analyse de données",
    "logistique",
    "couture",
    "coiffure",
    "mécanique automobile",
    "soudage",
    "plomberie",
    "droit",
    "finance",
    "communication",
    "santé publique",
    "génie civil",
    "énergie solaire",
    "microfinance",
    "pharmacie",
    "télécommunications",
    "recherche scientifique",
    "médiation",
    "sécurité",
)
FREE_SKILLS = (
    "Tissage kente",
    "Batik",
    "Percussions",
    "Cuisine togolaise",
    "Commerce import-export",
    "Transfert d'argent",
    "Animation communautaire",
    "Médecine traditionnelle",
)
SKILL_COUNTS = [15, 35, 60, 80, 92, 100]
MISSIONS = (
    "teaching",
    "medical",
    "volunteering",
    "co_development",
    "investment",
    "technical_assistance",
)
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CityPick:
    geonames_id: int
    name: str
    latitude: float
    longitude: float


@cache
def country_weights() -> dict[str, int]:
    weights = dict(un_desa.migrant_stock())
    weights.update(ASSUMED_STOCK)
    return weights


@cache
def cities_of(country: str) -> tuple[tuple[CityPick, ...], tuple[float, ...]]:
    found: dict[int, places.City] = {}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        for city in places.find_cities(country, letter, limit=40):
            found[city.geonames_id] = city
    top = sorted(found.values(), key=lambda c: -c.population)[:40]
    picks = tuple(CityPick(c.geonames_id, c.name, c.latitude, c.longitude) for c in top)
    return picks, tuple(accumulate(max(c.population, 1000) ** 0.8 for c in top))


@cache
def unit_groups() -> dict[str, list[str]]:
    by_major: dict[str, list[str]] = {}
    for group in isco.groups(level=4):
        by_major.setdefault(group.code[0], []).append(group.code)
    return by_major


@cache
def skill_pool() -> tuple[tuple[str, str], ...]:
    pool: dict[str, str] = {}
    for words in SKILL_WORDS:
        for skill in esco.find_skills(words, "fr", limit=8):
            pool.setdefault(skill.uri, skill.label_fr)
    return tuple(sorted(pool.items()))


@cache
def _phone_templates(country: str) -> tuple[str, int]:
    """An E.164 example mobile number of the country and how many trailing digits vary."""
    example = phonenumbers.example_number_for_type(
        country, phonenumbers.PhoneNumberType.MOBILE
    ) or phonenumbers.example_number(country)
    if example is None:
        example = phonenumbers.example_number("FR")
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164), 4


def _ascii(text: str) -> str:
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


class Generator:
    """Deterministic for a seed: the same members in the same order."""

    def __init__(self, seed: int = 2026) -> None:
        self.random = random.Random(seed)
        fakers = [Faker(locale) for locale in ("fr_FR", "en_US", "de_DE", "en_GB")]
        for i, faker in enumerate(fakers):
            faker.seed_instance(seed + i)
        self.foreign_given = [f.first_name() for f in fakers for _ in range(150)]
        self.foreign_family = [f.last_name() for f in fakers for _ in range(400)]
        weights = country_weights()
        self.countries = list(weights)
        self.country_weights = list(accumulate(weights.values()))
        self.jurisdictions = default_jurisdictions()
        self._embassies: dict[str, str] = {}
        self.majors = list(MAJOR_WEIGHTS)
        self.major_weights = list(accumulate(MAJOR_WEIGHTS.values()))
        self.skills = skill_pool()

    def _embassy(self, country: str) -> str:
        if country not in self._embassies:
            self._embassies[country] = self.jurisdictions.embassy_for(country)
        return self._embassies[country]

    def _name(self, sex: str) -> tuple[str, str]:
        r = self.random
        if r.random() < 0.15:
            given = r.choice(self.foreign_given)
        else:
            given = r.choice(GIVEN_FEMALE if sex == "female" else GIVEN_MALE)
            if r.random() < 0.2:  # a second given name
                given += " " + r.choice(GIVEN_FEMALE if sex == "female" else GIVEN_MALE)
        family = r.choice(self.foreign_family) if r.random() < 0.15 else r.choice(FAMILY)
        return given, family

    def member(self, index: int) -> dict[str, Any]:
        """One member as a profile snapshot (``MemberProfile`` fields) plus id and times."""
        r = self.random
        country = r.choices(self.countries, cum_weights=self.country_weights)[0]
        u = r.random()
        sex = "male" if u < 0.54 else "female" if u < 0.99 else "unspecified"
        given, family = self._name(sex)
        age = min(85, max(18, int(r.gauss(36, 11))))
        born = date(NOW.year - age, r.randint(1, 12), r.randint(1, 28))
        picks, weights = cities_of(country)
        city = r.choices(picks, cum_weights=weights)[0] if picks and r.random() < 0.93 else None
        major = r.choices(self.majors, cum_weights=self.major_weights)[0]
        occupations = []
        if major:
            occupations.append({"isco_code": r.choice(unit_groups()[major])})
            if r.random() < 0.15:
                other = r.choices(self.majors[:-1], cum_weights=self.major_weights[:-1])[0]
                occupations.append({"isco_code": r.choice(unit_groups()[other])})
        level = 1 + r.choices(range(8), cum_weights=EDUCATION_CUMULATIVE[major])[0]
        education = (
            []
            if r.random() < 0.05
            else [
                {
                    "isced_level": level,
                    "country": r.choice(["TG", "TG", country]),
                    "year": min(NOW.year, born.year + 16 + level * 2),
                }
            ]
        )
        skills = []
        for _ in range(r.choices(range(6), cum_weights=SKILL_COUNTS)[0]):
            if r.random() < 0.1:
                skills.append({"label": r.choice(FREE_SKILLS)})
            else:
                uri, label = r.choice(self.skills)
                skills.append({"esco_uri": uri, "label": label})
        languages = ["fr"] if country not in ("GH", "NG") or r.random() < 0.6 else []
        languages += ["ee"] if r.random() < 0.55 else []
        languages += COUNTRY_LANGUAGES.get(country, [])[: r.randint(0, 2)]
        languages = [lang for lang in dict.fromkeys(languages) if len(lang) == 2] or ["fr"]
        missions = sorted(set(r.sample(MISSIONS, r.randint(1, 3)))) if r.random() < 0.25 else []
        registered = NOW - timedelta(days=r.randint(0, 6 * 365), seconds=r.randint(0, 86399))
        confirmed = (
            registered + timedelta(days=r.randint(0, max(0, (NOW - registered).days)))
            if r.random() < 0.7
            else None
        )
        consent = r.random()
        consents = (
            [{"purpose": "statistics", "granted": consent < 0.95, "at": registered.isoformat()}]
            if consent < 0.97
            else []
        )
        phone, vary = _phone_templates(country)
        phone = phone[:-vary] + f"{index % 10**vary:0{vary}d}"
        local = f"{_ascii(given.split()[0])}.{_ascii(family)}"
        return {
            "member_id": UUID(int=(0x0190_0000_0000_7000_8000_0000_0000_0000 | index)),
            "registered_at": registered,
            "given_name": given,
            "family_name": family,
            "date_of_birth": born,
            "sex": sex,
            "email": f"{local}.{index}@example.org",
            "phone": phone,
            "preferred_language": "fr" if "fr" in languages or r.random() < 0.5 else "en",
            "country_of_residence": country,
            "city": (
                {
                    "geonames_id": city.geonames_id,
                    "name": city.name,
                    "latitude": city.latitude,
                    "longitude": city.longitude,
                }
                if city
                else None
            ),
            "embassy_id": self._embassy(country),
            "arrival_year": max(born.year + 16, NOW.year - r.randint(0, 25)),
            "languages": languages,
            "occupations": occupations,
            "skills": skills,
            "education": education,
            "availability": {
                "mission_types": missions,
                "remote": bool(missions) and r.random() < 0.5,
            },
            "consents": consents,
            "last_confirmed_at": confirmed,
        }

    def members(self, count: int, *, start: int = 0) -> Iterator[dict[str, Any]]:
        for index in range(start, start + count):
            yield self.member(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--summary", action="store_true", help="spread instead of members")
    args = parser.parse_args()
    generator = Generator(args.seed)
    if not args.summary:
        for member in generator.members(args.count):
            print(json.dumps(member, default=str, ensure_ascii=False))
        return
    countries: Counter[str] = Counter()
    majors: Counter[str] = Counter()
    sexes: Counter[str] = Counter()
    for member in generator.members(args.count):
        countries[member["country_of_residence"]] += 1
        majors[(member["occupations"] or [{"isco_code": "-"}])[0]["isco_code"][0]] += 1
        sexes[member["sex"]] += 1
    for title, counter in (("countries", countries), ("ISCO major", majors), ("sex", sexes)):
        top = ", ".join(f"{k} {100 * v / args.count:.1f}%" for k, v in counter.most_common(12))
        print(f"{title}: {top}", file=sys.stdout)


if __name__ == "__main__":
    main()
