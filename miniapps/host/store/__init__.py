"""The mini-program host's collections, one module each; ``INDEXES`` for start-up."""

from miniapps.host.store import (
    app_calls,
    app_config,
    app_roles,
    app_storage,
    app_storage_unique,
    app_timers,
    app_uids,
    app_users,
    audit,
    consents,
    credentials,
    disabled_apps,
    ephemeral_cards,
    group_state,
    installs,
    remote_apps,
)

INDEXES = {
    app_config.COLLECTION: app_config.INDEXES,
    app_roles.COLLECTION: app_roles.INDEXES,
    installs.COLLECTION: installs.INDEXES,
    group_state.COLLECTION: group_state.INDEXES,
    consents.COLLECTION: consents.INDEXES,
    audit.COLLECTION: audit.INDEXES,
    app_users.COLLECTION: app_users.INDEXES,
    app_storage.COLLECTION: app_storage.INDEXES,
    app_storage_unique.COLLECTION: app_storage_unique.INDEXES,
    app_timers.COLLECTION: app_timers.INDEXES,
    remote_apps.COLLECTION: remote_apps.INDEXES,
    disabled_apps.COLLECTION: disabled_apps.INDEXES,
    app_uids.COLLECTION: app_uids.INDEXES,
    app_calls.COLLECTION: app_calls.INDEXES,
    credentials.COLLECTION: credentials.INDEXES,
    ephemeral_cards.COLLECTION: ephemeral_cards.INDEXES,
}
