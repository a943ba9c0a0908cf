"""Splitting a trip's expenses and settling the balances ("simplify debts"), Splitwise-style.

Pure functions, standard library only, no I/O. Every amount is an ``int`` in the minor units of
one currency (cents for EUR): an expense never mixes currencies, so nothing here converts.

Rounding rule (the one every part of the travel app relies on): a split first gives each
participant the floor of their exact share, then hands the cents left over, one each, to the
participants with the **largest remainder** (the fractional part that was floored away), ties
broken by **participant id order** (plain string order). In ``equal`` mode every remainder is
the same, so the first ids in string order get the extra cent. The parts therefore always add up
to the expense exactly — a split never creates or loses a cent — and the same input always gives
the same parts, whatever order the participants were listed in.

Signs: a balance is *paid minus owed*; positive means the others owe this person (creditor),
negative means this person owes (debtor).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

MODES = ("equal", "exact", "shares")
MAX_PARTICIPANTS = 200  # a trip is a group; this bounds the work a single split can ask for


class SplitError(Exception):
    """``code``: no_participants, invalid_participant, duplicate_participant, too_many_participants,
    not_a_traveller, invalid_amount, unknown_mode, invalid_exact, exact_mismatch, invalid_shares,
    invalid_expense, invalid_balance, unbalanced; ``message`` can be shown as is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as "1 cent" is always a bug upstream.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_amount(amount: object) -> int:
    if not _is_int(amount) or amount <= 0:
        raise SplitError("invalid_amount", "The amount must be a whole number of cents above zero.")
    return amount


def _check_participants(
    participants: Iterable[str], travellers: Collection[str] | None
) -> list[str]:
    if isinstance(participants, str) or not isinstance(participants, Iterable):
        raise SplitError("invalid_participant", "Give the participants as a list of user ids.")
    people = list(participants)
    if not people:
        raise SplitError("no_participants", "Choose at least one person to split with.")
    if len(people) > MAX_PARTICIPANTS:
        raise SplitError(
            "too_many_participants", f"An expense is split among at most {MAX_PARTICIPANTS}."
        )
    seen: set[str] = set()
    for person in people:
        if not isinstance(person, str) or not person:
            raise SplitError("invalid_participant", "Each participant must be a user id.")
        if person in seen:
            raise SplitError("duplicate_participant", f"{person} is listed more than once.")
        seen.add(person)
    if travellers is not None:
        outsiders = sorted(seen - set(travellers))
        if outsiders:
            raise SplitError("not_a_traveller", f"Not on this trip: {', '.join(outsiders)}.")
    return people


def _per_participant(
    values: Mapping[str, int] | None, people: list[str], code: str, what: str
) -> dict[str, int]:
    if not isinstance(values, Mapping):
        raise SplitError(code, f"Give {what} for each participant.")
    if set(values) != set(people):
        missing = sorted(set(people) - set(values))
        extra = sorted(str(key) for key in set(values) - set(people))
        detail = "; ".join(
            part
            for part in (
                f"missing for {', '.join(missing)}" if missing else "",
                f"given for non-participants {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise SplitError(code, f"Give {what} for exactly the participants ({detail}).")
    return {person: values[person] for person in people}


def _largest_remainder(amount: int, weights: dict[str, int]) -> dict[str, int]:
    """Parts of ``amount`` proportional to ``weights`` (all ≥ 1), adding up to ``amount``:
    floors first, then one extra cent each by largest remainder, ties by id order."""
    total = sum(weights.values())
    parts = {person: amount * weight // total for person, weight in weights.items()}
    leftover = amount - sum(parts.values())  # < len(weights): each floor lost less than 1
    order = sorted(weights, key=lambda person: (-(amount * weights[person] % total), person))
    for person in order[:leftover]:
        parts[person] += 1
    return parts


def split(
    amount: int,
    participants: Iterable[str],
    mode: str,
    *,
    exact: Mapping[str, int] | None = None,
    shares: Mapping[str, int] | None = None,
    travellers: Collection[str] | None = None,
) -> dict[str, int]:
    """Split ``amount`` (minor units, > 0) among ``participants`` (distinct user ids).

    ``mode`` is ``equal``; ``exact`` (``exact`` maps each participant to a whole number ≥ 0 of
    cents, adding up to ``amount``); or ``shares`` (``shares`` maps each participant to a whole
    number ≥ 1, parts proportional to it). When ``travellers`` is given, every participant must
    be one. Returns participant → part, in the order the participants were given; the parts add
    up to ``amount`` exactly (rounding rule in the module docstring). Raises ``SplitError``.
    """
    amount = _check_amount(amount)
    if mode not in MODES:
        raise SplitError("unknown_mode", f"Split mode must be one of {', '.join(MODES)}.")
    people = _check_participants(participants, travellers)
    if mode == "equal":
        return _largest_remainder(amount, dict.fromkeys(people, 1))
    if mode == "exact":
        given = _per_participant(exact, people, "invalid_exact", "an exact amount")
        for person, part in given.items():
            if not _is_int(part) or part < 0:
                raise SplitError(
                    "invalid_exact", f"{person}'s amount must be a whole number of cents ≥ 0."
                )
        if sum(given.values()) != amount:
            raise SplitError(
                "exact_mismatch",
                f"The amounts add up to {sum(given.values())}, not {amount}.",
            )
        return given
    weights = _per_participant(shares, people, "invalid_shares", "a number of shares")
    for person, weight in weights.items():
        if not _is_int(weight) or weight < 1:
            raise SplitError("invalid_shares", f"{person}'s shares must be a whole number ≥ 1.")
    return _largest_remainder(amount, weights)


def balances(expenses: Iterable[Mapping]) -> dict[str, dict[str, int]]:
    """Net balance per currency per person over ``expenses``: what each paid minus what each
    owes. Each expense is ``{"amount", "currency", "parts"}`` with ``parts`` as ``split``
    returns them (they must add up to ``amount``) and who paid it: either ``"payer"`` (one
    person paid it all) or ``"paid"`` (person → what they paid, whole cents ≥ 0 adding up to
    ``amount`` — several payers, e.g. a booking where each traveller paid their own share),
    never both. Everyone named in an expense appears in its currency, even at zero; currencies
    and people come in sorted order. Each currency's balances add up to zero. Raises
    ``SplitError("invalid_expense", …)``."""
    totals: dict[str, dict[str, int]] = {}
    for index, expense in enumerate(expenses):
        if not isinstance(expense, Mapping):
            raise SplitError("invalid_expense", f"Expense {index} is not an object.")
        amount, currency = expense.get("amount"), expense.get("currency")
        parts = expense.get("parts")
        if not isinstance(currency, str) or not currency:
            raise SplitError("invalid_expense", f"Expense {index} has no currency.")
        if not _is_int(amount) or amount <= 0:
            raise SplitError("invalid_expense", f"Expense {index} has no valid amount.")
        paid = _payers(expense, index, amount)
        if not isinstance(parts, Mapping) or not parts:
            raise SplitError("invalid_expense", f"Expense {index} is not split among anyone.")
        if not _valid_amounts(parts):
            raise SplitError("invalid_expense", f"Expense {index} has an invalid part.")
        if sum(parts.values()) != amount:
            raise SplitError(
                "invalid_expense", f"Expense {index}'s parts do not add up to its amount."
            )
        ledger = totals.setdefault(currency, {})
        for person, value in paid.items():
            ledger[person] = ledger.get(person, 0) + value
        for person, part in parts.items():
            ledger[person] = ledger.get(person, 0) - part
    return {
        currency: {person: totals[currency][person] for person in sorted(totals[currency])}
        for currency in sorted(totals)
    }


def _valid_amounts(values: Mapping) -> bool:
    """Every key a non-empty string, every value whole cents ≥ 0."""
    return all(
        isinstance(person, str) and person and _is_int(value) and value >= 0
        for person, value in values.items()
    )


def _payers(expense: Mapping, index: int, amount: int) -> Mapping[str, int]:
    """Who paid ``expense`` (already checked: its ``amount``): ``{payer: amount}`` or its
    ``paid``, checked."""
    payer, paid = expense.get("payer"), expense.get("paid")
    if paid is None:
        if not isinstance(payer, str) or not payer:
            raise SplitError("invalid_expense", f"Expense {index} has no payer.")
        return {payer: amount}
    if payer is not None:
        raise SplitError("invalid_expense", f"Expense {index} gives both payer and paid.")
    if not isinstance(paid, Mapping) or not paid:
        raise SplitError("invalid_expense", f"Expense {index} has no payer.")
    if not _valid_amounts(paid):
        raise SplitError("invalid_expense", f"Expense {index} has an invalid payment.")
    if sum(paid.values()) != amount:
        raise SplitError(
            "invalid_expense", f"Expense {index}'s payments do not add up to its amount."
        )
    return paid


def simplify(balance: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """Transfers ``(from, to, amount)`` that settle every balance in ``balance`` (one currency,
    person → paid minus owed, adding up to zero): at most n - 1 of them for n people with a
    non-zero balance, every amount > 0.

    Greedy and deterministic: the largest debtor pays the largest creditor as much as settles
    one of them, ties broken by id order, until everyone is at zero. Each transfer zeroes at least
    one person and the last zeroes two, hence the n - 1 bound. (Minimising the number of
    transfers exactly is NP-hard; Splitwise's "simplify debts" makes the same trade.)
    Raises ``SplitError`` (invalid_balance, unbalanced)."""
    for person, value in balance.items():
        if not isinstance(person, str) or not person or not _is_int(value):
            raise SplitError("invalid_balance", "Each balance must be a whole number of cents.")
    if sum(balance.values()) != 0:
        raise SplitError("unbalanced", "The balances do not add up to zero.")
    remaining = {person: value for person, value in balance.items() if value}
    transfers: list[tuple[str, str, int]] = []
    while remaining:
        debtor = min(remaining, key=lambda person: (remaining[person], person))
        creditor = min(remaining, key=lambda person: (-remaining[person], person))
        paid = min(-remaining[debtor], remaining[creditor])
        transfers.append((debtor, creditor, paid))
        for person, change in ((debtor, paid), (creditor, -paid)):
            remaining[person] += change
            if not remaining[person]:
                del remaining[person]
    return transfers
