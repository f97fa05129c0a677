"""Writes of usage: one row per upstream call, priced, and counted in the day's totals."""

from django.db import transaction

from providers.models import ChatModel, ProviderKey
from usage import rollups
from usage.models import Usage
from usage.money import cost_of


def record(
    *,
    user_id: int | None,
    key: ProviderKey | None,
    model: str,
    status: str,
    message_id: int | None = None,
    error_code: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    total_tokens: int | None = None,
    latency_ms: int | None = None,
    first_token_ms: int | None = None,
    tokens_estimated: bool = False,
    source: str = Usage.Source.CHAT,
) -> Usage:
    """Store one upstream call at the model's prices in force now, and add it to the running totals
    in the same transaction. Missing token counts count as 0: where the upstream answered without
    them, `generation` passes an estimate and `tokens_estimated` (priced the same way)."""
    prompt_tokens, completion_tokens = prompt_tokens or 0, completion_tokens or 0
    # Read here, not from the cached catalogue: the price in force is the one saved last.
    prices = ChatModel.objects.filter(model_id=model).values_list("input_price", "output_price").first()
    input_price, output_price = prices or (None, None)
    with transaction.atomic():
        usage = Usage.objects.create(
            user_id=user_id,
            key=key,
            key_label=key.label if key else "",
            model=model,
            message_id=message_id,
            status=status,
            error_code=error_code,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=total_tokens if total_tokens is not None else prompt_tokens + completion_tokens,
            latency_ms=latency_ms,
            first_token_ms=first_token_ms,
            tokens_estimated=tokens_estimated,
            source=source,
            input_price=input_price,
            output_price=output_price,
            cost=cost_of(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                input_price=input_price,
                output_price=output_price,
            ),
        )
        rollups.add(usage)
    return usage
