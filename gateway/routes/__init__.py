"""REST routes, one module per topic, each an ``Api`` of declared routes."""

from gateway.routes import (
    admin,
    auth,
    calls,
    contacts,
    conversations,
    credentials,
    health,
    hooks,
    me,
    media,
    miniapps,
    notifications,
    push,
    search,
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
    media.api,
    search.api,
    notifications.api,
    push.api,
    admin.api,
    credentials.api,
    hooks.api,
]
