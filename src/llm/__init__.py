"""LLM layer: one service over Anthropic / OpenAI / OpenAI-compatible servers with retries, a
response cache and token accounting; structured graph output; Generate Block. Never imports KNIME."""
from .config import PROVIDERS, LLMConfig, LLMError
from .service import LLMReply, LLMService

__all__ = ["PROVIDERS", "LLMConfig", "LLMError", "LLMReply", "LLMService"]
