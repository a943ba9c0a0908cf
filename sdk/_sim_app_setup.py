"""The simulator's ``app.setup``: the settings an administrator would set
(``Simulator(config={...})`` or ``sim.set_config``) and the roles they would grant people
(``sim.grant_role(user, "merchant")``) — what the app reads as ``ctx.config`` and
``ctx.roles``. As on the host, only names the manifest declares reach the app. Mixed into
``sdk.simulator.Simulator`` (through ``sdk._sim_effects.EffectsMixin``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdk._capability_services import CONFIG_VALUE_MAX
from sdk._sim_world import SimCall, SimUser


class AppSetupMixin:
    # provided by the Simulator
    manifest: dict[str, Any]

    def _init_app_setup(self, config: Mapping[str, str] | None) -> None:
        self._config: dict[str, str] = {}
        self._roles: dict[str, set[str]] = {}
        for name, value in (config or {}).items():
            self.set_config(name, value)

    def _declared(self, field: str) -> list[str]:
        return [item["name"] for item in self.manifest.get(field, [])]

    def set_config(self, name: str, value: str | None) -> None:
        """Set (or with None clear) a setting, as an administrator would in the admin panel;
        ``ValueError`` for a name the manifest's ``config`` does not declare (the host answers
        ``unknown_setting``) or a value that is not a string of 1-4000 characters."""
        if name not in self._declared("config"):
            raise ValueError(f"{self.manifest['id']} declares no setting {name!r}")
        if value is None:
            self._config.pop(name, None)
            return
        if not isinstance(value, str) or not value.strip() or len(value) > CONFIG_VALUE_MAX:
            raise ValueError(f"{name}: a string of 1-{CONFIG_VALUE_MAX} characters")
        self._config[name] = value

    def grant_role(self, user: SimUser, role: str) -> None:
        """Give ``user`` a role the manifest's ``roles`` declares (``ValueError`` otherwise, the
        host's ``unknown_role``), as a platform administrator would."""
        if role not in self._declared("roles"):
            raise ValueError(f"{self.manifest['id']} declares no role {role!r}")
        self._roles.setdefault(user.id, set()).add(role)

    def revoke_role(self, user: SimUser, role: str) -> None:
        """Take a role back (nothing happens when the user does not have it)."""
        self._roles.get(user.id, set()).discard(role)

    def _app_setup(self, call: SimCall, params: dict) -> dict:
        declared_roles = self._declared("roles")
        granted = self._roles.get(call.user.id, set()) if call.user is not None else set()
        return {
            "config": {n: v for n, v in self._config.items() if n in self._declared("config")},
            "roles": sorted(role for role in granted if role in declared_roles),
        }

    EFFECTS: dict[str, Any] = {"app.setup": _app_setup}
