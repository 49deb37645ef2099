"""What the LLM nodes (Generate Block, Import Paper) share: the LLM settings group, the
service made from it (key from a KNIME credential, never from the settings), typed tables."""
from __future__ import annotations

import knime.extension as knext

PROVIDERS = ["anthropic", "openai", "openai_compatible"]


@knext.parameter_group("LLM")
class LLMSettings:
    """Which model to ask. The API key comes from a KNIME credential (its password), never from
    these settings; the response cache lets a workflow re-run identically and offline."""

    provider = knext.StringParameter("Provider", "LLM API: Anthropic, OpenAI, or any OpenAI-compatible server.",
                                     "anthropic", enum=PROVIDERS)
    model = knext.StringParameter("Model", "Model name, e.g. claude-sonnet-4-5 or gpt-4.1.", "claude-sonnet-4-5")
    base_url = knext.StringParameter("Base URL", "API address (empty = the provider's default; required for "
                                     "openai_compatible servers).", "")
    credential = knext.StringParameter("Credential", "KNIME credential whose password is the API key (empty = no "
                                       "key, e.g. a local server).", "", choices=lambda ctx: ctx.get_credential_names())
    cache_folder = knext.StringParameter("Response cache folder", "Folder of the on-disk response cache (empty = "
                                         "no cache). The same settings and prompt are answered from it.", "",
                                         is_advanced=True)
    offline = knext.BoolParameter("Offline (cache only)", "Answer from the response cache only; a call that is not "
                                  "cached fails instead of reaching the network.", False, is_advanced=True)
    timeout_s = knext.IntParameter("Request time-out (s)", "Time-out of one request (retried on time-outs, rate "
                                   "limits and server errors).", 120, min_value=5, max_value=3600, is_advanced=True)
    # both take part in the response cache key: changing them asks the model again
    temperature = knext.DoubleParameter("Temperature", "Sampling temperature, 0 (most deterministic) to 2. Sent to "
                                        "OpenAI and OpenAI-compatible servers; the Anthropic SDK used here takes no "
                                        "sampling parameters.", 0.0, min_value=0.0, max_value=2.0, is_advanced=True)
    max_tokens = knext.IntParameter("Max tokens", "Longest answer, in tokens, the model may give per request. A "
                                    "block module with tests or a graph needs a few thousand.", 4096, min_value=1,
                                    max_value=200_000, is_advanced=True)


def check_llm_settings(s: LLMSettings, config_context=None) -> None:
    """Configure-time checks naming the parameter to fix."""
    if not s.model.strip():
        raise knext.InvalidParametersError("parameter 'Model' is empty: name the model, e.g. claude-sonnet-4-5")
    if s.provider == "openai_compatible" and not s.base_url.strip():
        raise knext.InvalidParametersError("parameter 'Base URL' is required for openai_compatible servers")
    if s.offline and not s.cache_folder.strip():
        raise knext.InvalidParametersError("parameter 'Offline (cache only)' needs 'Response cache folder'")
    if config_context is not None and s.credential and s.credential not in config_context.get_credential_names():
        raise knext.InvalidParametersError(f"parameter 'Credential': no credential named '{s.credential}' in this "
                                           f"workflow (available: {config_context.get_credential_names()})")


def llm_service(s: LLMSettings, ctx, offline: bool | None = None):
    """(LLMService, key or None) for these settings; `offline=True` forces cache-only answers."""
    from llm import LLMConfig, LLMService
    key = ctx.get_credentials(s.credential).password if s.credential else None
    cache = s.cache_folder.strip() or None
    off = bool(s.offline if offline is None else offline) and cache is not None
    cfg = LLMConfig(provider=s.provider, model=s.model.strip(), base_url=s.base_url.strip() or None,
                    temperature=float(s.temperature), max_tokens=int(s.max_tokens), timeout_s=float(s.timeout_s),
                    cache_dir=cache, offline=off)
    return LLMService(cfg, api_key=key), key


def schema(cols) -> knext.Schema:
    return knext.Schema.from_columns([knext.Column(t, n) for n, t in cols])


def table(rows: list[dict], cols):
    """Typed through pyarrow, so an empty table keeps the configured column types."""
    import pyarrow as pa
    pairs = [(knext.int32(), pa.int32()), (knext.bool_(), pa.bool_()), (knext.double(), pa.float64())]
    fields = [pa.field(n, next((p for k, p in pairs if k == t), pa.string())) for n, t in cols]
    data = {n: [r.get(n) for r in rows] for n, _ in cols}
    return knext.Table.from_pyarrow(pa.table(data, schema=pa.schema(fields)))
