"""Two apps with sibling modules of the same name (the shop's and the courses' ``catalog.py``)
loaded in one process — as the simulator does in a test run — each get their own."""

from __future__ import annotations

from sdk.simulator import Simulator


async def test_shop_then_courses_then_shop_each_run_their_own_modules():
    shop = Simulator("miniapps/shop")
    courses = Simulator("miniapps/courses")
    shop_again = Simulator("miniapps/shop")
    for sim, command, title in (
        (shop, "/shop", "Shop"),
        (courses, "/course", "Courses"),
        (shop_again, "/shop", "Shop"),
    ):
        user = sim.user("ann")
        chat = sim.conversation(members=[user])
        await sim.command(user, chat, command)
        said = sim.messages(chat) + sim.ephemeral(user)
        assert said, command
        text = str(said[-1])
        assert title in text, (command, text[:300])
