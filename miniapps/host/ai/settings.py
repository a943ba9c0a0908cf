"""What the operator set for the ``ai`` capability (``storage.config``'s ``AI_*`` settings)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.config import Config


@dataclass(frozen=True)
class AiSettings:
    """The model server (``base_url``, ``api_key``, ``model``), how long to wait for it at each
    step (``timeout``), whether it takes images (``vision``), and the budgets in tokens (0: no
    limit)."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    timeout: float = 60.0
    vision: bool = False
    app_tokens_per_day: int = 200_000
    conversation_tokens_per_day: int = 50_000
    user_tokens_per_hour: int = 20_000

    @classmethod
    def from_config(cls, config: Config) -> AiSettings:
        return cls(
            base_url=config.ai_base_url,
            api_key=config.ai_api_key,
            model=config.ai_model,
            timeout=config.ai_timeout,
            vision=config.ai_vision,
            app_tokens_per_day=config.ai_app_tokens_per_day,
            conversation_tokens_per_day=config.ai_conversation_tokens_per_day,
            user_tokens_per_hour=config.ai_user_tokens_per_hour,
        )

    @property
    def configured(self) -> bool:
        """A server and a model are set: without both, ``ai.chat`` is ``ai_not_configured``."""
        return bool(self.base_url and self.model)

    @property
    def key(self) -> str:
        """The API key sent: local servers (Ollama, llama.cpp) want none, the client one."""
        return self.api_key or "unused"
