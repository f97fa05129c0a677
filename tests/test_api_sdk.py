"""The official `openai` client (from PyPI) against a live chatsite and the fake upstream."""

import openai
import pytest
from django.contrib.auth.models import Group

from api.tokens import token_create
from conversations.models import Conversation
from providers.models import ChatModel
from usage import quotas
from usage.models import Usage


@pytest.fixture
def still_minute(monkeypatch):
    """The rate limit's clock held in one minute, so that it does not turn during the test."""
    monkeypatch.setattr(quotas, "_clock", lambda: 1_800_000_000.0)


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plain_token(alice):
    return token_create(owner=alice, name="script")[1]


@pytest.fixture
def sdk(live_server, upstream, plain_token):
    # No retries in the client: each test sees chatsite's own answer to one request.
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key=plain_token, max_retries=0, timeout=20)


def test_the_models_list_is_the_catalogues_enabled_models(sdk):
    ChatModel.objects.create(model_id="vendor/on", display_name="On")
    ChatModel.objects.create(model_id="vendor/off", display_name="Off", enabled=False)

    ids = [model.id for model in sdk.models.list()]

    assert "vendor/on" in ids and "mistralai/mistral-tiny" in ids
    assert "vendor/off" not in ids


def test_a_whole_reply_comes_back_with_its_usage_and_a_usage_row_marked_api(sdk, alice, upstream):
    upstream.reply("Bonjour!")

    reply = sdk.chat.completions.create(
        model="mistralai/mistral-tiny", messages=[{"role": "user", "content": "Say hello"}], temperature=0.3
    )

    assert reply.choices[0].message.content == "Bonjour!"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens > 0
    row = Usage.objects.get()
    assert (row.user, row.source, row.status, row.total_tokens) == (alice, "api", "complete", reply.usage.total_tokens)
    sent = upstream.completion_requests[0]
    assert sent.json["messages"] == [{"role": "user", "content": "Say hello"}]
    assert sent.json["temperature"] == 0.3
    assert sent.headers["Authorization"] == "Bearer test-canary-key-must-never-leak-7f3a9c"
    assert not Conversation.objects.exists(), "without store, only the usage row is kept"


def test_a_streamed_reply_is_assembled_by_the_sdk_with_usage_at_the_end(sdk, upstream):
    upstream.stream(["Once ", "upon ", "a ", "time."])

    stream = sdk.chat.completions.create(
        model="mistralai/mistral-tiny",
        messages=[{"role": "user", "content": "A story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Once upon a time."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    row = Usage.objects.get()
    assert (row.source, row.status, row.total_tokens) == ("api", "complete", chunks[-1].usage.total_tokens)
    assert row.first_token_ms is not None


def test_without_include_usage_no_usage_chunk_is_sent(sdk, upstream):
    chunks = list(
        sdk.chat.completions.create(
            model="mistralai/mistral-tiny", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )

    assert all(chunk.usage is None for chunk in chunks)
    assert Usage.objects.get().total_tokens > 0  # the row counts what the upstream said anyway


def test_a_wrong_token_is_an_authentication_error(live_server, upstream):
    client = openai.OpenAI(base_url=live_server.url + "/v1", api_key="cs-not-a-real-token", max_retries=0)

    with pytest.raises(openai.AuthenticationError) as raised:
        client.models.list()

    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"


def test_a_person_outside_the_api_groups_gets_a_permission_error(sdk, alice, settings):
    settings.API_GROUPS = ["developers"]

    with pytest.raises(openai.PermissionDeniedError):
        sdk.models.list()

    alice.groups.add(Group.objects.create(name="developers"))
    assert sdk.models.list().data


def test_an_unknown_or_turned_off_model_is_not_found(sdk, upstream):
    ChatModel.objects.create(model_id="vendor/off", enabled=False)

    for model in ("vendor/off", "vendor/never-heard-of"):
        with pytest.raises(openai.NotFoundError) as raised:
            sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert raised.value.code == "model_not_found"
    assert upstream.completion_requests == []


def test_the_rate_limit_is_a_rate_limit_error_with_retry_after(sdk, upstream, settings, still_minute):
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 1
    ask = {"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "hi"}]}
    sdk.chat.completions.create(**ask)

    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(**ask)

    assert 1 <= int(raised.value.response.headers["Retry-After"]) <= 60
    assert len(upstream.completion_requests) == 1


@pytest.mark.parametrize(
    "extra",
    [{"temperature": 5}, {"top_p": 0}, {"max_tokens": 0}, {"extra_body": {"tools": []}}],
)
def test_parameters_out_of_bounds_are_a_bad_request(sdk, upstream, extra):
    ask = {"model": "mistralai/mistral-tiny", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(**ask, **extra)

    assert upstream.completion_requests == []


@pytest.mark.parametrize(("upstream_status", "status"), [(401, 502), (500, 503), (503, 503)])
def test_upstream_failures_are_server_errors_with_the_pages_sentence(sdk, upstream, upstream_status, status):
    for _ in range(3):  # chatsite's own retries see the same failure
        upstream.fail(upstream_status)

    with pytest.raises(openai.InternalServerError) as raised:
        sdk.chat.completions.create(model="mistralai/mistral-tiny", messages=[{"role": "user", "content": "hi"}])

    assert raised.value.status_code == status
    assert "test-canary" not in str(raised.value.body)
    assert Usage.objects.get().status == "error"


def test_a_stream_broken_by_the_upstream_raises_an_api_error_after_the_text_so_far(sdk, upstream):
    upstream.stream(["Half ", "a "], end="error")
    stream = sdk.chat.completions.create(
        model="mistralai/mistral-tiny", messages=[{"role": "user", "content": "hi"}], stream=True
    )

    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert "".join(received) == "Half a "
    assert Usage.objects.get().status == "error"


def test_store_true_saves_the_exchange_as_a_conversation(sdk, alice, upstream):
    upstream.reply("Paris.")

    sdk.chat.completions.create(
        model="mistralai/mistral-tiny",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        store=True,
    )

    conversation = Conversation.objects.get(owner=alice)
    assert conversation.system_prompt == "Be brief."
    assert [(m.role, m.content, m.status) for m in conversation.messages.order_by("id")] == [
        ("user", "Capital of France?", "complete"),
        ("assistant", "Paris.", "complete"),
    ]
    assert conversation.current_message.content == "Paris."
