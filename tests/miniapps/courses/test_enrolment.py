"""Enrolment: free at once, paid through the wallet (once, however often paid), via the shop."""

from __future__ import annotations

import asyncio

import pytest

from sdk import ViewError
from tests.miniapps.courses.conftest import make_course


async def test_a_free_course_enrols_at_once_and_once(sim, instructor, learner, chat):
    course = await make_course(sim, instructor, chat)
    for _ in range(2):
        answer = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
        assert answer == {"enrolled": True, "course_id": course["id"]}
    enrolment = sim.storage("enrolments")[f"{learner.id}:{course['id']}"]
    assert (enrolment["via"], enrolment["learner"]) == ("free", learner.id)
    assert sim.payments == {}


async def test_enrol_refuses_unknown_and_unpublished_courses(sim, instructor, learner, chat):
    draft = await make_course(sim, instructor, chat, published=False)
    for course_id in ("c-nothere", None, draft["id"]):
        with pytest.raises(ViewError) as refused:
            await sim.view(learner, chat, "enrol", {"course_id": course_id})
        assert refused.value.code == "unknown_course"
    assert sim.storage("enrolments") == {}


async def test_a_paid_course_enrols_after_the_payment_once_even_if_paid_twice(
    sim, instructor, learner, chat
):
    course = await make_course(sim, instructor, chat, price=1900)
    first = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    assert first["enrolled"] is False and first["payment"]["status"] == "pending"
    second = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    assert second["payment"]["payment_id"] == first["payment"]["payment_id"]  # asked once
    assert sim.storage("enrolments") == {}
    payment = sim.payments[first["payment"]["payment_id"]]
    assert (payment["amount"], payment["currency"]) == (1900, "USD")
    await sim.confirm_payment(learner, first["payment"]["payment_id"])
    await sim.confirm_payment(learner, second["payment"]["payment_id"])
    enrolments = sim.storage("enrolments")
    assert list(enrolments) == [f"{learner.id}:{course['id']}"]
    assert enrolments[f"{learner.id}:{course['id']}"]["via"] == "paid"
    again = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    assert again == {"enrolled": True, "course_id": course["id"]}


async def test_a_cancelled_or_forged_payment_does_not_enrol(sim, instructor, learner, chat):
    course = await make_course(sim, instructor, chat, price=1900)
    asked = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    payload = await sim.cancel_payment(learner, asked["payment"]["payment_id"])
    forged = {**payload, "status": "succeeded"}
    await sim.deliver_event("payment.succeeded", forged, user=learner, conversation=chat)
    assert sim.storage("enrolments") == {}


async def test_a_shop_order_enrols_the_buyer_once(sim, instructor, learner, chat):
    course = await make_course(sim, instructor, chat, price=4900)
    payload = {"order_id": "o-1", "product_id": "p-1", "course_id": course["id"]}
    for _ in range(2):  # delivered at least once
        await sim.deliver_event("shop.order_paid", payload, user=learner, conversation=chat)
    enrolments = sim.storage("enrolments")
    assert list(enrolments) == [f"{learner.id}:{course['id']}"]
    assert (
        enrolments[f"{learner.id}:{course['id']}"]["via"],
        enrolments[f"{learner.id}:{course['id']}"]["ref"],
    ) == ("shop", "o-1")
    got = await sim.view(learner, chat, "course.get", {"course_id": course["id"]})
    assert got["course"]["enrolled"] is True


@pytest.mark.parametrize(
    "payload",
    [
        {"order_id": "o-2", "product_id": "p-1", "course_id": "no-such-course"},
        {"order_id": "o-3", "product_id": "p-1", "course_id": "../../x"},
        {"order_id": "o-4", "product_id": "p-1"},
    ],
)
async def test_a_shop_order_for_an_unknown_course_is_ignored(sim, learner, chat, payload):
    await sim.deliver_event("shop.order_paid", payload, user=learner, conversation=chat)
    assert sim.storage("enrolments") == {}


async def test_a_shop_event_without_a_buyer_is_ignored(sim, instructor, chat):
    course = await make_course(sim, instructor, chat)
    payload = {"order_id": "o-5", "product_id": "p-1", "course_id": course["id"]}
    await sim.deliver_event("shop.order_paid", payload)
    assert sim.storage("enrolments") == {}


async def test_a_retried_enrol_asks_for_the_same_payment_and_charges_once(
    sim, instructor, learner, chat
):
    """A double tap, or the page calling again after a lost answer, while the payment is
    pending: the same payment (its ``order_ref``), so confirming "both" takes the price once."""
    course = await make_course(sim, instructor, chat, price=1900)
    sim.set_balance(learner, "USD", 5000)
    asked = await asyncio.gather(
        *(sim.view(learner, chat, "enrol", {"course_id": course["id"]}) for _ in range(5))
    )
    assert len({a["payment"]["payment_id"] for a in asked}) == 1
    assert len(sim.payments) == 1
    payment_id = asked[0]["payment"]["payment_id"]
    await sim.confirm_payment(learner, payment_id)
    again = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    assert again == {"enrolled": True, "course_id": course["id"]}
    assert sim.balance(learner, "USD") == 5000 - 1900
    assert list(sim.storage("enrolments")) == [f"{learner.id}:{course['id']}"]


async def test_after_a_cancelled_payment_enrol_asks_again(sim, instructor, learner, chat):
    course = await make_course(sim, instructor, chat, price=1900)
    first = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    await sim.cancel_payment(learner, first["payment"]["payment_id"])
    second = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    assert second["payment"]["status"] == "pending"
    assert second["payment"]["payment_id"] != first["payment"]["payment_id"]
    await sim.confirm_payment(learner, second["payment"]["payment_id"])
    assert list(sim.storage("enrolments")) == [f"{learner.id}:{course['id']}"]


async def test_a_new_price_is_a_new_order_and_paying_both_enrols_once_and_refunds_one(
    sim, instructor, learner, chat
):
    course = await make_course(sim, instructor, chat, price=1900)
    first = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    changed = {"course_id": course["id"], "title": "Python 101", "price": 2500, "published": True}
    await sim.view(instructor, chat, "course.save", changed)
    second = await sim.view(learner, chat, "enrol", {"course_id": course["id"]})
    assert second["payment"]["payment_id"] != first["payment"]["payment_id"]
    assert sim.payments[second["payment"]["payment_id"]]["amount"] == 2500
    await sim.confirm_payment(learner, first["payment"]["payment_id"])
    await sim.confirm_payment(learner, second["payment"]["payment_id"])
    enrolments = sim.storage("enrolments")
    assert list(enrolments) == [f"{learner.id}:{course['id']}"]
    assert enrolments[f"{learner.id}:{course['id']}"]["ref"] == first["payment"]["payment_id"]
    # The second payment bought nothing: it went back in full (once: refund_ref rf-<payment>).
    assert sim.payments[second["payment"]["payment_id"]]["refunded"] == 2500
    assert sim.payments[first["payment"]["payment_id"]]["refunded"] == 0
