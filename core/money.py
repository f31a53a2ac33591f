"""The one money type: integer minor units plus an ISO 4217 currency, with Stripe's decimal rules.

`Money` is never negative: prices, totals and refunds are all amounts of something, and there is no
subtraction, so a negative value can only come from a bug (the constructor refuses it).

`Money.parse` reads what a shop owner types into the chat. The rules, in order:

- Surrounding text may be the currency code in any case ("SGD 4.50", "4.50 sgd"), a currency symbol with
  up to three letters before it ("$4.50", "S$4.50", "HK$ 12", "4,50 €"), or a local word from
  `_LOCAL_SYMBOLS` ("Rp 15.000", "RM4.50", "25.000đ"). Symbols are decoration: "€4.50" for an SGD shop
  reads as SGD 4.50, because "$" alone names a dozen currencies. Any other letters (including a different
  currency code, "USD 4.50" for SGD) make the input garbage rather than guessing.
- Digit groups may be separated by "." or "," and, as thousands separators only, by spaces or "'".
- When both "." and "," occur, the last one is the decimal separator ("1,234.50", "1.234,50").
- One kind of separator occurring more than once is a thousands separator ("1,200,000", "1.200.000").
- A single "." or "," followed by exactly three digits is a thousands separator, except for three-decimal
  currencies where it is the decimal point ("KWD 1.250" is one dinar 250 fils). So "25.000" is VND 25,000
  and "1,200" is SGD 1,200.00; a mistyped "4.505" for SGD therefore reads as 4,505.00, which the offer
  rules (offer < normal price) and the owner's preview catch.
- Any other single separator is the decimal point. Zero-decimal currencies refuse a fractional part, even
  ".00", so "whole yen only" stays one simple rule to explain; others refuse more decimals than the
  currency has ("4.505" for KWD is fine, "4.5055" is not).
- Thousands groups must be well formed: a first group of 1-3 digits not starting with 0, then groups of 3.
- A minus sign anywhere before the number is "negative"; anything above 10,000,000 major units is
  "too_large". Zero parses (the offer rules decide that a price must be positive).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from core.errors import DomainError

# Stripe: https://docs.stripe.com/currencies#zero-decimal and #three-decimal. (Stripe has further special
# cases, e.g. ISK/HUF/TWD payouts and UGX amounts divisible by 100; the Stripe adapter handles those.)
# fmt: off
ZERO_DECIMAL_CURRENCIES: Final = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
    "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
})
THREE_DECIMAL_CURRENCIES: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

# Active ISO 4217 currency codes (funds and precious metals left out: nobody prices a croissant in XAU).
ISO_4217_CURRENCIES: Final = frozenset({
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF",
    "CLP", "CNY", "COP", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN",
    "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL",
    "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR",
    "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL",
    "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON",
    "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD",
    "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS",
    "UAH", "UGX", "USD", "UYU", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF",
    "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
})
# fmt: on

MAX_MAJOR_UNITS: Final = 10_000_000
_MAX_INPUT_CHARS: Final = 64

# Local ways of writing a currency that are letters, not Unicode currency symbols (compared casefolded).
_LOCAL_SYMBOLS: Final[dict[str, frozenset[str]]] = {
    "CNY": frozenset({"元", "rmb"}),
    "IDR": frozenset({"rp"}),
    "JPY": frozenset({"円"}),
    "KRW": frozenset({"원"}),
    "MYR": frozenset({"rm"}),
    "THB": frozenset({"บาท"}),
    "VND": frozenset({"đ", "vnđ"}),
}

_GROUPING_ONLY: Final = " \u00a0\u202f\u2009'"  # space, no-break, narrow no-break, thin space, apostrophe
_MINUS_SIGNS: Final = "-\u2212"
# First digit to last digit, through separators; what is left on either side is prefix/suffix text.
_NUMBER = re.compile(r"[0-9](?:[0-9.,' \u00a0\u202f\u2009]*[0-9])?")
_SEPARATOR = re.compile(r"[^0-9]+")


class InvalidAmount(DomainError):
    """What the owner typed is not a usable amount. `params["reason"]` says why (see `parse`)."""

    code = "invalid_amount"


def minor_units(currency: str) -> int:
    """How many decimal places `currency` has in Stripe (0, 2 or 3). Unknown codes raise ValueError."""
    _check_currency(currency)
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def _check_currency(currency: object) -> None:
    # Upper-case only, so "sgd" and "SGD" can never be two different currencies in equality or the database.
    if not isinstance(currency, str) or currency not in ISO_4217_CURRENCIES:
        raise ValueError(f"not an upper-case ISO 4217 currency code: {currency!r}")


@dataclass(frozen=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        _check_currency(self.currency)
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError(f"amount_minor must be an int, got {type(self.amount_minor).__name__}")
        if self.amount_minor < 0:
            raise ValueError(f"money is never negative: {self.amount_minor}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Read an amount a person typed for a shop priced in `currency` (rules in the module docstring)."""
        decimals = minor_units(currency)
        major, fraction = _split_amount(text, currency, decimals)
        if fraction and decimals == 0:
            raise _invalid("fraction_not_allowed", currency)
        if len(fraction) > decimals:
            raise _invalid("too_many_decimals", currency)
        amount = int(major) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
        if amount > MAX_MAJOR_UNITS * 10**decimals:
            raise _invalid("too_large", currency)
        return cls(amount, currency)

    def display(self) -> str:
        """Language-neutral display: "SGD 4.50", "JPY 1,200", "VND 25,000", "KWD 1.250"."""
        decimals = minor_units(self.currency)
        major, fraction = divmod(self.amount_minor, 10**decimals)
        text = f"{self.currency} {major:,}"
        return f"{text}.{fraction:0{decimals}d}" if decimals else text

    def __str__(self) -> str:
        return self.display()

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __mul__(self, times: int) -> Money:
        if not isinstance(times, int) or isinstance(times, bool):
            return NotImplemented
        return Money(self.amount_minor * times, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self._same_currency(other) < other.amount_minor

    def __le__(self, other: Money) -> bool:
        return self._same_currency(other) <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        return self._same_currency(other) > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        return self._same_currency(other) >= other.amount_minor

    def _same_currency(self, other: Money) -> int:
        # Equality stays structural (SGD 1 != JPY 1, and Money can live in sets); ordering and sums need
        # one currency, and mixing two is a bug we want loudly.
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")
        return self.amount_minor


def discount_percent(normal: Money, offer: Money) -> int:
    """Whole percent off the normal price, rounded down (so we never overstate a discount); 0 if none."""
    if offer >= normal:  # also checks the currencies match
        return 0
    return (normal.amount_minor - offer.amount_minor) * 100 // normal.amount_minor


def example_amount(currency: str) -> str:
    """A sample of what to type, for error messages: "4.50", "500", "4.500"."""
    decimals = minor_units(currency)
    return {0: "500", 3: "4.500"}.get(decimals, "4.50")


def _invalid(reason: str, currency: str) -> InvalidAmount:
    return InvalidAmount(
        f"invalid amount ({reason})",
        reason=reason,
        currency=currency,
        decimals=minor_units(currency),
        example=example_amount(currency),
    )


def _split_amount(text: str, currency: str, decimals: int) -> tuple[str, str]:
    """Return (major digits, fraction digits) of what was typed, or raise InvalidAmount."""
    cleaned = text.strip() if isinstance(text, str) else ""
    if not cleaned or len(cleaned) > _MAX_INPUT_CHARS:
        raise _invalid("garbage", currency)
    # Full-width digits and punctuation ("４．５０") from CJK keyboards become their ASCII forms.
    cleaned = unicodedata.normalize("NFKC", cleaned)
    match = _NUMBER.search(cleaned)
    if match is None:
        raise _invalid("garbage", currency)
    prefix, suffix = cleaned[: match.start()], cleaned[match.end() :]
    negative = any(sign in prefix for sign in _MINUS_SIGNS)
    prefix = prefix.translate({ord(sign): None for sign in _MINUS_SIGNS})
    if not (_is_currency_decoration(prefix, currency) and _is_currency_decoration(suffix, currency)):
        raise _invalid("garbage", currency)
    major, fraction = _split_number(match.group(), decimals)
    if major is None:
        raise _invalid("garbage", currency)
    if negative:
        raise _invalid("negative", currency)
    return major, fraction


def _is_currency_decoration(token: str, currency: str) -> bool:
    token = token.strip()
    if not token or token.upper() == currency or token.casefold() in _LOCAL_SYMBOLS.get(currency, ()):
        return True
    letters, symbol = token[:-1], token[-1]
    # "$", "€", "S$", "HK$", "NT$", "US$": up to three letters, then one currency symbol (category Sc).
    if unicodedata.category(symbol) != "Sc":
        return False
    return not letters or (len(letters) <= 3 and letters.isascii() and letters.isalpha())


def _split_number(number: str, decimals: int) -> tuple[str | None, str]:
    groups = _SEPARATOR.split(number)
    separators = _SEPARATOR.findall(number)
    if any(len(sep) != 1 for sep in separators):
        return None, ""
    if _last_separator_is_decimal(separators, groups[-1], decimals):
        integer_groups, integer_seps, fraction = groups[:-1], separators[:-1], groups[-1]
    else:
        integer_groups, integer_seps, fraction = groups, separators, ""
    if integer_seps and not _well_formed_thousands(integer_groups, integer_seps):
        return None, ""
    return "".join(integer_groups), fraction


def _last_separator_is_decimal(separators: list[str], last_group: str, decimals: int) -> bool:
    if not separators or separators[-1] in _GROUPING_ONLY:
        return False
    last = separators[-1]
    if separators.count(last) > 1:
        return False  # "1,200,000": repeated, so grouping
    if ("," if last == "." else ".") in separators:
        return True  # "1,234.50" / "1.234,50": the last one is the decimal point
    # A lone separator: "25.000" VND and "1,200" SGD are thousands; "1.250" KWD is one dinar 250 fils.
    return len(last_group) != 3 or decimals == 3


def _well_formed_thousands(groups: list[str], separators: list[str]) -> bool:
    first, rest = groups[0], groups[1:]
    return (
        len(set(separators)) == 1
        and 1 <= len(first) <= 3
        and not first.startswith("0")
        and all(len(group) == 3 for group in rest)
    )
