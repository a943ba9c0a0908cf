"""The travel app's expense splits, balances and "simplify debts" (miniapps/travel/splits.py):
each split mode and its rounding rule, every bad input, and Hypothesis properties — a split
never creates or loses a cent, balances add up to zero per currency, simplify settles everyone
in at most n - 1 positive transfers, and the same input always gives the same output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# The app's own module, imported as its runtime imports it (the folder is the import root).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "miniapps" / "travel"))
import splits
from splits import SplitError, balances, simplify, split

# --- split: each mode ----------------------------------------------------------------------


def test_equal_split_gives_the_leftover_cents_to_the_first_ids_in_order() -> None:
    # 1000 / 3 = 333 r 1: the one extra cent goes to the smallest id, whatever the list order.
    assert split(1000, ["cleo", "ana", "ben"], "equal") == {"cleo": 333, "ana": 334, "ben": 333}
    assert split(1001, ["cleo", "ana", "ben"], "equal") == {"cleo": 333, "ana": 334, "ben": 334}
    assert split(999, ["ben", "ana", "cleo"], "equal") == {"ben": 333, "ana": 333, "cleo": 333}


def test_equal_split_keeps_the_participants_order() -> None:
    assert list(split(10, ["zed", "amy"], "equal")) == ["zed", "amy"]


def test_equal_split_of_fewer_cents_than_people() -> None:
    assert split(2, ["c", "a", "b"], "equal") == {"c": 0, "a": 1, "b": 1}


def test_exact_split_returns_the_amounts_given() -> None:
    parts = split(1500, ["ana", "ben"], "exact", exact={"ben": 1500, "ana": 0})
    assert parts == {"ana": 0, "ben": 1500}
    assert list(parts) == ["ana", "ben"]


def test_shares_split_is_proportional() -> None:
    assert split(
        1200, ["ana", "ben", "cleo"], "shares", shares={"ana": 1, "ben": 2, "cleo": 3}
    ) == {
        "ana": 200,
        "ben": 400,
        "cleo": 600,
    }


def test_shares_split_gives_leftover_cents_by_largest_remainder_then_id() -> None:
    # 100 * 1/6 = 16.67, 100 * 2/6 = 33.33, 100 * 3/6 = 50: floors 16 + 33 + 50 = 99, and the
    # one cent left goes to ana (remainder .67), not ben (.33).
    assert split(100, ["ben", "ana", "cleo"], "shares", shares={"ana": 1, "ben": 2, "cleo": 3}) == {
        "ben": 33,
        "ana": 17,
        "cleo": 50,
    }
    # Equal remainders (1/3 each of 10 with shares 1:1:1 → 3.33): ties by id order.
    assert split(10, ["c", "b", "a"], "shares", shares={"a": 1, "b": 1, "c": 1}) == {
        "c": 3,
        "b": 3,
        "a": 4,
    }
    parts = split(7, ["x", "y", "w"], "shares", shares={"x": 4, "y": 3, "w": 3})
    # 7*4/10 = 2.8, 7*3/10 = 2.1 each: floors 2+2+2 = 6, one cent to x (remainder .8).
    assert parts == {"x": 3, "y": 2, "w": 2}


def test_split_among_travellers_only() -> None:
    trip = {"ana", "ben", "cleo"}
    assert split(4, ["ana", "ben"], "equal", travellers=trip) == {"ana": 2, "ben": 2}


# --- split: bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"participants": []}, "no_participants"),
        ({"participants": ["ana", "ben", "ana"]}, "duplicate_participant"),
        ({"participants": "ana"}, "invalid_participant"),
        ({"participants": ["ana", ""]}, "invalid_participant"),
        ({"participants": ["ana", 7]}, "invalid_participant"),
        (
            {"participants": [f"p{i}" for i in range(splits.MAX_PARTICIPANTS + 1)]},
            "too_many_participants",
        ),
        ({"amount": 0}, "invalid_amount"),
        ({"amount": -500}, "invalid_amount"),
        ({"amount": 12.5}, "invalid_amount"),
        ({"amount": True}, "invalid_amount"),
        ({"amount": "100"}, "invalid_amount"),
        ({"mode": "percent"}, "unknown_mode"),
        ({"mode": "exact"}, "invalid_exact"),
        ({"mode": "exact", "exact": {"ana": 600, "ben": 300}}, "exact_mismatch"),
        ({"mode": "exact", "exact": {"ana": 1100, "ben": -100}}, "invalid_exact"),
        ({"mode": "exact", "exact": {"ana": 500.0, "ben": 500}}, "invalid_exact"),
        ({"mode": "exact", "exact": {"ana": 1000}}, "invalid_exact"),
        ({"mode": "exact", "exact": {"ana": 500, "ben": 400, "zoe": 100}}, "invalid_exact"),
        ({"mode": "shares"}, "invalid_shares"),
        ({"mode": "shares", "shares": {"ana": 1, "ben": 0}}, "invalid_shares"),
        ({"mode": "shares", "shares": {"ana": 1, "ben": -2}}, "invalid_shares"),
        ({"mode": "shares", "shares": {"ana": 1, "ben": 1.5}}, "invalid_shares"),
        ({"mode": "shares", "shares": {"ana": 1}}, "invalid_shares"),
        ({"travellers": {"ana", "cleo"}}, "not_a_traveller"),
    ],
)
def test_split_rejects_bad_input(kwargs: dict, code: str) -> None:
    call = {"amount": 1000, "participants": ["ana", "ben"], "mode": "equal"} | kwargs
    amount, participants, mode = call.pop("amount"), call.pop("participants"), call.pop("mode")
    with pytest.raises(SplitError) as raised:
        split(amount, participants, mode, **call)
    assert raised.value.code == code
    assert raised.value.message


def test_not_a_traveller_names_the_outsiders() -> None:
    with pytest.raises(SplitError) as raised:
        split(900, ["ana", "zoe", "max"], "equal", travellers=["ana"])
    assert "max, zoe" in raised.value.message


def test_split_does_not_change_the_mappings_it_is_given() -> None:
    exact = {"ana": 600, "ben": 400}
    shares = {"ana": 1, "ben": 3}
    split(1000, ["ana", "ben"], "exact", exact=exact)
    split(1000, ["ana", "ben"], "shares", shares=shares)
    assert exact == {"ana": 600, "ben": 400}
    assert shares == {"ana": 1, "ben": 3}


# --- balances ------------------------------------------------------------------------------


def test_balances_are_paid_minus_owed_per_currency() -> None:
    expenses = [
        {
            "payer": "ana",
            "amount": 9000,
            "currency": "EUR",
            "parts": split(9000, ["ana", "ben", "cleo"], "equal"),
        },
        {"payer": "ben", "amount": 3000, "currency": "EUR", "parts": {"ana": 1000, "cleo": 2000}},
        {"payer": "cleo", "amount": 500, "currency": "USD", "parts": {"ana": 500}},
    ]
    assert balances(expenses) == {
        "EUR": {"ana": 5000, "ben": 0, "cleo": -5000},
        "USD": {"ana": -500, "cleo": 500},
    }
    assert list(balances(expenses)) == ["EUR", "USD"]


def test_balances_of_no_expenses() -> None:
    assert balances([]) == {}


@pytest.mark.parametrize(
    "change",
    [
        {"payer": ""},
        {"payer": None},
        {"currency": ""},
        {"amount": 0},
        {"amount": 100.0},
        {"parts": {}},
        {"parts": {"ana": 60, "ben": 30}},
        {"parts": {"ana": 110, "ben": -10}},
        {"parts": {"ana": 100, "": 0}},
        {"parts": [("ana", 100)]},
    ],
)
def test_balances_reject_bad_expenses(change: dict) -> None:
    good = {"payer": "ana", "amount": 100, "currency": "EUR", "parts": {"ana": 50, "ben": 50}}
    with pytest.raises(SplitError) as raised:
        balances([good, good | change])
    assert raised.value.code == "invalid_expense"
    assert "Expense 1" in raised.value.message


def test_balances_reject_an_expense_that_is_not_an_object() -> None:
    with pytest.raises(SplitError) as raised:
        balances(["ana paid"])
    assert raised.value.code == "invalid_expense"


# --- simplify ------------------------------------------------------------------------------


def test_simplify_largest_debtor_pays_largest_creditor() -> None:
    assert simplify({"ana": 5000, "ben": 0, "cleo": -5000}) == [("cleo", "ana", 5000)]
    assert simplify({"a": 70, "b": 30, "c": -60, "d": -40}) == [
        ("c", "a", 60),
        ("d", "b", 30),
        ("d", "a", 10),
    ]


def test_simplify_breaks_ties_by_id() -> None:
    assert simplify({"d": 10, "c": 10, "b": -10, "a": -10}) == [("a", "c", 10), ("b", "d", 10)]


def test_simplify_collapses_a_chain_of_debts() -> None:
    # ana owes ben 10, ben owes cleo 10: one transfer, ana → cleo.
    owed = balances(
        [
            {"payer": "ben", "amount": 10, "currency": "EUR", "parts": {"ana": 10}},
            {"payer": "cleo", "amount": 10, "currency": "EUR", "parts": {"ben": 10}},
        ]
    )["EUR"]
    assert simplify(owed) == [("ana", "cleo", 10)]


def test_simplify_of_settled_balances_is_empty() -> None:
    assert simplify({}) == []
    assert simplify({"ana": 0, "ben": 0}) == []


@pytest.mark.parametrize(
    ("balance", "code"),
    [
        ({"ana": 10, "ben": -9}, "unbalanced"),
        ({"ana": 10}, "unbalanced"),
        ({"ana": 10.0, "ben": -10.0}, "invalid_balance"),
        ({"ana": True, "ben": -1}, "invalid_balance"),
        ({"": 10, "ben": -10}, "invalid_balance"),
    ],
)
def test_simplify_rejects_bad_balances(balance: dict, code: str) -> None:
    with pytest.raises(SplitError) as raised:
        simplify(balance)
    assert raised.value.code == code


# --- properties ----------------------------------------------------------------------------

people_ids = st.text(alphabet="abcdefghij", min_size=1, max_size=3)
amounts = st.integers(min_value=1, max_value=10**12)


@st.composite
def split_calls(draw: st.DrawFn) -> tuple[int, list[str], str, dict]:
    """A valid split call in any mode: (amount, participants, mode, keyword arguments)."""
    people = draw(st.lists(people_ids, min_size=1, max_size=12, unique=True))
    amount = draw(amounts)
    mode = draw(st.sampled_from(splits.MODES))
    if mode == "equal":
        return amount, people, mode, {}
    if mode == "shares":
        weights = draw(st.lists(st.integers(1, 1000), min_size=len(people), max_size=len(people)))
        return amount, people, mode, {"shares": dict(zip(people, weights, strict=True))}
    cuts = sorted(
        draw(st.lists(st.integers(0, amount), min_size=len(people) - 1, max_size=len(people) - 1))
    )
    bounds = [0, *cuts, amount]
    exact = {person: bounds[i + 1] - bounds[i] for i, person in enumerate(people)}
    return amount, people, mode, {"exact": exact}


@settings(max_examples=300)
@given(split_calls())
def test_parts_always_add_up_to_the_amount(call: tuple) -> None:
    amount, people, mode, kwargs = call
    parts = split(amount, people, mode, **kwargs)
    assert list(parts) == people
    assert sum(parts.values()) == amount
    assert all(_is_cents(part) and part >= 0 for part in parts.values())
    # Same input, same output — also with the participants listed in another order.
    assert split(amount, people, mode, **kwargs) == parts
    assert split(amount, list(reversed(people)), mode, **kwargs) == parts


@settings(max_examples=300)
@given(split_calls())
def test_shares_parts_are_within_one_cent_of_the_exact_share(call: tuple) -> None:
    amount, people, _, _ = call
    weights = {person: (i * 7) % 5 + 1 for i, person in enumerate(people)}
    parts = split(amount, people, "shares", shares=weights)
    total = sum(weights.values())
    for person, part in parts.items():
        # |part - amount·w/total| < 1, in integers.
        assert abs(part * total - amount * weights[person]) < total
    # Largest remainder, ties by id: whoever got the extra cent had a remainder at least as
    # large as anyone who did not (and, if equal, an earlier id).
    floors = {person: amount * weights[person] // total for person in people}
    remainders = {person: amount * weights[person] % total for person in people}
    lucky = [person for person in people if parts[person] > floors[person]]
    unlucky = [person for person in people if parts[person] == floors[person]]
    assert len(lucky) + len(unlucky) == len(people)
    for winner in lucky:
        for loser in unlucky:
            assert (-remainders[winner], winner) < (-remainders[loser], loser)


@settings(max_examples=300)
@given(st.lists(people_ids, min_size=1, max_size=30, unique=True), amounts)
def test_equal_parts_differ_by_at_most_one_cent(people: list[str], amount: int) -> None:
    parts = split(amount, people, "equal")
    assert max(parts.values()) - min(parts.values()) <= 1
    assert sum(parts.values()) == amount
    # The bigger parts go to the first ids in string order.
    ordered = [parts[person] for person in sorted(people)]
    assert ordered == sorted(ordered, reverse=True)


@st.composite
def expense_lists(draw: st.DrawFn) -> list[dict]:
    expenses = []
    for _ in range(draw(st.integers(0, 15))):
        amount, people, mode, kwargs = draw(split_calls())
        expenses.append(
            {
                "payer": draw(people_ids),
                "amount": amount,
                "currency": draw(st.sampled_from(["EUR", "USD", "JPY"])),
                "parts": split(amount, people, mode, **kwargs),
            }
        )
    return expenses


@settings(max_examples=200)
@given(expense_lists())
def test_balances_add_up_to_zero_per_currency(expenses: list[dict]) -> None:
    result = balances(expenses)
    assert set(result) == {expense["currency"] for expense in expenses}
    for currency, balance in result.items():
        assert sum(balance.values()) == 0
        paid = sum(e["amount"] for e in expenses if e["currency"] == currency)
        assert sum(value for value in balance.values() if value > 0) <= paid
    assert balances(expenses) == result


@settings(max_examples=300)
@given(st.dictionaries(people_ids, st.integers(-(10**9), 10**9), max_size=25))
def test_simplify_settles_everyone_in_at_most_n_minus_one_transfers(raw: dict[str, int]) -> None:
    # Make the drawn balances add up to zero by giving the opposite of their sum to one more.
    balance = dict(raw)
    balance["zz"] = -sum(raw.values())
    transfers = simplify(balance)
    owing = [person for person, value in balance.items() if value]
    assert len(transfers) <= max(len(owing) - 1, 0)
    after = dict(balance)
    for debtor, creditor, amount in transfers:
        assert _is_cents(amount) and amount > 0
        assert debtor != creditor
        # Money only flows from those who owe to those who are owed, never overshooting.
        assert balance[debtor] < 0 < balance[creditor]
        after[debtor] += amount
        after[creditor] -= amount
    assert all(value == 0 for value in after.values())
    assert simplify(balance) == transfers
    assert simplify(dict(reversed(list(balance.items())))) == transfers


@settings(max_examples=100)
@given(expense_lists())
def test_simplify_settles_the_balances_of_any_expenses(expenses: list[dict]) -> None:
    for balance in balances(expenses).values():
        after = dict(balance)
        for debtor, creditor, amount in simplify(balance):
            after[debtor] += amount
            after[creditor] -= amount
        assert set(after.values()) <= {0}


def _is_cents(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- several payers (``paid``) ---------------------------------------------------------------


def test_balances_with_several_payers() -> None:
    # A booking: each paid their own share, so nobody owes anybody.
    shares = {"ana": 10001, "ben": 10000, "cleo": 10000}
    booking = {"amount": 30001, "currency": "EUR", "paid": shares, "parts": shares}
    assert balances([booking]) == {"EUR": {"ana": 0, "ben": 0, "cleo": 0}}
    # Ana and Ben paid a 90.00 dinner between them, split equally three ways.
    dinner = {
        "amount": 9000,
        "currency": "EUR",
        "paid": {"ana": 6000, "ben": 3000},
        "parts": split(9000, ["ana", "ben", "cleo"], "equal"),
    }
    assert balances([booking, dinner]) == {"EUR": {"ana": 3000, "ben": 0, "cleo": -3000}}


@pytest.mark.parametrize(
    "change",
    [
        {"payer": "ana"},  # both payer and paid
        {"paid": {}},
        {"paid": {"ana": 60, "ben": 30}},
        {"paid": {"ana": 110, "ben": -10}},
        {"paid": {"ana": 100.0}},
        {"paid": {"": 100}},
        {"paid": {"ana": True, "ben": 99}},
        {"paid": [("ana", 100)]},
    ],
)
def test_balances_reject_bad_payments(change: dict) -> None:
    good = {"paid": {"ana": 70, "ben": 30}, "amount": 100, "currency": "EUR", "parts": {"ana": 100}}
    with pytest.raises(SplitError) as raised:
        balances([good, good | change])
    assert raised.value.code == "invalid_expense"
    assert "Expense 1" in raised.value.message


@st.composite
def payments(draw: st.DrawFn, amount: int) -> dict[str, int]:
    """``amount`` cut among one to five payers (some may pay 0)."""
    payers = draw(st.lists(people_ids, min_size=1, max_size=5, unique=True))
    cuts = sorted(
        draw(st.lists(st.integers(0, amount), min_size=len(payers) - 1, max_size=len(payers) - 1))
    )
    bounds = [0, *cuts, amount]
    return {person: bounds[i + 1] - bounds[i] for i, person in enumerate(payers)}


@st.composite
def multi_payer_expenses(draw: st.DrawFn) -> list[dict]:
    expenses = []
    for _ in range(draw(st.integers(0, 12))):
        amount, people, mode, kwargs = draw(split_calls())
        expense = {
            "amount": amount,
            "currency": draw(st.sampled_from(["EUR", "USD", "JPY"])),
            "parts": split(amount, people, mode, **kwargs),
        }
        if draw(st.booleans()):
            expense["paid"] = draw(payments(amount))
        else:
            expense["payer"] = draw(people_ids)
        expenses.append(expense)
    return expenses


@settings(max_examples=200)
@given(multi_payer_expenses())
def test_several_payers_balance_to_what_each_paid_minus_owed(expenses: list[dict]) -> None:
    result = balances(expenses)
    expected: dict[str, dict[str, int]] = {}
    for expense in expenses:
        ledger = expected.setdefault(expense["currency"], {})
        paid = expense.get("paid") or {expense["payer"]: expense["amount"]}
        for person, value in paid.items():
            ledger[person] = ledger.get(person, 0) + value
        for person, part in expense["parts"].items():
            ledger[person] = ledger.get(person, 0) - part
    assert result == expected
    for balance in result.values():
        assert sum(balance.values()) == 0
        after = dict(balance)
        transfers = simplify(balance)
        assert len(transfers) <= max(sum(1 for v in balance.values() if v) - 1, 0)
        for debtor, creditor, amount in transfers:
            after[debtor] += amount
            after[creditor] -= amount
        assert set(after.values()) <= {0}
    assert balances(list(reversed(expenses))) == result


@settings(max_examples=200)
@given(split_calls(), people_ids)
def test_one_payer_in_paid_is_the_same_as_payer(call: tuple, payer: str) -> None:
    amount, people, mode, kwargs = call
    parts = split(amount, people, mode, **kwargs)
    base = {"amount": amount, "currency": "EUR", "parts": parts}
    assert balances([base | {"paid": {payer: amount}}]) == balances([base | {"payer": payer}])


@settings(max_examples=200)
@given(split_calls())
def test_everyone_paying_their_own_part_owes_nothing(call: tuple) -> None:
    amount, people, mode, kwargs = call
    parts = split(amount, people, mode, **kwargs)
    result = balances([{"amount": amount, "currency": "EUR", "paid": parts, "parts": parts}])
    assert set(result["EUR"].values()) == {0}
    assert simplify(result["EUR"]) == []
