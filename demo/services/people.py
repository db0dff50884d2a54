"""Who the demo leads are: companies and people, generated from one seeded random sequence that
never depends on the clock, so lead number i is always the same person. Addresses use the
reserved `.example` domain, so no demo email can reach a real mailbox. Also the accounts of the
bigger companies, each with a named owner among the reps (reference data, like the sources)."""

import random
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import phonenumbers

from leads.models import Account, CompanySize
from leads.normalization import email_normalize

DEMO_SEED = 2024

FIRST_NAMES = (  # noqa: SIM905 (a readable block of data)
    "Ada Alan Alice Amara Amelia Ana Andrea Anna Arjun Ayesha Ben Bianca Camille Carlos Charlotte Chen Chiara "
    "Chloe Daniel David Deepa Diego Elena Eli Elif Emil Emily Emma Erik Fatima Felix Finn Freya Gabriel Hana "
    "Hannah Hugo Ibrahim Imani Isabel Ivan Jack Jakob James Jana Javier Jin Joao Jonas Julia Kai Karin Kenji "
    "Laila Lars Laura Leo Lina Lucas Lucia Luis Maja Marco Maria Mateo Mei Mia Mohammed Nadia Naomi Nikhil "
    "Nina Noah Nora Oliver Olivia Omar Oscar Paula Pedro Priya Rafael Rahul Rosa Ryan Sam Samira Sara Sebastian "
    "Sofia Sophie Stefan Tariq Theo Tomas Valentina Victor Yara Yusuf Zara Zoë José Søren Amélie Bjørn"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Abbott, Adeyemi, Alvarez, Andersen, Bauer, Becker, Bennett, Bianchi, Brown, Campbell, Castillo, Chen, "
    "Clarke, Costa, Da Silva, Dubois, Eriksson, Evans, Fischer, Fernandes, Fontaine, Garcia, Gupta, Hansen, "
    "Harris, Hoffmann, Hughes, Ivanova, Jansen, Jensen, Johansson, Kaur, Keller, Khan, Kim, Kowalski, Larsen, "
    "Laurent, Lee, Lehmann, Lopez, Martin, Meyer, Moreau, Müller, Murphy, Nakamura, Nguyen, Nielsen, Novak, "
    "Nuñez, O'Brien, Ødegaard, Okafor, Olsen, Park, Patel, Perez, Petrov, Quinn, Rossi, Russo, Sato, Schmidt, "
    "Schneider, Shah, Silva, Singh, Smith, Sousa, Suzuki, Tanaka, Taylor, Thomas, Van Dijk, Wagner, Walsh, "
    "Weber, Williams, Wilson, Wright, Yamamoto, Young, Zhang, Zimmermann"
).split(", ")
TITLES = [
    ("Marketing Manager", 8),
    ("Head of Marketing", 5),
    ("VP Marketing", 3),
    ("Sales Operations Manager", 6),
    ("Revenue Operations Lead", 5),
    ("VP Sales", 3),
    ("Chief Revenue Officer", 1),
    ("CEO", 2),
    ("Founder", 2),
    ("Operations Director", 4),
    ("IT Manager", 4),
    ("Software Engineer", 5),
    ("Product Manager", 5),
    ("Business Analyst", 4),
    ("Customer Success Manager", 3),
    ("Procurement Specialist", 2),
    ("Student", 1),
    ("", 4),
]
SENIOR_TITLES = {"VP Marketing", "VP Sales", "Chief Revenue Officer", "CEO", "Founder", "Head of Marketing"}
INDUSTRIES = [
    "Software",
    "Financial services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Logistics",
    "Media",
    "Professional services",
    "Energy",
    "Real estate",
    "Telecommunications",
]
COMPANY_WORDS = (  # noqa: SIM905
    "Northwind Bluebird Granite Summit Apex Brightline Cobalt Evergreen Harbor Ironwood Juniper Keystone "
    "Lighthouse Meridian Nimbus Oakridge Pinnacle Quantum Redwood Silverline Tidewater Vantage Willow Zephyr "
    "Acorn Beacon Cedar Delta Ember Falcon Glacier Horizon Indigo Jasper Kestrel Lumen Maple Nova Orbit "
    "Pioneer Quartz Riverstone Sable Tandem Upland Vertex Wavecrest Yarrow"
).split()
COMPANY_SUFFIXES = [
    ("Software", "Software"),
    ("Analytics", "Software"),
    ("Labs", "Software"),
    ("Capital", "Financial services"),
    ("Bank", "Financial services"),
    ("Health", "Healthcare"),
    ("Clinics", "Healthcare"),
    ("Manufacturing", "Manufacturing"),
    ("Robotics", "Manufacturing"),
    ("Retail", "Retail"),
    ("Outfitters", "Retail"),
    ("Learning", "Education"),
    ("Logistics", "Logistics"),
    ("Freight", "Logistics"),
    ("Media", "Media"),
    ("Partners", "Professional services"),
    ("Consulting", "Professional services"),
    ("Energy", "Energy"),
    ("Properties", "Real estate"),
    ("Telecom", "Telecommunications"),
]
SIZES = [
    (CompanySize.S1_10, 10),
    (CompanySize.S11_50, 22),
    (CompanySize.S51_200, 26),
    (CompanySize.S201_1000, 22),
    (CompanySize.S1001_5000, 12),
    (CompanySize.S5000_PLUS, 8),
]
# country, weight, regions
COUNTRIES = [
    ("US", 30, ["California", "New York", "Texas", "Illinois", "Massachusetts", "Washington"]),
    ("GB", 14, ["England", "Scotland", "Wales"]),
    ("DE", 10, ["Bavaria", "Berlin", "Hamburg", "Hesse"]),
    ("FR", 7, ["Île-de-France", "Auvergne-Rhône-Alpes", "Occitanie"]),
    ("NL", 5, ["North Holland", "South Holland", "Utrecht"]),
    ("CA", 6, ["Ontario", "Quebec", "British Columbia"]),
    ("AU", 4, ["New South Wales", "Victoria", "Queensland"]),
    ("SE", 3, ["Stockholm", "Västra Götaland"]),
    ("ES", 4, ["Madrid", "Catalonia", "Andalusia"]),
    ("IE", 3, ["Dublin", "Cork"]),
    ("IN", 6, ["Karnataka", "Maharashtra", "Delhi"]),
    ("BR", 4, ["São Paulo", "Rio de Janeiro"]),
    ("SG", 2, ["Singapore"]),
    ("CH", 2, ["Zurich", "Geneva"]),
]
PERSONAL_DOMAINS = ["mailbox.example", "inbox.example", "post.example"]
COMPANY_COUNT = 450


@dataclass(frozen=True)
class Company:
    name: str
    domain: str
    industry: str
    size: str
    country: str


@dataclass(frozen=True)
class Person:
    """One demo lead's identity: what they type into a form."""

    index: int
    first_name: str
    last_name: str
    email: str
    email_normalized: str
    phone: str
    phone_e164: str
    title: str
    company: Company | None
    company_name: str
    country: str
    region: str


def _ascii(text: str) -> str:
    text = text.replace("ø", "o").replace("Ø", "O").replace("'", "")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def weighted(rng: random.Random, pairs: list[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[weight for _, weight in pairs])[0]


def _companies() -> list[Company]:
    rng = random.Random(f"{DEMO_SEED}:companies")
    companies, seen = [], set()
    country_weights = [(code, weight) for code, weight, _ in COUNTRIES]
    while len(companies) < COMPANY_COUNT:
        word, (suffix, industry) = rng.choice(COMPANY_WORDS), rng.choice(COMPANY_SUFFIXES)
        name = f"{word} {suffix}"
        if name in seen:
            continue
        seen.add(name)
        companies.append(
            Company(
                name=name,
                domain=f"{word}{suffix}.example".lower(),
                industry=industry,
                size=weighted(rng, SIZES),
                country=weighted(rng, country_weights),
            )
        )
    return companies


_PHONE_TEMPLATES: dict[str, tuple[int, str]] = {}


def _phone_for(rng: random.Random, country: str) -> tuple[str, str]:
    """A valid mobile number of the country: (as a person types it, E.164)."""
    if country not in _PHONE_TEMPLATES:
        example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
        _PHONE_TEMPLATES[country] = (example.country_code, str(example.national_number))
    code, national = _PHONE_TEMPLATES[country]
    while True:
        digits = national[:-6] + "".join(rng.choice("0123456789") for _ in range(6))
        number = phonenumbers.parse(f"+{code}{digits}")
        if phonenumbers.is_valid_number(number):
            typed = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            return typed, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def people(count: int) -> Iterator[Person]:
    rng = random.Random(f"{DEMO_SEED}:people")
    companies = _companies()
    # A few companies send many leads (accounts with several contacts), most send one or two.
    company_weights = [1 / (rank + 3) for rank in range(len(companies))]
    country_weights = [(code, weight) for code, weight, _ in COUNTRIES]
    regions = {code: names for code, _, names in COUNTRIES}
    emails: set[str] = set()
    phones: set[str] = set()
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = rng.choices(companies, weights=company_weights)[0] if rng.random() < 0.82 else None
        if company is not None:
            domain, country, company_name = company.domain, company.country, company.name
        else:
            domain, country = rng.choice(PERSONAL_DOMAINS), weighted(rng, country_weights)
            company_name = rng.choice(["", "", f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)[0]}"])
        f, la = _ascii(first), _ascii(last)
        local = rng.choice([f"{f}.{la}", f"{f}.{la}", f"{f[0]}{la}", f"{f}{la}", f"{f}_{la}"])
        email = f"{local}@{domain}"
        suffix = 1
        while email_normalize(email) in emails:
            suffix += 1
            email = f"{local}{suffix}@{domain}"
        if rng.random() < 0.15:
            email = email.capitalize()  # people type their address in all sorts of ways
        normalized = email_normalize(email)
        emails.add(normalized)
        phone = phone_e164 = ""
        if rng.random() < 0.7:
            phone, phone_e164 = _phone_for(rng, country)
            while phone_e164 in phones:
                phone, phone_e164 = _phone_for(rng, country)
            phones.add(phone_e164)
        yield Person(
            index=index,
            first_name=first,
            last_name=last,
            email=email,
            email_normalized=normalized,
            phone=phone,
            phone_e164=phone_e164,
            title=weighted(rng, TITLES),
            company=company,
            company_name=company_name,
            country=country,
            region=rng.choice(regions[country]),
        )


def accounts_ensure(*, persons: list[Person], reps: list[Any], created: Counter) -> dict[str, Account]:
    """The accounts of these people's companies (by domain). Bigger companies have a named owner,
    who gets the company's leads; enrichment later links each lead to its account by domain."""
    companies = {p.company.domain: p.company for p in persons if p.company is not None}
    existing = set(Account.objects.filter(domain__in=companies).values_list("domain", flat=True))
    new = [
        Account(
            domain=domain,
            name=company.name,
            industry=company.industry,
            company_size=company.size,
            country=company.country,
            owner=reps[stable_index(domain, len(reps))].user
            if company.size in {CompanySize.S1001_5000, CompanySize.S5000_PLUS}
            else None,
        )
        for domain, company in sorted(companies.items())
        if domain not in existing
    ]
    Account.objects.bulk_create(new, ignore_conflicts=True)
    created["accounts"] += len(new)
    return {account.domain: account for account in Account.objects.filter(domain__in=companies)}


def stable_index(text: str, modulo: int) -> int:
    """A stable index for a string (Python's hash() changes between processes)."""
    return sum(ord(char) * (i + 1) for i, char in enumerate(text)) % modulo
