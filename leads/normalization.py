"""Pure functions that turn what a form sent into the canonical values used to identify a person."""

import phonenumbers

# Domains of mailbox providers: an address there says nothing about the person's company.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "zoho.com",
        "qq.com",
        "163.com",
        "126.com",
        "free.fr",
        "orange.fr",
        "laposte.net",
        "libero.it",
        "t-online.de",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "naver.com",
        "rediffmail.com",
    }
)
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def email_normalize(email: str) -> str:
    """Lower-case; for Gmail also drop dots and +tags, which Gmail itself ignores."""
    email = email.strip().lower()
    if "@" not in email:
        return email
    local, _, domain = email.rpartition("@")
    if domain in _GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower() if "@" in email else ""


def company_domain_from_email(email: str) -> str:
    domain = email_domain(email)
    return "" if not domain or domain in FREE_MAIL_DOMAINS else domain


class PhoneError(ValueError):
    pass


def phone_to_e164(raw: str, *, region: str = "") -> str:
    """Parse to E.164; a number without a country code needs `region` (ISO 3166 alpha-2)."""
    try:
        number = phonenumbers.parse(raw, region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError("Enter a phone number with its country code, e.g. +44 20 7946 0958.") from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("This is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def country_from_e164(e164: str) -> str:
    if not e164:
        return ""
    region = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    return "" if region in (None, "ZZ", "001") else region
