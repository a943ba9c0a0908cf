"""REST routes, one module per topic, each an ``Api`` of declared routes."""

from gateway.routes import (
    admin,
    auth,
    calls,
    contacts,
    conversations,
    health,
    me,
    miniapps,
    stripe,
    wallet,
)

APIS = [
    health.api,
    auth.api,
    me.api,
    contacts.api,
    conversations.api,
    miniapps.api,
    wallet.api,
    calls.api,
    stripe.api,
    admin.api,
]
