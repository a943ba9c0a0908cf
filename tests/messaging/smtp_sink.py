"""A real SMTP server for the mail tests: aiosmtpd on a free loopback port, keeping every message
it accepts. ``fail_with`` makes it refuse recipients with an SMTP reply (``"451 …"``, ``"550 …"``);
``stop()`` and ``start()`` take it down and bring it back on the same port (a mail server outage);
``users`` turns on AUTH with those user names and passwords."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import _free_port
from tests.helpers import eventually


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_subtype() == subtype, f"no text/{subtype}"
        return body.get_content()

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")

    def token(self, page: str) -> str:
        """The token of the ``#<page>/<token>`` link, the same in both parts."""
        found = re.findall(rf"#{page}/([A-Za-z0-9_-]+)", self.text)
        assert found, f"no #{page}/ link in {self.text!r}"
        assert found[0] in self.html
        return found[0]

    def link(self, page: str) -> str:
        found = re.search(rf"\S+#{page}/[A-Za-z0-9_-]+", self.text)
        assert found, f"no #{page}/ link in {self.text!r}"
        return found.group(0)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.sink.fail_with:
            return self.sink.fail_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.sink.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.received: list[Received] = []
        self.fail_with: str | None = None
        self.users = users
        self.logins: list[str] = []
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert self.users is not None
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        extra = {}
        if self.users is not None:
            extra = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` messages to ``address``, once that many have arrived."""
        await eventually(
            lambda: len(self.to(address)) >= count, timeout, f"{count} mail(s) to {address}"
        )
        return self.to(address)[:count]
